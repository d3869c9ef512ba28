/**
 * The `ssh` hammer: reaches a real node over SSH with ssh2. The factory owns one connection per
 * node (keyed by user@host:port): concurrent callers share the in-flight connect, a failed or
 * closed connection is dropped so the next call reconnects, idle connections are closed after
 * `idleMs`, and `close()` closes everything. Each `run` is one exec channel (at most
 * `maxChannels` at a time per connection, below OpenSSH's MaxSessions of 10); copies use SFTP on
 * the same connection. Login is by key only (the per-install key from {@link ensureInstallKey});
 * host keys are pinned on first contact in `<dataDir>/ssh/known_hosts.json`, and a changed key is
 * refused with an error naming both fingerprints. Every argv element is quoted by
 * {@link shellQuote}; no command line is ever built from raw values.
 *
 * Abort: every run's processes carry `CROWBAR_RUN=<random tag>` in their environment; on abort
 * the channel gets an SSH `signal` request (SIGTERM) and a second channel signals every process
 * with that tag (the program and all its children: OpenSSH ignores `signal` requests for root
 * logins), then SIGKILL the same way after `killGraceMs`, then the channel is closed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import ssh2 from 'ssh2';
import type { Client, ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';

// ssh2 is CommonJS: under Node's ESM only its default export is reliable
const { utils } = ssh2;
import { CrowbarError, InvalidError } from '../domain/errors.js';
import type {
  HammerActions,
  HammerFactory,
  HammerTarget,
  NodeHammer,
  PowerAction,
  RunOptions,
  RunResult,
  SshAccess,
} from './types.js';
import { TransportError } from './types.js';

// Quoting ////////////////////////////////////////////////////////////////////////////////////

/**
 * Quotes one word for a POSIX shell so that it arrives as exactly that word: anything outside
 * a small safe set goes in single quotes, with each `'` written as `'\''`. The empty string
 * becomes `''`. NUL cannot be passed through a shell and is rejected.
 */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new InvalidError('a command argument cannot contain a NUL byte');
  if (word === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Name of the environment variable that tags every process of one run (see {@link killRunCommand}). */
export const RUN_TAG_VAR = 'CROWBAR_RUN';

/**
 * The command line sent to the node for `argv` with `cwd` and `env`: each element quoted, the
 * program exec'ed through `env` (so it keeps the session's PID), and, when `runTag` is given,
 * `CROWBAR_RUN=<runTag>` in its environment so that it and all its children can be found again.
 */
export function buildCommand(argv: string[], opts: Pick<RunOptions, 'cwd' | 'env'> & { runTag?: string } = {}): string {
  if (argv.length === 0 || !argv[0]) throw new InvalidError('run: empty argv');
  const env = Object.entries(opts.env ?? {});
  for (const [name] of env) {
    if (!ENV_NAME.test(name)) throw new InvalidError(`run: invalid environment variable name '${name}'`);
  }
  if (opts.runTag !== undefined) env.push([RUN_TAG_VAR, opts.runTag]);
  const program = env.length > 0 ? ['env', ...env.map(([k, v]) => `${k}=${v}`), ...argv] : argv;
  const line = ['exec', ...program.map(shellQuote)].join(' ');
  return opts.cwd ? `cd ${shellQuote(opts.cwd)} && ${line}` : line;
}

/**
 * The command that sends `sig` to every process on the node whose environment holds
 * `CROWBAR_RUN=<runTag>`: the run's program and every child it started. This is how an abort
 * reaches the command even when sshd ignores SSH `signal` requests (OpenSSH does for root
 * logins, which run without post-auth privilege separation).
 */
export function killRunCommand(runTag: string, sig: 'TERM' | 'KILL'): string {
  return buildCommand(killRunArgv(runTag, sig));
}

/** {@link killRunCommand} as an argv, for running through any hammer. */
export function killRunArgv(runTag: string, sig: 'TERM' | 'KILL'): string[] {
  const script =
    'for d in /proc/[0-9]*; do ' +
    'if grep -qxz -e "$1" "$d/environ" 2>/dev/null; then kill -s "$2" "${d#/proc/}" 2>/dev/null; fi; ' +
    'done; exit 0';
  return ['sh', '-c', script, 'crowbar-kill', `${RUN_TAG_VAR}=${runTag}`, sig];
}

// Install key //////////////////////////////////////////////////////////////////////////////////

export interface InstallKey {
  /** OpenSSH-format private key (PEM text) */
  privateKey: string;
  /** `ssh-ed25519 AAAA… crowbar` */
  publicKey: string;
  /** where the private key is stored */
  path: string;
}

/**
 * The per-install key pair at `<dataDir>/ssh/id_ed25519` (+ `.pub`), generated on first call.
 */
export function ensureInstallKey(dataDir: string): InstallKey {
  const dir = path.join(dataDir, 'ssh');
  const keyPath = path.join(dir, 'id_ed25519');
  if (!existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // ssh2 occasionally emits an ed25519 key its own parser rejects ("Malformed OpenSSH
    // private key"): keep only a pair that parses, trying a few times
    let pair = utils.generateKeyPairSync('ed25519', { comment: 'crowbar' });
    for (let i = 0; i < 10 && utils.parseKey(pair.private) instanceof Error; i++) {
      pair = utils.generateKeyPairSync('ed25519', { comment: 'crowbar' });
    }
    const tmp = `${keyPath}.tmp-${process.pid}`;
    writeFileSync(tmp, pair.private, { mode: 0o600 });
    writeFileSync(`${keyPath}.pub`, `${pair.public.trim()}\n`, { mode: 0o644 });
    renameSync(tmp, keyPath);
  }
  const privateKey = readFileSync(keyPath, 'utf8');
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw new Error(`cannot read the install key ${keyPath}: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0]! : parsed;
  const publicKey = `${key.type} ${key.getPublicSSH().toString('base64')} crowbar`;
  return { privateKey, publicKey, path: keyPath };
}

// Host keys ////////////////////////////////////////////////////////////////////////////////////

/** OpenSSH-style fingerprint of a raw host key blob: `SHA256:<base64 without padding>`. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** A pinned host key. */
export interface PinnedHostKey {
  /** `SHA256:…` of the key blob */
  fingerprint: string;
  /** the key as OpenSSH writes it, `<type> <base64>`; absent in entries pinned before keys were kept */
  key?: string;
}

/** The OpenSSH `<type> <base64>` form of a raw host key blob (its first field is the type); undefined when malformed. */
function hostKeyText(blob: Buffer): string | undefined {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = blob.subarray(4, 4 + len).toString('latin1');
  return /^[A-Za-z0-9@._-]+$/.test(type) ? `${type} ${blob.toString('base64')}` : undefined;
}

/**
 * An OpenSSH known_hosts line for `key` (`<type> <base64>`) at `host:port`: `host` alone on
 * port 22 (as OpenSSH looks it up), `[host]:port` otherwise.
 */
export function knownHostsLine(host: string, port: number, key: string): string {
  return `${port === 22 ? host : `[${host}]:${port}`} ${key}`;
}

/**
 * Pinned host keys by `host:port`, kept in a JSON file as `{fingerprint, key}`. Entries written
 * before keys were kept hold just the fingerprint string; they read as `{fingerprint}` and get
 * their key on the next connect that matches the fingerprint.
 */
export class KnownHosts {
  readonly file: string;
  #entries: Record<string, PinnedHostKey> | undefined;
  #mtime = -1;

  constructor(file: string) {
    this.file = file;
  }

  /** Re-read when the file changed underneath (an operator removed an entry to accept a new key). */
  #load(): Record<string, PinnedHostKey> {
    const mtime = existsSync(this.file) ? statSync(this.file).mtimeMs : 0;
    if (mtime !== this.#mtime) this.#entries = undefined;
    if (!this.#entries) {
      this.#mtime = mtime;
      const raw = existsSync(this.file) ? (JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, unknown>) : {};
      const entries: Record<string, PinnedHostKey> = {};
      for (const [hostPort, v] of Object.entries(raw)) {
        if (typeof v === 'string') entries[hostPort] = { fingerprint: v };
        else if (v && typeof v === 'object' && typeof (v as PinnedHostKey).fingerprint === 'string') {
          const { fingerprint: fp, key } = v as PinnedHostKey;
          entries[hostPort] = typeof key === 'string' ? { fingerprint: fp, key } : { fingerprint: fp };
        }
      }
      this.#entries = entries;
    }
    return this.#entries;
  }

  get(hostPort: string): PinnedHostKey | undefined {
    return this.#load()[hostPort];
  }

  /** Removes the pin of `hostPort`; returns what was pinned. */
  delete(hostPort: string): PinnedHostKey | undefined {
    const entries = this.#load();
    const was = entries[hostPort];
    if (was === undefined) return undefined;
    delete entries[hostPort];
    this.#save(entries);
    return was;
  }

  set(hostPort: string, pin: PinnedHostKey): void {
    const entries = this.#load();
    entries[hostPort] = pin;
    this.#save(entries);
  }

  #save(entries: Record<string, PinnedHostKey>): void {
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(entries, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
    this.#mtime = statSync(this.file).mtimeMs;
  }
}

// Connections //////////////////////////////////////////////////////////////////////////////////

export interface SshFactoryOptions {
  /** OpenSSH-format private key used for every node */
  privateKey: string;
  /** file of pinned host keys; usually `<dataDir>/ssh/known_hosts.json` */
  knownHostsFile: string;
  /** @defaultValue 10000 */
  connectTimeoutMs?: number;
  /** @defaultValue 60000 */
  idleMs?: number;
  /** exec/sftp channels open at once on one connection. @defaultValue 8 */
  maxChannels?: number;
  /** after SIGTERM on abort, wait this long before SIGKILL. @defaultValue 5000 */
  killGraceMs?: number;
  /** SSH keepalive interval (a dead peer is noticed after 3 misses). @defaultValue 15000 */
  keepaliveMs?: number;
  /**
   * the file holding `privateKey`, for external SSH clients ({@link SshHammer.sshAccess},
   * which fails without it)
   */
  privateKeyPath?: string;
}

interface Endpoint {
  host: string;
  port: number;
  username: string;
  nodeName: string;
}

/** A counting semaphore for channels on one connection. */
class Slots {
  #free: number;
  readonly #waiters: Array<() => void> = [];
  constructor(n: number) {
    this.#free = n;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}

interface Connection {
  client: Client;
  slots: Slots;
  active: number;
  lastUsed: number;
  closed: boolean;
}

/** The address, port and user of a target: `endpoint` (`host:port`, `[v6]:port`) wins over `address`, then the node name. */
export function resolveEndpoint(target: HammerTarget): Endpoint {
  let host = target.address || target.nodeName;
  let port = 22;
  const ep = target.endpoint?.trim();
  if (ep) {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(ep) ?? /^([^:]+)(?::(\d+))?$/.exec(ep);
    if (!m) throw new InvalidError(`ssh hammer: cannot parse endpoint '${ep}' of node ${target.nodeName}; expected host[:port]`);
    host = m[1]!;
    if (m[2]) port = Number(m[2]);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidError(`ssh hammer: bad port in endpoint '${ep}' of node ${target.nodeName}`);
  }
  return { host, port, username: target.username || 'root', nodeName: target.nodeName };
}

export class SshHammerFactory implements HammerFactory {
  readonly name = 'ssh';
  readonly #opts: Required<Omit<SshFactoryOptions, 'knownHostsFile' | 'privateKeyPath'>>;
  readonly #privateKeyPath: string | undefined;
  readonly #known: KnownHosts;
  readonly #conns = new Map<string, Promise<Connection>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SshFactoryOptions) {
    this.#opts = {
      privateKey: options.privateKey,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      idleMs: options.idleMs ?? 60_000,
      maxChannels: options.maxChannels ?? 8,
      killGraceMs: options.killGraceMs ?? 5000,
      keepaliveMs: options.keepaliveMs ?? 15_000,
    };
    this.#privateKeyPath = options.privateKeyPath;
    this.#known = new KnownHosts(options.knownHostsFile);
  }

  get killGraceMs(): number {
    return this.#opts.killGraceMs;
  }

  /**
   * Login details of `ep` for an external SSH client, after a fresh handshake and login (not a
   * cached connection) so the pinned host key is checked now: a changed key, a refused login or
   * an unreachable node fails here with the same error a run would get.
   */
  async sshAccess(ep: Endpoint): Promise<SshAccess> {
    const keyFile = this.#privateKeyPath;
    if (keyFile === undefined) {
      throw new Error(
        `ssh hammer of node ${ep.nodeName}: this factory was built without privateKeyPath; external SSH clients cannot log in`,
      );
    }
    endClient(await this.#connect(ep, connKey(ep)));
    const pinned = this.#known.get(`${ep.host}:${ep.port}`);
    if (!pinned?.key) throw new Error(`ssh to node ${ep.nodeName}: no pinned host key recorded for ${ep.host}:${ep.port}`);
    return {
      host: ep.host,
      port: ep.port,
      username: ep.username,
      identityFile: keyFile,
      knownHostsLine: knownHostsLine(ep.host, ep.port, pinned.key),
    };
  }

  /** Forgets the pinned host key of `ep` and drops its cached connection. */
  async forgetHostKey(ep: Endpoint): Promise<{ hostPort: string; fingerprint: string | null }> {
    const hostPort = `${ep.host}:${ep.port}`;
    const was = this.#known.delete(hostPort);
    await this.closeEndpoint(ep);
    return { hostPort, fingerprint: was?.fingerprint ?? null };
  }

  create(target: HammerTarget): NodeHammer {
    return new SshHammer(this, resolveEndpoint(target));
  }

  /** Number of cached (open or opening) connections. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Runs `fn` on a channel slot of the node's connection, connecting if needed. */
  async withConnection<T>(ep: Endpoint, fn: (client: Client) => Promise<T>): Promise<T> {
    const conn = await this.#connection(ep);
    conn.active++;
    conn.lastUsed = Date.now();
    await conn.slots.acquire();
    try {
      return await fn(conn.client);
    } finally {
      conn.slots.release();
      conn.active--;
      conn.lastUsed = Date.now();
    }
  }

  /** Closes the cached connection of one endpoint. */
  async closeEndpoint(ep: Endpoint): Promise<void> {
    const key = connKey(ep);
    const p = this.#conns.get(key);
    if (!p) return;
    this.#conns.delete(key);
    const conn = await p.catch(() => undefined);
    if (conn) endClient(conn);
  }

  /** Closes every connection and stops the idle timer. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const all = [...this.#conns.values()];
    this.#conns.clear();
    for (const p of all) {
      const conn = await p.catch(() => undefined);
      if (conn) endClient(conn);
    }
  }

  #connection(ep: Endpoint): Promise<Connection> {
    const key = connKey(ep);
    const cached = this.#conns.get(key);
    if (cached) return cached;
    const p = this.#connect(ep, key);
    this.#conns.set(key, p);
    // a failed connect is not cached: the next call tries again
    p.catch(() => {
      if (this.#conns.get(key) === p) this.#conns.delete(key);
    });
    this.#armIdleTimer();
    return p;
  }

  #armIdleTimer(): void {
    if (this.#timer) return;
    const every = Math.max(250, Math.min(this.#opts.idleMs / 2, 30_000));
    this.#timer = setInterval(() => this.#sweep(), every);
    this.#timer.unref();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, p] of this.#conns) {
      void p.then(
        (conn) => {
          if (conn.active === 0 && now - conn.lastUsed >= this.#opts.idleMs && this.#conns.get(key) === p) {
            this.#conns.delete(key);
            endClient(conn);
          }
        },
        () => undefined,
      );
    }
    if (this.#conns.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #connect(ep: Endpoint, key: string): Promise<Connection> {
    const hostPort = `${ep.host}:${ep.port}`;
    const where = `node ${ep.nodeName} (${ep.username}@${hostPort})`;
    return new Promise<Connection>((resolve, reject) => {
      const client = new ssh2.Client();
      let hostKeyError: Error | undefined;
      let settled = false;
      const conn: Connection = {
        client,
        slots: new Slots(this.#opts.maxChannels),
        active: 0,
        lastUsed: Date.now(),
        closed: false,
      };
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(hardTimer);
        client.end();
        reject(err);
      };
      // readyTimeout covers the handshake; this also covers a TCP connect that never completes
      const hardTimer = setTimeout(() => {
        fail(new TransportError(`ssh to ${where}: timed out after ${this.#opts.connectTimeoutMs} ms connecting`));
        client.destroy();
      }, this.#opts.connectTimeoutMs + 1000);
      hardTimer.unref();

      client.on('ready', () => {
        if (settled) return;
        settled = true;
        clearTimeout(hardTimer);
        // as OpenSSH does: without it each short exec waits ~40 ms on delayed ACKs (Nagle)
        client.setNoDelay(true);
        resolve(conn);
      });
      client.on('error', (err: Error & { level?: string }) => {
        // the node answered but refused our key: not a reachability problem
        const refused = err.level === 'client-authentication';
        const text = `ssh to ${where}: ${err.message}${err.level ? ` (${err.level})` : ''}`;
        const msg = hostKeyError ?? (refused ? new Error(text, { cause: err }) : new TransportError(text, { cause: err }));
        if (!settled) {
          fail(msg);
          return;
        }
        conn.closed = true;
        this.#forget(key, conn);
      });
      client.on('close', () => {
        conn.closed = true;
        this.#forget(key, conn);
        if (!settled) fail(hostKeyError ?? new TransportError(`ssh to ${where}: connection closed during the handshake`));
      });

      const config: ConnectConfig = {
        host: ep.host,
        port: ep.port,
        username: ep.username,
        privateKey: this.#opts.privateKey,
        readyTimeout: this.#opts.connectTimeoutMs,
        keepaliveInterval: this.#opts.keepaliveMs,
        keepaliveCountMax: 3,
        algorithms: {
          kex: {
            prepend: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
            append: [],
            remove: [],
          },
        },
        hostVerifier: (keyBlob: Buffer): boolean => {
          const fp = fingerprint(keyBlob);
          const key = hostKeyText(keyBlob);
          const pinned = this.#known.get(hostPort);
          if (pinned === undefined || (pinned.fingerprint === fp && pinned.key === undefined && key)) {
            // first contact; or an entry pinned before keys were kept, now verified: keep the key
            this.#known.set(hostPort, key ? { fingerprint: fp, key } : { fingerprint: fp });
            return true;
          }
          if (pinned.fingerprint === fp) return true;
          hostKeyError = new CrowbarError(
            'CONFLICT',
            `ssh to ${where}: the host key has CHANGED: pinned ${pinned.fingerprint}, offered ${fp}. ` +
              `Refusing to connect (possible man-in-the-middle, or the node was reinstalled). ` +
              `If the change is expected (the node was reinstalled): crowbar nodes forget-host-key ${ep.nodeName}, then retry ` +
              `(or remove the entry "${hostPort}" from ${this.#known.file}).`,
            { node: ep.nodeName, hostPort, pinned: pinned.fingerprint, offered: fp, knownHostsFile: this.#known.file },
          );
          return false;
        },
      };
      try {
        client.connect(config);
      } catch (err) {
        fail(new Error(`ssh to ${where}: ${(err as Error).message}`, { cause: err }));
      }
    });
  }

  #forget(key: string, conn: Connection): void {
    const p = this.#conns.get(key);
    if (!p) return;
    void p.then(
      (c) => {
        if (c === conn && this.#conns.get(key) === p) this.#conns.delete(key);
      },
      () => undefined,
    );
  }
}

