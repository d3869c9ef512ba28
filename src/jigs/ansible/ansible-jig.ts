/**
 * The `ansible` jig: runs `ansible-playbook` on the admin host against the run's one node, using the
 * barclamp's `ansible/playbooks/<role>.yml`, else a generated play of its role `ansible/roles/<role>/`
 * (facts gathered, `min` subset: upstream roles expect ansible_env, distribution, …). Inputs go in as
 * `!unsafe` extra vars; set_stats values come back as the wall. Owns the run's Ansible config in
 * workDir, ending every process it causes (ssh masters, tasks on the node) and the failure messages.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JsonObject } from '../../domain/json.js';
import { runArgv } from '../../hammers/local.js';
import { killRunArgv, RUN_TAG_VAR } from '../../hammers/ssh.js';
import { TransportError } from '../../hammers/types.js';
import type { RunResult, SshAccess } from '../../hammers/types.js';
import { resolveAssetPath } from '../assets.js';
import { barclampSource, checkRoleName, isDir, isFile, runWhere, throwIfAborted } from '../remote.js';
import { JigFailure, defineJig } from '../types.js';
import type { JigContext, JigDefinition, JigResult } from '../types.js';
import { describeFailure, readFailures, readWall, unreachableFailure } from './outcome.js';
import { ansibleCfg, inventoryYaml, rolePlaybookYaml, unsafeYaml } from './run-files.js';
import type { AnsibleTarget } from './run-files.js';

export interface AnsibleJigOptions {
  /** the ansible-playbook program. @defaultValue `ansible-playbook` (found on PATH) */
  ansiblePlaybook?: string;
  /** directory holding crowbar_wall.py. @defaultValue beside this module, see {@link resolveAssetPath} */
  callbackDir?: string;
  /**
   * On abort, SIGTERM goes to ansible-playbook's process group and the run's processes on the
   * node; SIGKILL follows after this long. Keep it well under the annealer's 5 s give-up.
   * @defaultValue 2000
   */
  killGraceMs?: number;
  /** ssh ConnectTimeout for Ansible's connections, in seconds. @defaultValue 10 */
  connectTimeoutSeconds?: number;
}

const CALLBACK_FROM_ROOT = path.join('src', 'jigs', 'ansible', 'callback', 'crowbar_wall.py');
const OUTPUT_TAIL_LINES = 200;
const STOPPED = 'ansible-playbook was stopped';
/** the interpreter on ssh nodes; `env` puts the run tag into every module's environment */
const NODE_PYTHON = '/usr/bin/python3';
/** a name Ansible's inventory takes as one plain host (no ranges, no port) */
const PLAIN_HOST = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** the longest control dir: ssh appends `/<10 hex>` and a socket path has ~100 bytes */
const CONTROL_DIR_MAX = 80;

/** Where crowbar_wall.py is: beside this module, or under the source tree when running from dist/. */
export function resolveCallbackDir(moduleUrl: string = import.meta.url): string {
  return path.dirname(resolveAssetPath(moduleUrl, CALLBACK_FROM_ROOT, path.join('callback', 'crowbar_wall.py')));
}

