/**
 * The `sim` hammer: a simulated node whose "machine" is a sandbox directory on the admin host,
 * `<simRoot>/<node-name>/`. Commands really run (here), with HOME, TMPDIR and cwd inside the
 * sandbox; remote paths are mapped into it; power is a state file. It is a convenience for the
 * simulator and tests, not a security boundary: a command may still touch the host outside.
 */
import { appendFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CrowbarError, InvalidError } from '../domain/errors.js';
import { runArgv } from './local.js';
import type { ProcessOptions } from './local.js';
import type {
  HammerActions,
  HammerFactory,
  HammerTarget,
  NodeHammer,
  PowerAction,
  RunOptions,
  RunResult,
} from './types.js';

/**
 * Remote directories that belong to the node. An argv element equal to one of these or below
 * it (`/tmp/scriptjig-ab12Cd/runner`) is rewritten into the sandbox before the command runs.
 */
export const SIM_PRIVATE_PREFIXES: readonly string[] = ['/tmp', '/var/tmp', '/root'];

const SIM_ACTIONS: HammerActions = {
  power: ['status', 'on', 'off', 'cycle', 'reset', 'halt', 'reboot'],
  xfer: ['copy_to', 'copy_from'],
  run: ['run'],
};

type PowerState = 'on' | 'off';

/**
 * One simulated node. Path mapping (`hostPath`):
 * - a path already inside the sandbox is used as is (so output such as `mktemp`'s, which
 *   prints the host path, can be fed back unchanged);
 * - any other absolute remote path `/a/b` becomes `<sandbox>/a/b` (`..` cannot climb out);
 * - a relative remote path is relative to the sandbox root (the default cwd).
 * `run` applies that mapping to `cwd` and to argv elements under {@link SIM_PRIVATE_PREFIXES};
 * other argv elements (`bash`, `/usr/bin/env`, flags) are left alone so host programs work.
 */
export class SimHammer implements NodeHammer {
  readonly name = 'sim';
  readonly actions: HammerActions = SIM_ACTIONS;
  /** absolute host directory that is this node's filesystem root */
  readonly sandbox: string;
  readonly nodeName: string;
  readonly #options: ProcessOptions;
  #ready: Promise<void> | undefined;
  #powerQueue: Promise<unknown> = Promise.resolve();

  constructor(simRoot: string, nodeName: string, options: ProcessOptions = {}) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(nodeName)) {
      throw new InvalidError(`sim hammer: node name '${nodeName}' cannot name a sandbox directory`, { nodeName });
    }
    this.nodeName = nodeName;
    this.sandbox = path.resolve(simRoot, nodeName);
    this.#options = options;
  }

  /** Host path of a remote path on this node (see the class comment). */
  hostPath(remotePath: string): string {
    if (this.#inside(remotePath)) return path.resolve(remotePath);
    const rooted = path.posix.normalize(`/${remotePath}`);
    return path.resolve(this.sandbox, `.${rooted}`);
  }

  async run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    await this.#ensure();
    const mapped = argv.map((arg) => this.#mapArg(arg));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(opts.env ?? {}),
      HOME: path.join(this.sandbox, 'root'),
      TMPDIR: path.join(this.sandbox, 'tmp'),
      CROWBAR_SIM_ROOT: this.sandbox,
      CROWBAR_SIM_NODE: this.nodeName,
    };
    const cwd = opts.cwd === undefined ? this.sandbox : this.hostPath(opts.cwd);
    return runArgv(mapped, { ...opts, cwd, fullEnv: env }, this.#options);
  }

  async copyTo(localPath: string, remotePath: string): Promise<void> {
    await this.#ensure();
    await cp(localPath, this.hostPath(remotePath), { recursive: true, force: true });
  }

  async copyFrom(remotePath: string, localPath: string): Promise<void> {
    await this.#ensure();
    await cp(this.hostPath(remotePath), localPath, { recursive: true, force: true });
  }

  /**
   * Drives the simulated power state (`<sandbox>/.sim/power`, default on) and appends every
   * action to `<sandbox>/.sim/power.log`. Returns the resulting state, e.g. `on`.
   */
  power(action: PowerAction): Promise<string> {
    const next = this.#powerQueue.then(() => this.#power(action));
    this.#powerQueue = next.catch(() => undefined);
    return next;
  }

  async #power(action: PowerAction): Promise<string> {
    await this.#ensure();
    const current = await this.powerState();
    let state: PowerState;
    switch (action) {
      case 'status':
        return current;
      case 'on':
      case 'cycle':
      case 'reset':
      case 'reboot':
        state = 'on';
        break;
      case 'off':
      case 'halt':
        state = 'off';
        break;
      default:
        throw new CrowbarError('NOT_SUPPORTED', `the sim hammer cannot '${action}' node ${this.nodeName}`, {
          hammer: 'sim',
          action,
        });
    }
    const dir = path.join(this.sandbox, '.sim');
    await writeFile(path.join(dir, 'power'), `${state}\n`);
    await appendFile(path.join(dir, 'power.log'), `${new Date().toISOString()} ${action} ${current} -> ${state}\n`);
    return state;
  }

  /** The current simulated power state. */
  async powerState(): Promise<PowerState> {
    try {
      const text = (await readFile(path.join(this.sandbox, '.sim', 'power'), 'utf8')).trim();
      return text === 'off' ? 'off' : 'on';
    } catch {
      return 'on';
    }
  }

  /** Every power action recorded so far, oldest first (`<iso time> <action> <from> -> <to>`). */
  async powerLog(): Promise<string[]> {
    try {
      const text = await readFile(path.join(this.sandbox, '.sim', 'power.log'), 'utf8');
      return text.split('\n').filter((l) => l.length > 0);
    } catch {
      return [];
    }
  }

  #inside(p: string): boolean {
    if (!path.isAbsolute(p)) return false;
    const n = path.resolve(p);
    return n === this.sandbox || n.startsWith(`${this.sandbox}${path.sep}`);
  }

  #mapArg(arg: string): string {
    if (!arg.startsWith('/') || this.#inside(arg)) return arg;
    const n = path.posix.normalize(arg);
    const privatePrefix = SIM_PRIVATE_PREFIXES.some((p) => n === p || n.startsWith(`${p}/`));
    return privatePrefix ? this.hostPath(n) : arg;
  }

  #ensure(): Promise<void> {
    this.#ready ??= (async () => {
      for (const dir of ['tmp', 'var/tmp', 'root', '.sim']) {
        await mkdir(path.join(this.sandbox, dir), { recursive: true });
      }
    })().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }
}

/** A hammer factory whose hammers are {@link SimHammer}s (so callers can use `hostPath`). */
export interface SimHammerFactory extends HammerFactory {
  create(target: HammerTarget): SimHammer;
}

/**
 * Factory for `sim` hammers: node `n` gets the sandbox `<simRoot>/<n>/`. Hammers for the same
 * node share nothing but the directory, so several may exist at once.
 */
export function createSimHammerFactory(
  simRoot: string,
  options: ProcessOptions = {},
): SimHammerFactory {
  const root = path.resolve(simRoot);
  return {
    name: 'sim',
    create(target: HammerTarget): SimHammer {
      return new SimHammer(root, target.nodeName, options);
    },
  };
}