function connKey(ep: Endpoint): string {
  return `${ep.username}@${ep.host}:${ep.port}`;
}

function endClient(conn: Connection): void {
  conn.closed = true;
  conn.client.end();
}

// The hammer ///////////////////////////////////////////////////////////////////////////////////

const SSH_ACTIONS: HammerActions = {
  power: ['reboot'],
  xfer: ['copy_to', 'copy_from'],
  run: ['run'],
};

const DEFAULT_MAX_BUFFER_CHARS = 16 * 1024 * 1024;

export class SshHammer implements NodeHammer {
  readonly name = 'ssh';
  readonly actions: HammerActions = SSH_ACTIONS;
  readonly #factory: SshHammerFactory;
  readonly endpoint: Endpoint;

  constructor(factory: SshHammerFactory, endpoint: Endpoint) {
    this.#factory = factory;
    this.endpoint = endpoint;
  }

  async run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    const runTag = randomBytes(12).toString('hex');
    const command = buildCommand(argv, { ...opts, runTag });
    const { signal } = opts;
    if (signal?.aborted) {
      throw new Error(`run of ${argv[0]} aborted before it started`, { cause: signal.reason });
    }
    return this.#factory.withConnection(this.endpoint, (client) => this.#exec(client, command, runTag, argv[0]!, opts));
  }

  #exec(client: Client, command: string, runTag: string, program: string, opts: RunOptions): Promise<RunResult> {
    const { signal, onOutput } = opts;
    const where = `node ${this.endpoint.nodeName}`;
    return new Promise<RunResult>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new Error(`run of ${program} aborted before it started`, { cause: signal.reason }));
        return;
      }
      client.exec(command, (err, stream: ClientChannel) => {
        if (err) {
          reject(new TransportError(`ssh to ${where}: cannot open a channel for ${program}: ${err.message}`, { cause: err }));
          return;
        }
        const out = { stdout: '', stderr: '' };
        const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
        let code: number | null = null;
        let exitSignal: string | null = null;
        let killedWith: string | null = null;
        let killTimer: NodeJS.Timeout | undefined;
        let closeTimer: NodeJS.Timeout | undefined;
        let settled = false;

        const take = (name: 'stdout' | 'stderr', data: Buffer): void => {
          const chunk = decoders[name].write(data);
          if (!chunk) return;
          const next = out[name] + chunk;
          out[name] = next.length > DEFAULT_MAX_BUFFER_CHARS ? next.slice(next.length - DEFAULT_MAX_BUFFER_CHARS) : next;
          onOutput?.(name, chunk);
        };
        const onAbort = (): void => {
          if (killedWith) return;
          killedWith = 'SIGTERM';
          sendSignal(stream, 'TERM');
          killRun(client, runTag, 'TERM');
          killTimer = setTimeout(() => {
            killedWith = 'SIGKILL';
            sendSignal(stream, 'KILL');
            killRun(client, runTag, 'KILL');
            closeTimer = setTimeout(() => stream.close(), 1000);
            closeTimer.unref();
          }, this.#factory.killGraceMs);
          killTimer.unref();
        };
        const finish = (): void => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          if (killTimer) clearTimeout(killTimer);
          if (closeTimer) clearTimeout(closeTimer);
          for (const name of ['stdout', 'stderr'] as const) {
            const rest = decoders[name].end();
            if (rest) {
              out[name] += rest;
              onOutput?.(name, rest);
            }
          }
          if (code === null && exitSignal === null && !killedWith) {
            reject(new TransportError(`ssh to ${where}: the connection was lost while running ${program}`));
            return;
          }
          resolve({
            stdout: out.stdout,
            stderr: out.stderr,
            code,
            signal: exitSignal ? (exitSignal.startsWith('SIG') ? exitSignal : `SIG${exitSignal}`) : code === null ? killedWith : null,
          });
        };

        stream.on('data', (d: Buffer) => take('stdout', d));
        stream.stderr.on('data', (d: Buffer) => take('stderr', d));
        stream.on('exit', (c: number | null, sig?: string) => {
          if (typeof c === 'number') code = c;
          if (sig) exitSignal = sig;
        });
        stream.on('close', finish);
        stream.on('error', () => {
          // surfaced through 'close'
        });
        signal?.addEventListener('abort', onAbort, { once: true });
        if (opts.stdin !== undefined) stream.end(opts.stdin);
        else stream.end();
      });
    });
  }

  async copyTo(localPath: string, remotePath: string): Promise<void> {
    await this.#sftp(async (sftp) => {
      await putTree(sftp, localPath, remotePath);
    }, `copy ${localPath} to ${remotePath}`);
  }

  async copyFrom(remotePath: string, localPath: string): Promise<void> {
    await this.#sftp(async (sftp) => {
      await getTree(sftp, remotePath, localPath);
    }, `copy ${remotePath} from the node to ${localPath}`);
  }

  #sftp(fn: (sftp: SFTPWrapper) => Promise<void>, what: string): Promise<void> {
    const where = `node ${this.endpoint.nodeName}`;
    return this.#factory.withConnection(this.endpoint, async (client) => {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
        client.sftp((err, s) =>
          err ? reject(new Error(`ssh to ${where}: cannot open SFTP: ${err.message}`, { cause: err })) : resolve(s),
        );
      });
      try {
        await fn(sftp);
      } catch (err) {
        throw new Error(`ssh to ${where}: cannot ${what}: ${(err as Error).message}`, { cause: err });
      } finally {
        sftp.end();
      }
    });
  }

  async power(action: PowerAction): Promise<string> {
    if (action !== 'reboot') {
      throw new CrowbarError(
        'NOT_SUPPORTED',
        `the ssh hammer cannot ${action} node ${this.endpoint.nodeName}: it can only reboot a running node; use an ipmi hammer for power control`,
        { hammer: 'ssh', action },
      );
    }
    const res = await this.run(['reboot']);
    if (res.code !== 0 && res.code !== null) {
      throw new Error(`reboot of node ${this.endpoint.nodeName} failed (exit status ${res.code}): ${res.stderr.trim()}`);
    }
    return 'rebooting';
  }

  async close(): Promise<void> {
    await this.#factory.closeEndpoint(this.endpoint);
  }

  /** See {@link NodeHammer.forgetHostKey}. */
  forgetHostKey(): Promise<{ hostPort: string; fingerprint: string | null }> {
    return this.#factory.forgetHostKey(this.endpoint);
  }

  /** See {@link NodeHammer.sshAccess}: checks the pinned host key with a fresh handshake. */
  sshAccess(): Promise<SshAccess> {
    return this.#factory.sshAccess(this.endpoint);
  }
}