/** Builds the ansible jig; `ansibleJig` is the default instance. */
export function createAnsibleJig(options: AnsibleJigOptions = {}): JigDefinition {
  const program = options.ansiblePlaybook ?? 'ansible-playbook';
  const killGraceMs = options.killGraceMs ?? 2000;
  const connectTimeoutSeconds = options.connectTimeoutSeconds ?? 10;
  let callbackDir = options.callbackDir;

  const run = async (ctx: JigContext): Promise<JigResult> => {
    const where = runWhere(ctx);
    const play = await findPlay(ctx, where);
    callbackDir ??= resolveCallbackDir();
    const hostName = PLAIN_HOST.test(ctx.node.name) ? ctx.node.name : `node-${ctx.node.id}`;
    const target = await nodeTarget(ctx, where);
    throwIfAborted(ctx, where, STOPPED);

    // the run's files, private to us (workDir is removed by the annealer)
    const stage = path.join(ctx.workDir, 'ansible');
    const out = path.join(stage, 'out');
    await mkdir(out, { recursive: true, mode: 0o700 });
    const control = await controlDir(stage);
    const runTag = randomBytes(12).toString('hex');
    try {
      const files = await writeRunFiles(ctx, where, {
        stage,
        play,
        hostName,
        target,
        callbackDir,
        controlPathDir: control.dir,
        python: `/usr/bin/env ${RUN_TAG_VAR}=${runTag} ${NODE_PYTHON}`,
        connectTimeoutSeconds,
      });
      const via = target.kind === 'ssh' ? `ssh ${target.username}@${target.host}:${target.port}` : 'ansible_connection=local';
      const what = play.own ? `playbook ${play.playbook}` : `role ${ctx.role.name} from ${play.rolesPath}`;
      ctx.log(`ansiblejig: ${what} on ${hostName} (${via})\n`);

      const remoteKill = target.kind === 'ssh' ? killOnNodeWhenAborted(ctx, runTag, killGraceMs) : undefined;
      const lines = new OutputLines(ctx.log);
      let result: RunResult;
      try {
        result = await runArgv(
          [program, '-i', files.inventory, '-e', `@${files.extraVars}`, files.playbook],
          {
            cwd: stage,
            fullEnv: ansibleEnv(files.cfg, out),
            signal: ctx.signal,
            onOutput: (stream, chunk) => lines.push(stream, chunk),
          },
          { killGraceMs, drainMs: 500 },
        );
      } catch (err) {
        throwIfAborted(ctx, where, STOPPED);
        const notFound = (err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT';
        throw new JigFailure(
          notFound
            ? `${where}: ${program} is not installed on the admin host (Debian: apt-get install ansible)`
            : `${where}: cannot run ${program}: ${(err as Error).message}`,
          null,
          { cause: err },
        );
      } finally {
        lines.flush();
        await remoteKill?.done();
      }
      throwIfAborted(ctx, where, STOPPED);
      if (result.code !== 0) throw await playFailure(ctx, where, result, out, lines.tail);

      let wall: JsonObject | undefined;
      try {
        wall = await readWall(path.join(out, 'wall.json'), hostName);
      } catch (err) {
        const why = (err as Error).message;
        throw new JigFailure(`${where}: cannot read the values the play recorded (set_stats): ${why}`, null, { cause: err });
      }
      if (!wall) {
        throw new JigFailure(
          `${where}: ansible-playbook succeeded but the crowbar_wall callback wrote no wall.json (is ${callbackDir} a loadable callback plugin?)`,
        );
      }
      return { wall };
    } finally {
      await closeMasters(control.dir);
      if (control.remove) await rm(control.dir, { recursive: true, force: true });
    }
  };

  return defineJig({
    name: 'ansible',
    description: "Runs the role's Ansible playbook (or its role under ansible/roles) against the node with ansible-playbook",
    stage: 'full',
    timeoutSeconds: 1800,
    rerunAfterCrash: true,
    run,
  });
}

export const ansibleJig: JigDefinition = createAnsibleJig();

// Helpers ////////////////////////////////////////////////////////////////////////////////////

interface Play {
  /** `<sourcePath>/ansible/roles` */
  rolesPath: string;
  /** the barclamp's playbook, or where the generated one goes (relative to the stage dir) */
  playbook: string;
  own: boolean;
}

/** The barclamp's `ansible/playbooks/<role>.yml`, else its role `ansible/roles/<role>/`, else a failure naming both. */
async function findPlay(ctx: JigContext, where: string): Promise<Play> {
  checkRoleName(ctx, where, 'role');
  const role = ctx.role.name;
  const source = barclampSource(ctx, where, 'ansible');
  const inputKey = Object.keys(ctx.inputs).find((k) => k.startsWith('ansible_'));
  if (inputKey) {
    throw new JigFailure(`${where}: input attribute '${inputKey}' would override Ansible's own variable of that name; rename it`);
  }
  const rolesPath = path.join(source, 'ansible', 'roles');
  const ownPlaybook = path.join(source, 'ansible', 'playbooks', `${role}.yml`);
  if (await isFile(ownPlaybook)) return { rolesPath, playbook: ownPlaybook, own: true };
  const roleDir = path.join(rolesPath, role);
  if (!(await isDir(roleDir))) {
    throw new JigFailure(`${where}: no playbook or role; expected a playbook at ${ownPlaybook} or an Ansible role at ${roleDir}`);
  }
  return { rolesPath, playbook: 'playbook.yml', own: false };
}

type NodeTarget = ({ kind: 'ssh' } & SshAccess) | { kind: 'local' };

/** How Ansible reaches the node: the admin host itself, or ssh once the hammer has checked the host key. */
async function nodeTarget(ctx: JigContext, where: string): Promise<NodeTarget> {
  const hammer = ctx.hammer;
  if (hammer.name === 'local') return { kind: 'local' };
  if (!hammer.sshAccess) {
    throw new JigFailure(
      `${where}: the ansible jig needs a node reachable by ssh (or the admin node); node ${ctx.node.name} uses hammer ${hammer.name}`,
    );
  }
  try {
    return { kind: 'ssh', ...(await hammer.sshAccess()) };
  } catch (err) {
    throwIfAborted(ctx, where, STOPPED);
    throw new JigFailure(`${where}: ansible-playbook not started: ${(err as Error).message}`, null, { cause: err });
  }
}

interface RunFilesSpec {
  stage: string;
  play: Play;
  hostName: string;
  target: NodeTarget;
  callbackDir: string;
  controlPathDir: string;
  /** interpreter command on an ssh node */
  python: string;
  connectTimeoutSeconds: number;
}

type RunFiles = Record<'cfg' | 'inventory' | 'extraVars' | 'playbook' | 'knownHosts', string>;

/** Writes ansible.cfg, the inventory, the extra vars, known_hosts and the generated playbook into the stage dir. */
async function writeRunFiles(ctx: JigContext, where: string, spec: RunFilesSpec): Promise<RunFiles> {
  const { stage, play, target } = spec;
  const files = {
    cfg: path.join(stage, 'ansible.cfg'),
    inventory: path.join(stage, 'inventory.yml'),
    extraVars: path.join(stage, 'extra-vars.yml'),
    playbook: path.resolve(stage, play.playbook),
    knownHosts: path.join(stage, 'known_hosts'),
  };
  let cfg: string;
  try {
    cfg = ansibleCfg({
      header: `generated by crowbar's ansible jig for run ${ctx.run.id} (${where})`,
      rolesPath: play.rolesPath,
      callbackDir: spec.callbackDir,
      localTmp: path.join(stage, 'tmp'),
      controlPathDir: spec.controlPathDir,
      knownHostsFile: target.kind === 'ssh' ? files.knownHosts : undefined,
      connectTimeoutSeconds: spec.connectTimeoutSeconds,
    });
  } catch (err) {
    throw new JigFailure(`${where}: ${(err as Error).message}`);
  }
  const ansibleTarget: AnsibleTarget = target.kind === 'ssh' ? { ...target, knownHostsFile: files.knownHosts } : target;
  const write = (file: string, text: string): Promise<void> => writeFile(file, text, { mode: 0o600 });
  await write(files.cfg, cfg);
  await write(files.inventory, inventoryYaml(spec.hostName, ansibleTarget, spec.python));
  await write(files.extraVars, `${unsafeYaml(ctx.inputs)}\n`);
  if (target.kind === 'ssh') await write(files.knownHosts, `${target.knownHostsLine}\n`);
  if (!play.own) await write(files.playbook, rolePlaybookYaml(ctx.role.name, spec.hostName));
  return files;
}

/**
 * The run's failure: the failed task and its error (see {@link describeFailure}). An unreachable
 * node is a transport failure (the annealer marks it not alive); a refused host key or login is
 * not: the node answered.
 */
async function playFailure(ctx: JigContext, where: string, result: RunResult, out: string, tail: string[]): Promise<JigFailure> {
  const failures = await readFailures(path.join(out, 'failures.jsonl'));
  const status = result.code === null ? `killed by ${result.signal ?? 'a signal'}` : `exit status ${result.code}`;
  const unreachable = result.code === 4 ? unreachableFailure(failures) : undefined;
  const refused = /Host key verification failed|Permission denied|REMOTE HOST IDENTIFICATION/i;
  const transport =
    unreachable && !refused.test(JSON.stringify(unreachable.result))
      ? new TransportError(`ansible could not reach node ${ctx.node.name}: ${String(unreachable.result['msg'] ?? '').trim()}`)
      : undefined;
  return new JigFailure(`${where}: ansible-playbook failed (${status}): ${describeFailure(failures, tail)}`, result.code, {
    cause: transport,
  });
}

/**
 * ansible-playbook's environment: ours without any `ANSIBLE_*` (the operator's own Ansible
 * settings must not leak in), plus the run's config and the callback's output dir; Python
 * unbuffered (output streams as it happens) and writing no bytecode beside our plugin.
 */
function ansibleEnv(cfg: string, out: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ANSIBLE_')) env[k] = v;
  return { ...env, ANSIBLE_CONFIG: cfg, CROWBAR_ANSIBLE_OUT: out, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
}

/**
 * A directory for ssh's ControlMaster sockets: `<stage>/cp` when that path is short and plain
 * (ssh expands `%` in it and a socket path holds ~100 bytes), else a fresh one under /tmp.
 */
async function controlDir(stage: string): Promise<{ dir: string; remove: boolean }> {
  const inStage = path.join(stage, 'cp');
  if (inStage.length <= CONTROL_DIR_MAX && /^[A-Za-z0-9._/-]+$/.test(inStage)) {
    await mkdir(inStage, { mode: 0o700 });
    return { dir: inStage, remove: false };
  }
  return { dir: await mkdtemp('/tmp/crowbar-cp-'), remove: true };
}

/**
 * Closes the ssh master connections Ansible left (ControlPersist masters leave our process
 * group, so a group kill misses them): `ssh -O exit` on each socket, bounded.
 */
async function closeMasters(dir: string): Promise<void> {
  const sockets = existsSync(dir) ? await readdir(dir) : [];
  await Promise.all(
    sockets.map((name) =>
      runArgv(['ssh', '-F', '/dev/null', '-o', `ControlPath=${path.join(dir, name)}`, '-O', 'exit', 'crowbar-node'], {
        fullEnv: process.env,
        signal: AbortSignal.timeout(3000),
      }).catch(() => undefined),
    ),
  );
}

/**
 * On abort, signals the run's processes on the node (every module Ansible started carries
 * `CROWBAR_RUN=<runTag>`; ssh does not stop them when its connection goes): SIGTERM at once,
 * SIGKILL after `graceMs`, through the node's own hammer. `done()` waits for both (bounded) and
 * stops listening.
 */
function killOnNodeWhenAborted(ctx: JigContext, runTag: string, graceMs: number): { done(): Promise<void> } {
  const sent: Array<Promise<unknown>> = [];
  const kill = (sig: 'TERM' | 'KILL'): Promise<unknown> =>
    ctx.hammer.run(killRunArgv(runTag, sig), { signal: AbortSignal.timeout(3000) }).catch((err: Error) => {
      ctx.log(`ansiblejig: could not signal the run's processes on the node: ${err.message}\n`);
    });
  const onAbort = (): void => {
    sent.push(kill('TERM'));
    sent.push(new Promise((r) => setTimeout(r, graceMs)).then(() => kill('KILL')));
  };
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener('abort', onAbort, { once: true });
  return {
    async done() {
      ctx.signal.removeEventListener('abort', onAbort);
      await Promise.all(sent);
    },
  };
}

/** Splits the play's output into lines for the run log, keeping the last ones for failure messages. */
class OutputLines {
  readonly tail: string[] = [];
  readonly #log: (text: string) => void;
  readonly #partial = { stdout: '', stderr: '' };

  constructor(log: (text: string) => void) {
    this.#log = log;
  }

  push(stream: 'stdout' | 'stderr', chunk: string): void {
    const text = this.#partial[stream] + chunk;
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      this.#partial[stream] = text;
      return;
    }
    this.#partial[stream] = text.slice(cut + 1);
    for (const line of text.slice(0, cut).split('\n')) this.#line(line);
  }

  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#partial[stream]) this.#line(this.#partial[stream]);
      this.#partial[stream] = '';
    }
  }

  #line(line: string): void {
    this.#log(`${line}\n`);
    this.tail.push(line);
    if (this.tail.length > OUTPUT_TAIL_LINES) this.tail.shift();
  }
}

