#!/usr/bin/env node
// Entry point for the `crowbar` command: runs the compiled CLI (npm run build produces dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const compiled = join(root, 'dist', 'cli', 'main.js');
if (!existsSync(compiled)) {
  console.error(`crowbar: ${compiled} is missing; run "npm run build" in ${root} first`);
  process.exit(1);
}
const { main } = await import(compiled);
await main(process.argv);