interface ChannelInternals {
  outgoing?: { id: number; state: string };
  _client?: { _protocol?: { signal(id: number, name: string): void } };
}

/**
 * Sends an SSH `signal` request. ssh2's `ClientChannel.signal` refuses once we have sent EOF
 * (stdin closed), although the channel is still open and OpenSSH still honours the request; so
 * in that state the request goes through the channel's protocol object directly.
 */
function sendSignal(stream: ClientChannel, name: 'TERM' | 'KILL'): void {
  try {
    const ch = stream as unknown as ChannelInternals;
    const state = ch.outgoing?.state;
    if (state === 'open' && stream.writable) stream.signal(name);
    else if ((state === 'open' || state === 'eof') && ch.outgoing && ch._client?._protocol) {
      ch._client._protocol.signal(ch.outgoing.id, name);
    }
  } catch {
    // the channel is already gone
  }
}

/** Runs {@link killRunCommand} on its own channel; best effort, its result is not awaited. */
function killRun(client: Client, runTag: string, sig: 'TERM' | 'KILL'): void {
  try {
    client.exec(killRunCommand(runTag, sig), (err, ch) => {
      if (err) return;
      ch.on('data', () => undefined);
      ch.stderr.on('data', () => undefined);
      ch.on('error', () => undefined);
      ch.end();
    });
  } catch {
    // the connection is gone: so is the session
  }
}

