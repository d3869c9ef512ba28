/**
 * The `local` hammer: the admin host itself. Owns spawning an argv (never through a shell) in
 * its own process group, streaming its output, and killing the whole group on abort; copies are
 * plain recursive file copies. `runArgv` is shared with the sim hammer. Power is out of scope:
 * the admin host cannot switch itself off.
 */
import { spawn } from 'node:child_process';
import { cp } from 'node:fs/promises';
import { CrowbarError } from '../domain/errors.js';
import type {
  HammerActions,
  HammerFactory,
  HammerTarget,
  NodeHammer,
  PowerAction,
  RunOptions,
  RunResult,
} from './types.js';

export interface ProcessOptions {
  /**
   * After SIGTERM on abort, how long to wait before SIGKILL of the whole process group.
   * @defaultValue 5000
   */
  killGraceMs?: number;
  /**
   * Once the main process has exited, how long to keep reading output that background children
   * (still holding the pipes) write before giving up on them.
   * @defaultValue 2000
   */
  drainMs?: number;
  /**
   * Most characters of each stream kept in the result; older output is dropped (it has already
   * been streamed through `onOutput`).
   * @defaultValue 16 MiB
   */
  maxBufferChars?: number;
}

export interface SpawnSpec extends RunOptions {
  /** the complete environment of the child (not merged with anything) */
  fullEnv: NodeJS.ProcessEnv;
}

const DEFAULT_KILL_GRACE_MS = 5000;
const DEFAULT_DRAIN_MS = 2000;
const DEFAULT_MAX_BUFFER_CHARS = 16 * 1024 * 1024;

/**
 * Runs `argv` as a detached process group leader and resolves when it has exited and its output
 * is drained. Aborting `spec.signal` sends SIGTERM to the whole group, then SIGKILL after
 * `killGraceMs`; the result then has `code: null` and the signal name. Rejects if the signal was
 * already aborted or the program cannot be started.
 */
export function runArgv(argv: string[], spec: SpawnSpec, options: ProcessOptions = {}): Promise<RunResult> {
  if (argv.length === 0 || !argv[0]) return Promise.reject(new Error('run: empty argv'));
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const drainMs = options.drainMs ?? DEFAULT_DRAIN_MS;
  const maxChars = options.maxBufferChars ?? DEFAULT_MAX_BUFFER_CHARS;
  const { signal, onOutput } = spec;
  if (signal?.aborted) {
    return Promise.reject(new Error(`run of ${argv[0]} aborted before it started`, { cause: signal.reason }));
  }

  return new Promise<RunResult>((resolve, reject) => {
    const hasStdin = spec.stdin !== undefined;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: spec.cwd,
      env: spec.fullEnv,
      detached: true,
      stdio: [hasStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const out = { stdout: '', stderr: '' };
    let killedWith: NodeJS.Signals | null = null;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // ESRCH: the group is already gone
      }
    };
    const onAbort = (): void => {
      if (killedWith) return;
      killedWith = 'SIGTERM';
      killGroup('SIGTERM');
      killTimer = setTimeout(() => {
        killedWith = 'SIGKILL';
        killGroup('SIGKILL');
      }, killGraceMs);
      killTimer.unref();
    };
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (drainTimer) clearTimeout(drainTimer);
      if (err) {
        if (killTimer) clearTimeout(killTimer);
        reject(err);
        return;
      }
      // a pending SIGKILL stays armed (unref'd): stragglers of an aborted group still get it
      resolve({
        stdout: out.stdout,
        stderr: out.stderr,
        code: killedWith && exitCode === null ? null : exitCode,
        signal: exitSignal ?? (killedWith && exitCode === null ? killedWith : null),
      });
    };

    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      if (!stream) continue;
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const next = out[name] + chunk;
        out[name] = next.length > maxChars ? next.slice(next.length - maxChars) : next;
        onOutput?.(name, chunk);
      });
    }
    child.on('error', (err) => {
      finish(new Error(`cannot run ${argv[0]}: ${err.message}`, { cause: err }));
    });
    child.on('exit', (code, sig) => {
      exitCode = code;
      exitSignal = sig;
      // background children may keep the pipes open; do not wait for them forever
      drainTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, drainMs);
      drainTimer.unref();
    });
    child.on('close', () => finish());

    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    if (hasStdin && child.stdin) {
      child.stdin.on('error', () => {
        // EPIPE when the command does not read its input: not our failure
      });
      child.stdin.end(spec.stdin);
    }
  });
}

/** Environment of a child on the admin host: ours plus the caller's extras. */
function mergedEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  return { ...process.env, ...(extra ?? {}) };
}

const LOCAL_ACTIONS: HammerActions = {
  power: ['status'],
  xfer: ['copy_to', 'copy_from'],
  run: ['run'],
};

/** The admin host as a node: commands run here, copies are local copies. */
export class LocalHammer implements NodeHammer {
  readonly name = 'local';
  readonly actions: HammerActions = LOCAL_ACTIONS;
  readonly #options: ProcessOptions;

  constructor(options: ProcessOptions = {}) {
    this.#options = options;
  }

  run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return runArgv(argv, { ...opts, fullEnv: mergedEnv(opts.env) }, this.#options);
  }

  async copyTo(localPath: string, remotePath: string): Promise<void> {
    await cp(localPath, remotePath, { recursive: true, force: true });
  }

  async copyFrom(remotePath: string, localPath: string): Promise<void> {
    await cp(remotePath, localPath, { recursive: true, force: true });
  }

  async power(action: PowerAction): Promise<string> {
    if (action === 'status') return 'on';
    throw new CrowbarError(
      'NOT_SUPPORTED',
      `the local hammer cannot ${action} the admin host: it only reports power status; use an ipmi hammer for power control`,
      { hammer: 'local', action },
    );
  }
}

/** Factory for the `local` hammer; every target gets the admin host. */
export function createLocalHammerFactory(options: ProcessOptions = {}): HammerFactory {
  return {
    name: 'local',
    create(_target: HammerTarget): NodeHammer {
      return new LocalHammer(options);
    },
  };
}
