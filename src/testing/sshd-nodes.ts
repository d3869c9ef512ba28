/**
 * Test helper: N real OpenSSH servers (Debian `/usr/sbin/sshd`, started by hand, not by systemd)
 * on loopback addresses, each one a "node" with its own sshd_config, ed25519 host key, PidFile,
 * log, `AuthorizedKeysFile` (holding the given public key; exported to its sessions as
 * `CROWBAR_AUTHORIZED_KEYS`) and a private work directory (`workDir`, exported as
 * `CROWBAR_NODE_DIR`).
 *
 * Isolation: as root, each sshd runs in its own mount namespace in which the directory holding
 * all the nodes is covered by an empty tmpfs with only that node's own directory bound back at
 * its usual path, so a role on one node cannot see (or write) another node's files; the tests
 * still read every node's files at those paths from outside. Otherwise a node is this host:
 * the same `/usr`, `/tmp`, `jq` and `bash` (each jig run makes its own private temp dir).
 *
 * Addresses: `127.<a>.<b>.<1..N>` (all of 127/8 is loopback on Linux) with a random `<a>.<b>`
 * unless `subnet` is given, so parallel test files do not collide. Port 22 when running as root
 * (sshd needs root for that and for logging in as other users), otherwise a random high port
 * and the login user is the current user. Sessions get `SHLVL=1` so bash skips ~/.bashrc.
 */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const SSHD_PATH = '/usr/sbin/sshd';

export interface SshdNode {
  index: number;
  /** `node-<i>.sshd.test` */
  name: string;
  address: string;
  port: number;
  username: string;
  /** the node's own directory (config, keys, pid, log) */
  dir: string;
  /** the node's private writable area */
  workDir: string;
  /** pid of the running sshd, or null when stopped */
  pid: number | null;
  /** `host:port` for a HammerTarget's endpoint */
  endpoint: string;
}

export interface SshdNodesOptions {
  /** public key lines put in every node's authorized_keys */
  authorizedKeys: string[];
  /** first three octets, e.g. `127.0.1`; default a random `127.a.b` */
  subnet?: string;
  /** @defaultValue 10000 */
  startTimeoutMs?: number;
}

/** Why real sshd nodes cannot run here, or null when they can. */
export function sshdUnavailableReason(): string | null {
  if (!existsSync(SSHD_PATH)) return `${SSHD_PATH} is not installed (apt-get install openssh-server)`;
  if (process.getuid?.() !== 0) return 'not running as root (sshd on port 22 and privilege separation need root)';
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'ssh-keygen is not installed';
  }
  return null;
}

export class SshdNodes {
  readonly base: string;
  readonly nodes: SshdNode[] = [];
  readonly #procs = new Map<number, ChildProcess>();
  readonly #startTimeoutMs: number;

  private constructor(base: string, startTimeoutMs: number) {
    this.base = base;
    this.#startTimeoutMs = startTimeoutMs;
  }

