/**
 * One process at a time on an embedded (SQLite) data dir: `crowbar serve` and `crowbar sim`
 * take `<dataDir>/crowbar.pid`; a stale file from a dead process is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function takeDataDirLock(dataDir: string, what: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'crowbar.pid');
  try {
    const [pid, holder] = readFileSync(file, 'utf8').trim().split(' ');
    if (Number(pid) !== process.pid) {
      process.kill(Number(pid), 0);
      throw new Error(
        `the data dir ${dataDir} is in use by ${holder ?? 'crowbar'} (pid ${pid}); stop it first, use another --data-dir, or use PostgreSQL (--database) to run several processes`,
      );
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
  writeFileSync(file, `${process.pid} ${what}\n`);
  return () => rmSync(file, { force: true });
}
