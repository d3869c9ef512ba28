/**
 * The ssh hammer. Unit part: quoting (round-tripped through a real bash), command building,
 * endpoints, the install key. End-to-end part: 3 real OpenSSH servers on loopback
 * (src/testing/sshd-nodes.ts); skipped when sshd is missing or we are not root, except under
 * CROWBAR_E2E=1 where that is a failure.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SshHammerFactory,
  killRunCommand,
  buildCommand,
  createSshHammerFactory,
  ensureInstallKey,
  fingerprint,
  knownHostsLine,
  resolveEndpoint,
  shellQuote,
} from '../../src/hammers/ssh.js';
import type { PinnedHostKey } from '../../src/hammers/ssh.js';
import type { NodeHammer } from '../../src/hammers/types.js';
import { scriptJig } from '../../src/jigs/script/index.js';
import { SshdNodes, sshdUnavailableReason } from '../../src/testing/sshd-nodes.js';
import { jigContext } from '../helpers/jig-context.js';

const TRICKY = [
  'plain',
  'a b',
  "it's",
  '"double"',
  '$(touch /tmp/ssh-hammer-pwned)',
  '`id`',
  '$HOME',
  '*',
  '',
  'semi;colon && echo no',
  'new\nline',
  "'\\''",
  'tab\there',
  '~root',
  '-n',
  'ünïcødé ✓',
];

/** what bash makes of `printf '%s\0' <words>`: the words it received */
function bashWords(line: string): string[] {
  const out = execFileSync('bash', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('shellQuote', () => {
  it('makes every word arrive verbatim through bash', () => {
    expect(bashWords(TRICKY.map(shellQuote).join(' '))).toEqual(TRICKY);
    expect(existsSync('/tmp/ssh-hammer-pwned')).toBe(false);
  });
  it('leaves safe words alone and quotes the rest', () => {
    expect(shellQuote('abc-1.2/x=y')).toBe('abc-1.2/x=y');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
    expect(shellQuote('$x')).toBe("'$x'");
  });
  it('rejects NUL', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
  it('buildCommand execs the program, with env and cwd quoted', () => {
    expect(buildCommand(['echo', 'a b'])).toBe("exec echo 'a b'");
    expect(buildCommand(['ls'], { cwd: '/tmp/x y', env: { A: '1 2' } })).toBe("cd '/tmp/x y' && exec env 'A=1 2' ls");
    expect(() => buildCommand(['ls'], { env: { 'A;B': '1' } })).toThrow(/invalid environment variable/);
    expect(() => buildCommand([])).toThrow(/empty argv/);
    expect(buildCommand(['sleep', '1'], { runTag: 'abc123' })).toBe('exec env CROWBAR_RUN=abc123 sleep 1');
  });
});

describe('killRunCommand', () => {
  it('signals exactly the tagged processes and their children', async () => {
    const { spawn } = await import('node:child_process');
    const tag = `t${process.pid}x${Date.now()}`;
    const tagged = spawn('bash', ['-c', 'sleep 300 & sleep 301; wait'], {
      env: { ...process.env, CROWBAR_RUN: tag },
      stdio: 'ignore',
    });
    const other = spawn('sleep', ['302'], { env: { ...process.env, CROWBAR_RUN: `${tag}0` }, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 200));
    const exited = new Promise((r) => tagged.once('exit', r));
    execFileSync('bash', ['-c', killRunCommand(tag, 'TERM')]);
    await exited;
    expect(other.exitCode).toBeNull();
    other.kill('SIGKILL');
  });
});

describe('resolveEndpoint', () => {
  const base = { nodeId: 1, nodeName: 'n1.test', username: 'root' };
  it('defaults to the node name on port 22', () => {
    expect(resolveEndpoint(base)).toMatchObject({ host: 'n1.test', port: 22, username: 'root' });
  });
  it('uses the address, then an endpoint host:port', () => {
    expect(resolveEndpoint({ ...base, address: '10.0.0.5' })).toMatchObject({ host: '10.0.0.5', port: 22 });
    expect(resolveEndpoint({ ...base, address: '10.0.0.5', endpoint: '127.0.1.3:2222' })).toMatchObject({
      host: '127.0.1.3',
      port: 2222,
    });
    expect(resolveEndpoint({ ...base, endpoint: '[::1]:2200' })).toMatchObject({ host: '::1', port: 2200 });
    expect(() => resolveEndpoint({ ...base, endpoint: 'h:99999' })).toThrow(/bad port/);
  });
});

describe('ensureInstallKey', () => {
  it('generates an ed25519 key pair once and reuses it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ssh-key-'));
    try {
      const a = ensureInstallKey(dir);
      expect(a.publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ crowbar$/);
      expect(a.privateKey).toContain('OPENSSH PRIVATE KEY');
      expect((await stat(a.path)).mode & 0o777).toBe(0o600);
      const b = ensureInstallKey(dir);
      expect(b).toEqual(a);
      // ssh-keygen agrees on the public half
      const derived = execFileSync('ssh-keygen', ['-y', '-f', a.path], { encoding: 'utf8' }).trim();
      expect(a.publicKey.startsWith(derived.split(' ').slice(0, 2).join(' '))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// End to end over real sshd ////////////////////////////////////////////////////////////////////

const unavailable = sshdUnavailableReason();
const required = process.env['CROWBAR_E2E'] === '1';
if (unavailable && !required) console.warn(`ssh hammer e2e skipped: ${unavailable}`);

describe.skipIf(unavailable !== null && !required)('ssh hammer over 3 real sshd nodes', () => {
  let dataDir: string;
  let nodes: SshdNodes;
  let factory: SshHammerFactory;
  /** node `i`'s host public key as `<type> <base64>` */
  const hostPublicKey = (i: number): string =>
    readFileSync(path.join(nodes.nodes[i]!.dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  const hammer = (i: number, f: SshHammerFactory = factory): NodeHammer => {
    const n = nodes.nodes[i]!;
    return f.create({ nodeId: i + 1, nodeName: n.name, username: n.username, endpoint: n.endpoint });
  };

  beforeAll(async () => {
    if (unavailable) throw new Error(`CROWBAR_E2E=1 but real sshd nodes cannot run: ${unavailable}`);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'ssh-hammer-'));
    const key = ensureInstallKey(dataDir);
    nodes = await SshdNodes.start(3, { authorizedKeys: [key.publicKey] });
    factory = createSshHammerFactory(dataDir, { killGraceMs: 2000 });
  }, 30_000);
  afterAll(async () => {
    await factory?.close();
    await nodes?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("keeps each node's work dir private: a node sees and writes its own, never another's", async () => {
    const [a, b] = [nodes.nodes[0]!, nodes.nodes[1]!];
    writeFileSync(path.join(b.workDir, 'secret'), 'node-1 only\n');
    const own = await hammer(0).run(['sh', '-c', 'echo mine > "$CROWBAR_NODE_DIR/own" && cat "$CROWBAR_NODE_DIR/own"']);
    expect(own).toMatchObject({ code: 0, stdout: 'mine\n' });
    expect(readFileSync(path.join(a.workDir, 'own'), 'utf8')).toBe('mine\n');
    const peek = await hammer(0).run(['cat', path.join(b.workDir, 'secret')]);
    expect(peek.code).not.toBe(0);
    expect(peek.stderr).toMatch(/No such file or directory/);
    const write = await hammer(0).run(['sh', '-c', 'echo x > "$1"', 'sh', path.join(b.workDir, 'planted')]);
    expect(write.code).not.toBe(0);
    expect(existsSync(path.join(b.workDir, 'planted'))).toBe(false);
    // and node 1 still sees its own file
    expect((await hammer(1).run(['cat', path.join(b.workDir, 'secret')])).stdout).toBe('node-1 only\n');
  });

  it('runs argv verbatim, without shell interpolation, on every node', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await hammer(i).run(['printf', '%s\\0', ...TRICKY]);
      expect(res.code).toBe(0);
      expect(res.stdout.split('\0').slice(0, -1)).toEqual(TRICKY);
    }
    expect(existsSync('/tmp/ssh-hammer-pwned')).toBe(false);
  });

  it('pins each node\'s host key on first contact, as ssh-keygen prints it', () => {
    const pinned = JSON.parse(readFileSync(path.join(dataDir, 'ssh', 'known_hosts.json'), 'utf8')) as Record<string, PinnedHostKey>;
    for (let i = 0; i < 3; i++) {
      expect(pinned[nodes.nodes[i]!.endpoint]).toEqual({ fingerprint: nodes.hostKeyFingerprint(i), key: hostPublicKey(i) });
    }
  });

  it('fills in the key of an entry pinned with only a fingerprint once it matches, and refuses a wrong one', async () => {
    const old = await mkdtemp(path.join(os.tmpdir(), 'ssh-old-pins-'));
    try {
      await mkdir(path.join(old, 'ssh'));
      for (const f of ['id_ed25519', 'id_ed25519.pub']) {
        await writeFile(path.join(old, 'ssh', f), await readFile(path.join(dataDir, 'ssh', f)), { mode: 0o600 });
      }
      const file = path.join(old, 'ssh', 'known_hosts.json');
      const [a, b] = [nodes.nodes[0]!.endpoint, nodes.nodes[1]!.endpoint];
      // the format before keys were kept: host:port → fingerprint
      await writeFile(file, JSON.stringify({ [a]: nodes.hostKeyFingerprint(0), [b]: nodes.hostKeyFingerprint(2) }));
      const f = createSshHammerFactory(old);
      try {
        const at = (i: number): NodeHammer => {
          const n = nodes.nodes[i]!;
          return f.create({ nodeId: i + 1, nodeName: n.name, username: n.username, endpoint: n.endpoint });
        };
        expect((await at(0).run(['true'])).code).toBe(0);
        await expect(at(1).run(['true'])).rejects.toThrow(/CHANGED/);
        const pins = JSON.parse(await readFile(file, 'utf8')) as Record<string, PinnedHostKey>;
        expect(pins[a]).toEqual({ fingerprint: nodes.hostKeyFingerprint(0), key: hostPublicKey(0) });
        expect(pins[b]).toEqual({ fingerprint: nodes.hostKeyFingerprint(2) });
      } finally {
        await f.close();
      }
    } finally {
      await rm(old, { recursive: true, force: true });
    }
  });

  it('hands an external ssh client what it needs: OpenSSH logs in with it, checking the pinned key', async () => {
    const n = nodes.nodes[1]!;
    const access = await hammer(1).sshAccess!();
    expect(access).toEqual({
      host: n.address,
      port: n.port,
      username: n.username,
      identityFile: path.join(dataDir, 'ssh', 'id_ed25519'),
      knownHostsLine: `${n.port === 22 ? n.address : `[${n.address}]:${n.port}`} ${hostPublicKey(1)}`,
    });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ssh-access-'));
    try {
      const known = path.join(dir, 'known_hosts');
      await writeFile(known, `${access.knownHostsLine}\n`);
      const sshArgs = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${known}`];
      sshArgs.push('-o', 'GlobalKnownHostsFile=/dev/null', '-i', access.identityFile, '-p', String(access.port));
      const out = execFileSync('ssh', [...sshArgs, `${access.username}@${access.host}`, 'echo', 'via-openssh'], { encoding: 'utf8' });
      expect(out).toBe('via-openssh\n');
      // another node's key does not pass
      await writeFile(known, `${knownHostsLine(access.host, access.port, hostPublicKey(0))}\n`);
      expect(() => execFileSync('ssh', [...sshArgs, `${access.username}@${access.host}`, 'true'], { stdio: 'pipe' })).toThrow(
        /Host key verification failed/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // a factory that does not know its key file cannot hand out access
    const bare = new SshHammerFactory({
      privateKey: ensureInstallKey(dataDir).privateKey,
      knownHostsFile: path.join(dataDir, 'ssh', 'known_hosts.json'),
    });
    const bareHammer = bare.create({ nodeId: 2, nodeName: n.name, username: n.username, endpoint: n.endpoint });
    await expect(bareHammer.sshAccess!()).rejects.toThrow(/without privateKeyPath/);
    await bare.close();
  });

  it('reports exit codes, stdin, env and cwd', async () => {
    const h = hammer(0);
    expect((await h.run(['bash', '-c', 'exit 3'])).code).toBe(3);
    expect((await h.run(['false'])).code).toBe(1);
    const missing = await h.run(['no-such-program-xyz']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('no-such-program-xyz');
    expect((await h.run(['cat'], { stdin: 'in put\n' })).stdout).toBe('in put\n');
    const wd = nodes.nodes[0]!.workDir;
    const res = await h.run(['bash', '-c', 'echo "$PWD|$X|$CROWBAR_NODE_DIR"'], { cwd: wd, env: { X: "a 'b' $c" } });
    expect(res.stdout).toBe(`${wd}|a 'b' $c|${wd}\n`);
  });

  it('streams stdout and stderr as they are written', async () => {
    const seen: Array<[string, string, number]> = [];
    const t0 = Date.now();
    const res = await hammer(1).run(['bash', '-c', 'echo one; sleep 0.4; echo two >&2; sleep 0.4; echo three'], {
      onOutput: (s, c) => seen.push([s, c, Date.now() - t0]),
    });
    expect(res).toMatchObject({ code: 0, stdout: 'one\nthree\n', stderr: 'two\n' });
    expect(seen.map(([s, c]) => `${s}:${c}`)).toEqual(['stdout:one\n', 'stderr:two\n', 'stdout:three\n']);
    expect(seen[0]![2]).toBeLessThan(seen[2]![2] - 500);
  });

  it('runs 8 commands at once over one connection', async () => {
    const own = createSshHammerFactory(dataDir);
    try {
      const h = hammer(2, own);
      const t0 = Date.now();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => h.run(['bash', '-c', `sleep 1; echo $((${i} * 2)); exit ${i}`])),
      );
      const took = Date.now() - t0;
      expect(results.map((r) => r.code)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(results.map((r) => r.stdout)).toEqual([0, 2, 4, 6, 8, 10, 12, 14].map((n) => `${n}\n`));
      expect(took).toBeLessThan(4000);
      expect(own.connectionCount).toBe(1);
      // more than the channel cap still works (queued)
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => h.run(['echo', String(i)])));
      expect(many.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
      expect(own.connectionCount).toBe(1);
    } finally {
      await own.close();
    }
    expect(own.connectionCount).toBe(0);
  });

  it('closes idle connections and reconnects on the next run', async () => {
    const own = createSshHammerFactory(dataDir, { idleMs: 300 });
    try {
      const h = hammer(0, own);
      expect((await h.run(['echo', 'a'])).stdout).toBe('a\n');
      expect(own.connectionCount).toBe(1);
      const deadline = Date.now() + 3000;
      while (own.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(own.connectionCount).toBe(0);
      expect((await h.run(['echo', 'b'])).stdout).toBe('b\n');
    } finally {
      await own.close();
    }
  });

  it('copies a directory tree to the node and back over SFTP', async () => {
    const local = await mkdtemp(path.join(os.tmpdir(), 'ssh-copy-'));
    try {
      const src = path.join(local, 'src');
      await mkdir(path.join(src, 'sub dir', 'deeper'), { recursive: true });
      await writeFile(path.join(src, 'a.txt'), 'alpha\n');
      await writeFile(path.join(src, 'run.sh'), '#!/bin/sh\necho ran\n');
      await chmod(path.join(src, 'run.sh'), 0o755);
      await writeFile(path.join(src, 'sub dir', 'b "quoted".txt'), 'beta');
      await writeFile(path.join(src, 'sub dir', 'deeper', 'c.bin'), Buffer.from([0, 1, 2, 255]));
      const h = hammer(1);
      const remote = path.join(nodes.nodes[1]!.workDir, 'copied');
      await h.copyTo(src, remote);
      expect((await h.run([`${remote}/run.sh`])).stdout).toBe('ran\n');
      const listing = await h.run(['find', remote, '-type', 'f', '-printf', '%P\\n']);
      expect(listing.stdout.trim().split('\n').sort()).toEqual(
        ['a.txt', 'run.sh', 'sub dir/b "quoted".txt', 'sub dir/deeper/c.bin'].sort(),
      );
      // a single file
      await h.copyTo(path.join(src, 'a.txt'), `${remote}/single.txt`);
      expect((await h.run(['cat', `${remote}/single.txt`])).stdout).toBe('alpha\n');

      const back = path.join(local, 'back');
      await h.copyFrom(remote, back);
      expect(await readFile(path.join(back, 'a.txt'), 'utf8')).toBe('alpha\n');
      expect(await readFile(path.join(back, 'sub dir', 'b "quoted".txt'), 'utf8')).toBe('beta');
      expect([...(await readFile(path.join(back, 'sub dir', 'deeper', 'c.bin')))]).toEqual([0, 1, 2, 255]);
      await expect(h.copyFrom(`${remote}/nope`, path.join(local, 'x'))).rejects.toThrow(/node-1\.sshd\.test.*nope/s);
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });

  it('kills a running command on abort', async () => {
    const marker = `600.${process.pid}${Date.now() % 1000}`;
    const ac = new AbortController();
    const h = hammer(0);
    const running = h.run(['sleep', marker], { signal: ac.signal });
    const pgrep = (): string => {
      try {
        return execFileSync('pgrep', ['-f', `^sleep ${marker}$`], { encoding: 'utf8' });
      } catch {
        return '';
      }
    };
    const deadline = Date.now() + 5000;
    while (!pgrep() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(pgrep()).not.toBe('');
    const t0 = Date.now();
    ac.abort(new Error('test abort'));
    const res = await running;
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(res.code).toBeNull();
    expect(res.signal).toMatch(/^SIG(TERM|KILL)$/);
    await new Promise((r) => setTimeout(r, 200));
    expect(pgrep()).toBe('');
    // aborted before the start: rejected
    await expect(h.run(['true'], { signal: AbortSignal.abort() })).rejects.toThrow(/aborted before it started/);
  });

  it('reboot is the only power action', async () => {
    await expect(hammer(0).power('off')).rejects.toThrow(/only reboot/);
    expect(hammer(0).actions.power).toEqual(['reboot']);
  });

  it('runs a script jig role over ssh, with read_attribute/write_attribute and the wall', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'ssh-jig-'));
    try {
      const barclamp = path.join(work, 'barclamp');
      const roleDir = path.join(barclamp, 'script', 'roles', 'ssh-role');
      await mkdir(roleDir, { recursive: true });
      await writeFile(
        path.join(roleDir, '01-greet.sh'),
        [
          'name=$(read_attribute crowbar/name)',
          'echo "hello [$name] from $(hostname)"',
          'write_attribute out/greeting "hi $name"',
          'write_attribute out/port 5432',
          'write_attribute out/servers "$(read_attribute crowbar/servers)"',
          'write_attribute out/node_dir "$CROWBAR_NODE_DIR"',
        ].join('\n'),
      );
      const n = nodes.nodes[2]!;
      const h = await jigContext({
        hammer: hammer(2),
        jig: 'script',
        role: 'ssh-role',
        sourcePath: barclamp,
        workRoot: work,
        inputs: { crowbar: { name: "x 'y' $(z)", servers: ['10.0.0.1', '10.0.0.2'] } },
        node: { id: 3, name: n.name },
      });
      const result = await scriptJig.run(h.ctx);
      expect(result.wall).toEqual({
        out: { greeting: "hi x 'y' $(z)", port: 5432, servers: ['10.0.0.1', '10.0.0.2'], node_dir: n.workDir },
      });
      expect(h.log()).toContain("hello [x 'y' $(z)]");
      // the remote temp dir is gone
      expect((await hammer(2).run(['bash', '-c', 'ls -d /tmp/scriptjig-* 2>/dev/null | wc -l'])).code).toBe(0);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('runs a script jig role over ssh in one command, and on abort kills it and removes its temp dir', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'ssh-jig-'));
    try {
      const barclamp = path.join(work, 'barclamp');
      const roleDir = path.join(barclamp, 'script', 'roles', 'ssh-sleep');
      await mkdir(roleDir, { recursive: true });
      await writeFile(path.join(roleDir, '01-sleep.sh'), 'echo "TMP=$TMPDIR"\nsleep 600 &\necho "PID=$!"\nwait\necho after-sleep\n');
      const ac = new AbortController();
      const calls: string[] = [];
      const inner = hammer(2);
      const h = await jigContext({
        hammer: {
          name: inner.name,
          actions: inner.actions,
          run: (argv, opts) => {
            calls.push(`${argv[0]} ${argv[1]}`);
            return inner.run(argv, opts);
          },
          copyTo: (l, r) => inner.copyTo(l, r),
          copyFrom: (r, l) => inner.copyFrom(r, l),
          power: (a) => inner.power(a),
        },
        jig: 'script',
        role: 'ssh-sleep',
        sourcePath: barclamp,
        workRoot: work,
        signal: ac.signal,
        node: { id: 3, name: nodes.nodes[2]!.name },
      });
      const abortAtPid = (t: string): void => {
        h.ctx.log(t);
        if (/^PID=\d+$/m.test(h.log())) ac.abort(new Error('test abort'));
      };
      const t0 = Date.now();
      await expect(scriptJig.run({ ...h.ctx, log: abortAtPid })).rejects.toThrow(/run aborted \(test abort\)/);
      expect(Date.now() - t0).toBeLessThan(5000);
      const log = h.log();
      expect(log).not.toContain('after-sleep');
      const tmp = /^TMP=(.+)$/m.exec(log)![1]!;
      const pid = /^PID=(\d+)$/m.exec(log)![1]!;
      // the launcher removed its dir itself on SIGTERM: the one launch was the only command
      expect(calls).toEqual(['bash -c']);
      expect((await inner.run(['test', '-e', tmp])).code).toBe(1);
      // the sleep got its SIGTERM from the kill channel, which may still be on its way
      const gone = async (): Promise<boolean> => (await inner.run(['test', '-e', `/proc/${pid}`])).code === 1;
      const deadline = Date.now() + 3000;
      while (!(await gone()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await gone()).toBe(true);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('refuses a changed host key with both fingerprints, the node and how to reset', async () => {
    const h = hammer(2);
    await h.run(['true']);
    const oldFp = nodes.hostKeyFingerprint(2);
    await h.close?.();
    await nodes.restartWithNewHostKey(2);
    const newFp = nodes.hostKeyFingerprint(2);
    expect(newFp).not.toBe(oldFp);
    const err = await h.run(['true']).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const msg = err!.message;
    expect(msg).toContain(nodes.nodes[2]!.name);
    expect(msg).toContain(`pinned ${oldFp}`);
    expect(msg).toContain(`offered ${newFp}`);
    expect(msg).toContain('known_hosts.json');
    expect(msg).toContain(`"${nodes.nodes[2]!.endpoint}"`);
    // still refused on retry (not re-pinned)
    await expect(h.run(['true'])).rejects.toThrow(/CHANGED/);
  });

  it('fails in seconds with the transport\'s message when sshd is down, and reconnects when it is back', async () => {
    const h = hammer(1);
    await h.run(['true']);
    await h.close?.();
    await nodes.stopNode(1);
    const t0 = Date.now();
    await expect(h.run(['true'])).rejects.toThrow(/node-1\.sshd\.test.*ECONNREFUSED/s);
    expect(Date.now() - t0).toBeLessThan(3000);
    await nodes.startNode(1);
    expect((await h.run(['echo', 'back'])).stdout).toBe('back\n');
  });

  it('times out in seconds against an address that never answers', async () => {
    const f = createSshHammerFactory(dataDir, { connectTimeoutMs: 1500 });
    try {
      // a listening socket that never speaks SSH
      const net = await import('node:net');
      const server = net.createServer(() => undefined);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as { port: number }).port;
      const h = f.create({ nodeId: 9, nodeName: 'silent.test', username: 'root', endpoint: `127.0.0.1:${port}` });
      const t0 = Date.now();
      await expect(h.run(['true'])).rejects.toThrow(/silent\.test.*[Tt]imed out/s);
      expect(Date.now() - t0).toBeLessThan(5000);
      server.close();
    } finally {
      await f.close();
    }
  });
});

// keep `fingerprint` exercised: it must match OpenSSH's format
describe('fingerprint', () => {
  it('is SHA256:<unpadded base64>', () => {
    expect(fingerprint(Buffer.from('x'))).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