  /** Starts `count` sshd nodes; on any failure the ones already started are stopped. */
  static async start(count: number, options: SshdNodesOptions): Promise<SshdNodes> {
    const base = await mkdtemp(path.join(os.tmpdir(), 'sshd-nodes-'));
    const set = new SshdNodes(base, options.startTimeoutMs ?? 10_000);
    const isRoot = process.getuid?.() === 0;
    const subnet =
      options.subnet ?? `127.${64 + Math.floor(Math.random() * 128)}.${1 + Math.floor(Math.random() * 250)}`;
    const username = os.userInfo().username;
    if (isRoot) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    try {
      for (let i = 0; i < count; i++) {
        const dir = path.join(base, `node-${i}`);
        const workDir = path.join(dir, 'work');
        mkdirSync(workDir, { recursive: true });
        const address = `${subnet}.${i + 1}`;
        const port = isRoot ? 22 : 20000 + Math.floor(Math.random() * 40000);
        writeFileSync(path.join(dir, 'authorized_keys'), `${options.authorizedKeys.join('\n')}\n`, { mode: 0o600 });
        set.#newHostKey(dir);
        writeFileSync(path.join(dir, 'sshd_config'), sshdConfig(dir, workDir, address, port));
        set.nodes.push({
          index: i,
          name: `node-${i}.sshd.test`,
          address,
          port,
          username,
          dir,
          workDir,
          pid: null,
          endpoint: `${address}:${port}`,
        });
      }
      await Promise.all(set.nodes.map((n) => set.#startNode(n)));
    } catch (err) {
      await set.stop();
      throw err;
    }
    return set;
  }

  /** Host key fingerprint of node `i` as `SHA256:…`. */
  hostKeyFingerprint(i: number): string {
    const out = execFileSync('ssh-keygen', ['-l', '-f', path.join(this.#node(i).dir, 'ssh_host_ed25519_key.pub')], {
      encoding: 'utf8',
    });
    return out.split(' ')[1]!;
  }

  /**
   * Takes node `i` off the network as a crash would: kills its open sessions (their sshd
   * processes, so established connections drop) and stops its listening sshd; waits for exit.
   */
  async stopNode(i: number): Promise<void> {
    const node = this.#node(i);
    const child = this.#procs.get(i);
    if (!child || node.pid === null) return;
    for (const pid of childPids(node.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    try {
      process.kill(node.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const t = setTimeout(() => {
      try {
        if (node.pid !== null) process.kill(node.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 3000);
    await exited;
    clearTimeout(t);
    this.#procs.delete(i);
    node.pid = null;
  }

  /** Starts node `i` again (same address, key and config). */
  async startNode(i: number): Promise<void> {
    await this.#startNode(this.#node(i));
  }

  /** Stops node `i`, gives it a fresh host key, and starts it again. */
  async restartWithNewHostKey(i: number): Promise<void> {
    const node = this.#node(i);
    await this.stopNode(i);
    this.#newHostKey(node.dir);
    await this.#startNode(node);
  }

  /** Stops every sshd by PID and removes the nodes' directories. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.stopNode(n.index)));
    await rm(this.base, { recursive: true, force: true });
  }

  #node(i: number): SshdNode {
    const node = this.nodes[i];
    if (!node) throw new Error(`no sshd node ${i} (have ${this.nodes.length})`);
    return node;
  }

  #newHostKey(dir: string): void {
    const key = path.join(dir, 'ssh_host_ed25519_key');
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sshd-node', '-f', key], { stdio: 'ignore' });
  }

  async #startNode(node: SshdNode): Promise<void> {
    if (node.pid !== null) return;
    const logFile = path.join(node.dir, 'sshd.log');
    const sshd = [SSHD_PATH, '-D', '-f', path.join(node.dir, 'sshd_config'), '-E', logFile];
    // unshare and sh exec, so the child's pid is sshd's
    const [cmd, ...args] = process.getuid?.() === 0 ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', HIDE_OTHER_NODES, 'sshd-node', this.base, node.dir, ...sshd] : sshd;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (c: string) => {
      stderr += c;
    });
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, sig) => resolve(`exited (${code ?? sig})`));
      child.once('error', (err) => resolve(`could not start: ${err.message}`));
    });
    const deadline = Date.now() + this.#startTimeoutMs;
    for (;;) {
      const dead = await Promise.race([exited, delay(50).then(() => null)]);
      if (dead !== null) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        throw new Error(`sshd for ${node.name} on ${node.endpoint} ${dead}: ${(stderr + log).trim()}`);
      }
      if (await bannerAt(node.address, node.port)) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`sshd for ${node.name} did not answer on ${node.endpoint} within ${this.#startTimeoutMs} ms`);
      }
    }
    node.pid = child.pid ?? null;
    this.#procs.set(node.index, child);
  }
}

/**
 * Run inside a node's new mount namespace as `sh -c … sshd-node <base> <nodeDir> <sshd argv…>`:
 * keeps the node's directory at /mnt, covers <base> (all nodes) with an empty tmpfs, binds the
 * node's own directory back at its path, then execs sshd.
 */
const HIDE_OTHER_NODES = [
  'set -e',
  'base=$1; own=$2; shift 2',
  'mount --bind "$own" /mnt',
  'mount -t tmpfs -o mode=0755 sshd-nodes "$base"',
  'mkdir -p "$own"',
  'mount --bind /mnt "$own"',
  'umount /mnt',
  'exec "$@"',
].join('\n');

function sshdConfig(dir: string, workDir: string, address: string, port: number): string {
  return [
    `ListenAddress ${address}:${port}`,
    `HostKey ${path.join(dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'UsePAM no',
    'StrictModes no',
    'MaxSessions 20',
    'MaxStartups 100:30:200',
    'UseDNS no',
    'PrintMotd no',
    'X11Forwarding no',
    // CROWBAR_AUTHORIZED_KEYS: where the crowbar-access role installs keys on this node
    `SetEnv SHLVL=1 CROWBAR_NODE_DIR=${workDir} CROWBAR_AUTHORIZED_KEYS=${path.join(dir, 'authorized_keys')}`,
    'Subsystem sftp internal-sftp',
    'LogLevel INFO',
    '',
  ].join('\n');
}

/** PIDs whose parent is `ppid` (from /proc/<pid>/stat). */
function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // the command name (field 2) may hold spaces and parentheses: fields after the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when an SSH banner can be read at address:port. */
function bannerAt(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('data', (d) => done(d.toString('latin1').startsWith('SSH-')));
    sock.once('error', () => done(false));
  });
}
