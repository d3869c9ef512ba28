/**
 * Finding the non-TypeScript files a jig ships beside its code (a shell runner, an Ansible
 * callback plugin). The plain `tsc` build does not copy them into `dist/`, so a module running
 * from `dist/` finds them in the source tree instead.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the asset `fromRoot` (its path from the repository root, e.g.
 * `src/jigs/script/runner.sh`) is: at `fromModule` relative to the calling module's directory
 * when running from `src/` (tsx, vitest), else under the nearest ancestor directory of the
 * module that has `fromRoot`, and last under the working directory. Throws naming the first
 * places looked at when it is nowhere.
 *
 * @param moduleUrl `import.meta.url` of the module the asset belongs to
 * @param fromModule @defaultValue the last path component of `fromRoot`
 */
export function resolveAssetPath(moduleUrl: string, fromRoot: string, fromModule: string = path.basename(fromRoot)): string {
  const here = path.dirname(fileURLToPath(moduleUrl));
  const candidates = [path.join(here, fromModule)];
  for (let dir = here; ; dir = path.dirname(dir)) {
    candidates.push(path.join(dir, fromRoot));
    if (path.dirname(dir) === dir) break;
  }
  candidates.push(path.join(process.cwd(), fromRoot));
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new Error(`${fromRoot} not found; looked at ${candidates.slice(0, 3).join(', ')} …`);
  }
  return found;
}
