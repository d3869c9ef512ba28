import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalHammer, createLocalHammerFactory } from '../../src/hammers/local.js';

/** true while `pid` is a live (not zombie) process */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

describe('local hammer', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hammer-local-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs an argv without a shell, so metacharacters stay literal', async () => {
    const h = new LocalHammer();
    const res = await h.run(['printf', '%s|%s', '$(touch pwned); echo hi', '`id`'], { cwd: dir });
    expect(res).toMatchObject({ code: 0, stdout: '$(touch pwned); echo hi|`id`', stderr: '' });
    await expect(readFile(path.join(dir, 'pwned'))).rejects.toThrow();
  });

  it('streams stdout and stderr, passes stdin, env and cwd, and reports the exit code', async () => {
    const h = new LocalHammer();
    const chunks: string[] = [];
    const res = await h.run(
      ['bash', '-c', 'read -r line; echo "in=$line env=$MY_VAR pwd=$PWD"; echo oops >&2; exit 7'],
      { stdin: 'hello\n', env: { MY_VAR: 'v1' }, cwd: dir, onOutput: (s, c) => chunks.push(`${s}:${c}`) },
    );
    expect(res.code).toBe(7);
    expect(res.stdout).toBe(`in=hello env=v1 pwd=${dir}\n`);
    expect(res.stderr).toBe('oops\n');
    expect(chunks).toContain(`stdout:in=hello env=v1 pwd=${dir}\n`);
    expect(chunks).toContain('stderr:oops\n');
  });

  it('rejects with the command name when the program does not exist', async () => {
    await expect(new LocalHammer().run(['no-such-program-xyz'])).rejects.toThrow(/no-such-program-xyz/);
  });

  it('rejects a run whose signal is already aborted, without running it', async () => {
    const marker = path.join(dir, 'ran');
    await expect(new LocalHammer().run(['touch', marker], { signal: AbortSignal.abort() })).rejects.toThrow(
      /aborted/,
    );
    await expect(readFile(marker)).rejects.toThrow();
  });

  it('kills the whole process group on abort', async () => {
    const h = new LocalHammer();
    const ac = new AbortController();
    let childPid = 0;
    const started = Date.now();
    const res = await h.run(['bash', '-c', 'sleep 1000 & echo $!; wait'], {
      signal: ac.signal,
      onOutput: (_s, chunk) => {
        childPid = Number(chunk.trim());
        ac.abort();
      },
    });
    expect(Date.now() - started).toBeLessThan(4000);
    expect(res.code).toBeNull();
    expect(res.signal).toBe('SIGTERM');
    expect(childPid).toBeGreaterThan(0);
    expect(await waitUntil(() => !alive(childPid), 2000)).toBe(true);
  });

  it('escalates to SIGKILL when the group ignores SIGTERM', async () => {
    const h = new LocalHammer({ killGraceMs: 200 });
    const ac = new AbortController();
    let childPid = 0;
    const started = Date.now();
    const res = await h.run(['bash', '-c', "trap '' TERM; sleep 1000 & echo $!; wait"], {
      signal: ac.signal,
      onOutput: (_s, chunk) => {
        childPid = Number(chunk.trim());
        ac.abort();
      },
    });
    expect(Date.now() - started).toBeLessThan(4000);
    expect(res.code).toBeNull();
    expect(res.signal).toBe('SIGKILL');
    expect(await waitUntil(() => !alive(childPid), 2000)).toBe(true);
  });

  it('returns when the command exits even if a background child keeps its output open', async () => {
    const h = new LocalHammer({ drainMs: 200 });
    const started = Date.now();
    const res = await h.run(['bash', '-c', 'sleep 1000 & echo $!']);
    const pid = Number(res.stdout.trim());
    try {
      expect(res.code).toBe(0);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('copies files and directories both ways', async () => {
    const h = createLocalHammerFactory().create({ nodeId: 1, nodeName: 'admin', username: 'root' });
    await mkdir(path.join(dir, 'src', 'sub'), { recursive: true });
    await writeFile(path.join(dir, 'src', 'sub', 'f.txt'), 'content');
    await h.copyTo(path.join(dir, 'src'), path.join(dir, 'remote', 'copy'));
    expect(await readFile(path.join(dir, 'remote', 'copy', 'sub', 'f.txt'), 'utf8')).toBe('content');
    await h.copyFrom(path.join(dir, 'remote', 'copy', 'sub', 'f.txt'), path.join(dir, 'back.txt'));
    expect(await readFile(path.join(dir, 'back.txt'), 'utf8')).toBe('content');
  });

  it('reports power status on and refuses other power actions clearly', async () => {
    const h = new LocalHammer();
    expect(h.actions.power).toEqual(['status']);
    expect(await h.power('status')).toBe('on');
    await expect(h.power('off')).rejects.toThrow(/local hammer cannot off the admin host/);
    await expect(h.power('reboot')).rejects.toThrow(/cannot reboot/);
  });
});
