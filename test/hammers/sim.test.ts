import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimHammer, createSimHammerFactory } from '../../src/hammers/sim.js';

const target = (nodeName: string) => ({ nodeId: 1, nodeName, username: 'root' });

describe('sim hammer', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'hammer-sim-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('maps remote paths into the node sandbox and cannot climb out of it', () => {
    const h = createSimHammerFactory(root).create(target('node-00001.sim.test'));
    const sb = path.join(root, 'node-00001.sim.test');
    expect(h.sandbox).toBe(sb);
    expect(h.hostPath('/tmp/x')).toBe(path.join(sb, 'tmp', 'x'));
    expect(h.hostPath('/etc/hosts')).toBe(path.join(sb, 'etc', 'hosts'));
    expect(h.hostPath('rel/file')).toBe(path.join(sb, 'rel', 'file'));
    expect(h.hostPath('/../../etc/passwd')).toBe(path.join(sb, 'etc', 'passwd'));
    expect(h.hostPath('/tmp/../../..')).toBe(sb);
    expect(h.hostPath(path.join(sb, 'tmp', 'y'))).toBe(path.join(sb, 'tmp', 'y'));
  });

  it('rejects node names that are not a single safe directory name', () => {
    const f = createSimHammerFactory(root);
    expect(() => f.create(target('../escape'))).toThrow(/cannot name a sandbox/);
    expect(() => f.create(target('a/b'))).toThrow(/cannot name a sandbox/);
  });

  it('runs for real with cwd, HOME, TMPDIR and CROWBAR_SIM_ROOT inside the sandbox', async () => {
    const h = createSimHammerFactory(root).create(target('n1'));
    const res = await h.run(['bash', '-c', 'echo "$PWD|$HOME|$TMPDIR|$CROWBAR_SIM_ROOT"']);
    const sb = path.join(root, 'n1');
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(`${sb}|${sb}/root|${sb}/tmp|${sb}`);
    const inCwd = await h.run(['pwd'], { cwd: '/root' });
    expect(inCwd.stdout.trim()).toBe(`${sb}/root`);
  });

  it('rewrites argv paths under /tmp and /root, leaves program paths alone', async () => {
    const h = createSimHammerFactory(root).create(target('n1'));
    const made = await h.run(['mktemp', '-d', '/tmp/scriptjig-XXXXXX']);
    expect(made.code).toBe(0);
    const tmp = made.stdout.trim();
    expect(tmp.startsWith(path.join(root, 'n1', 'tmp', 'scriptjig-'))).toBe(true);
    expect((await stat(tmp)).isDirectory()).toBe(true);

    const wrote = await h.run(['/bin/sh', '-c', 'echo hi > "$1"', 'sh', '/root/file.txt']);
    expect(wrote.code).toBe(0);
    expect(await readFile(path.join(root, 'n1', 'root', 'file.txt'), 'utf8')).toBe('hi\n');
    // a path already inside the sandbox (mktemp's output) is used unchanged
    expect((await h.run(['test', '-d', tmp])).code).toBe(0);
  });

  it('copies into and out of the sandbox', async () => {
    const h = createSimHammerFactory(root).create(target('n1'));
    const local = path.join(root, 'local');
    await mkdir(path.join(local, 'd'), { recursive: true });
    await writeFile(path.join(local, 'd', 'f'), 'data');
    await h.copyTo(path.join(local, 'd'), '/tmp/job/d');
    expect(await readFile(path.join(root, 'n1', 'tmp', 'job', 'd', 'f'), 'utf8')).toBe('data');
    expect((await h.run(['cat', '/tmp/job/d/f'])).stdout).toBe('data');
    await h.copyFrom('/tmp/job/d', path.join(local, 'back'));
    expect(await readFile(path.join(local, 'back', 'f'), 'utf8')).toBe('data');
  });

  it('keeps two nodes apart: files one writes under HOME or /tmp are not seen by the other', async () => {
    const f = createSimHammerFactory(root);
    const a = f.create(target('node-a'));
    const b = f.create(target('node-b'));
    expect((await a.run(['bash', '-c', 'echo secret > "$HOME/a.txt"; echo s2 > "$TMPDIR/a2.txt"'])).code).toBe(0);
    expect((await a.run(['test', '-f', '/root/a.txt'])).code).toBe(0);
    expect((await a.run(['test', '-f', '/tmp/a2.txt'])).code).toBe(0);
    expect((await b.run(['test', '-e', '/root/a.txt'])).code).toBe(1);
    expect((await b.run(['test', '-e', '/tmp/a2.txt'])).code).toBe(1);
    expect((await b.run(['bash', '-c', 'ls -A "$HOME" "$TMPDIR"'])).stdout).not.toMatch(/a2?\.txt/);
  });

  it('records power actions in a state file and a log', async () => {
    const h = new SimHammer(root, 'n1');
    expect(await h.power('status')).toBe('on');
    expect(await h.power('off')).toBe('off');
    expect(await h.power('status')).toBe('off');
    expect(await readFile(path.join(root, 'n1', '.sim', 'power'), 'utf8')).toBe('off\n');
    expect(await h.power('on')).toBe('on');
    expect(await h.power('cycle')).toBe('on');
    expect(await h.power('reset')).toBe('on');
    expect(await h.power('reboot')).toBe('on');
    const log = await h.powerLog();
    expect(log.map((l) => l.split(' ').slice(1).join(' '))).toEqual([
      'off on -> off',
      'on off -> on',
      'cycle on -> on',
      'reset on -> on',
      'reboot on -> on',
    ]);
    // a second hammer for the same node sees the same machine
    expect(await new SimHammer(root, 'n1').power('status')).toBe('on');
    await expect(h.power('pxeboot')).rejects.toThrow(/sim hammer cannot 'pxeboot'/);
  });
});
