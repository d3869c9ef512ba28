/**
 * Handler of role `test-async` (api-compat §3.2, with the original's attrib-name bug fixed):
 * the first run leaves a marker and returns async (the node-role stays in TRANSITION); the next
 * run (after a retry) finds the marker, removes it and writes `test-async-result`.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RoleHandler } from './role-provided.js';

export function testAsyncHandler(stateDir: string): RoleHandler {
  return async (ctx) => {
    const marker = join(stateDir, `async_${ctx.nodeRole.id}.txt`);
    if (!existsSync(marker)) {
      await mkdir(stateDir, { recursive: true });
      await writeFile(marker, `${new Date().toISOString()}\n`);
      ctx.log(`test-async: started asynchronous work for node-role ${ctx.nodeRole.id}; retry it to complete\n`);
      return { async: true };
    }
    await rm(marker, { force: true });
    ctx.log(`test-async: asynchronous work for node-role ${ctx.nodeRole.id} completed\n`);
    return { wall: { async: { result: 'completed' } } };
  };
}