// SFTP trees ///////////////////////////////////////////////////////////////////////////////////

function sftpCall<T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}

async function putTree(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
  const st = await stat(local);
  if (st.isDirectory()) {
    await sftpCall<void>((cb) => sftp.mkdir(remote, { mode: st.mode & 0o7777 }, (e) => cb(e))).catch(async (err) => {
      const rst = await sftpCall<{ isDirectory(): boolean }>((cb) => sftp.stat(remote, cb)).catch(() => undefined);
      if (!rst?.isDirectory()) throw err;
    });
    for (const entry of await readdir(local)) {
      await putTree(sftp, path.join(local, entry), `${remote.replace(/\/+$/, '')}/${entry}`);
    }
    return;
  }
  if (!st.isFile()) return;
  await sftpCall<void>((cb) => sftp.fastPut(local, remote, (e) => cb(e)));
  await sftpCall<void>((cb) => sftp.chmod(remote, st.mode & 0o7777, (e) => cb(e)));
}

async function getTree(sftp: SFTPWrapper, remote: string, local: string): Promise<void> {
  const st = await sftpCall<{ isDirectory(): boolean; isFile(): boolean; mode: number }>((cb) => sftp.stat(remote, cb));
  if (st.isDirectory()) {
    await mkdir(local, { recursive: true });
    const list = await sftpCall<Array<{ filename: string }>>((cb) => sftp.readdir(remote, cb));
    for (const { filename } of list) {
      if (filename === '.' || filename === '..') continue;
      await getTree(sftp, `${remote.replace(/\/+$/, '')}/${filename}`, path.join(local, filename));
    }
    return;
  }
  if (!st.isFile()) return;
  await mkdir(path.dirname(local), { recursive: true });
  await sftpCall<void>((cb) => sftp.fastGet(remote, local, (e) => cb(e)));
}

// Factory helper ///////////////////////////////////////////////////////////////////////////////

/**
 * The `ssh` hammer factory of an install: its key pair under `<dataDir>/ssh/` (made on first
 * start) and pinned host keys in `<dataDir>/ssh/known_hosts.json`.
 */
export function createSshHammerFactory(
  dataDir: string,
  options: Omit<SshFactoryOptions, 'privateKey' | 'knownHostsFile'> = {},
): SshHammerFactory {
  const key = ensureInstallKey(dataDir);
  return new SshHammerFactory({
    ...options,
    privateKey: key.privateKey,
    privateKeyPath: key.path,
    knownHostsFile: path.join(dataDir, 'ssh', 'known_hosts.json'),
  });
}
