/**
 * The `script` jig (spec §7.3): runs a role's `script/roles/<role>/*.sh` on the node through its
 * hammer, with our `runner.sh` supplying the OpenCrowbar helpers, and takes the values the
 * scripts wrote as the wall — all in one command (`launch.sh`: files in as a tar on stdin, values
 * out on stdout). Inputs travel only as attrs.json/attrs.map, never on a command line.
 * Owns the remote temp dir's life (always removed) and the failure messages.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { resolveAssetPath } from '../assets.js';
import { ROLE_NAME, barclampSource, isDir, newRemoteTempPath, removeRemoteTemp, throwIfAborted } from '../remote.js';
import { tarArchive, treeEntries } from '../tar.js';
import type { TarEntry } from '../tar.js';
import { JigFailure, defineJig } from '../types.js';
import type { JigContext, JigDefinition, JigResult } from '../types.js';
import type { RunResult } from '../../hammers/types.js';
import { attrsMap } from './attrs-map.js';
import { LaunchLogFilter, launchMark, newNonce, parseLaunchOutput } from './launch.js';
import { wallFromFiles } from './wall.js';

export interface ScriptJigOptions {
  /** the runner script copied to nodes; default: {@link resolveRunnerPath} */
  runnerPath?: string;
  /** the launcher script run on nodes; default: {@link resolveLauncherPath} */
  launcherPath?: string;
  /**
   * Limit for removing the remote temp dir after a run that did not remove it itself (aborted,
   * killed, connection lost).
   * @defaultValue 60000
   */
  cleanupTimeoutMs?: number;
  /** the run's remote temp dir; default: a fresh `/tmp/scriptjig-<random>` (for tests) */
  remoteTempPath?: () => string;
}

const RUNNER_FROM_ROOT = path.join('src', 'jigs', 'script', 'runner.sh');
const LAUNCHER_FROM_ROOT = path.join('src', 'jigs', 'script', 'launch.sh');
const FAILED_MARKER = /^scriptjig: FAILED (.+) \(exit status (\d+)\)$/;
const STDERR_TAIL_LINES = 20;
/** what a remote temp dir of ours looks like (it goes on argv and into `rm -rf`) */
const REMOTE_TEMP = /^\/[^\n]*\/scriptjig-[A-Za-z0-9]{6,}$/;

/**
 * Where `runner.sh` is: beside this module when running from `src/` (tsx, vitest), else under
 * the source tree (see {@link resolveAssetPath}).
 */
export function resolveRunnerPath(moduleUrl: string = import.meta.url): string {
  return resolveAssetPath(moduleUrl, RUNNER_FROM_ROOT);
}

/** Where `launch.sh` is (as {@link resolveRunnerPath}). */
export function resolveLauncherPath(moduleUrl: string = import.meta.url): string {
  return resolveAssetPath(moduleUrl, LAUNCHER_FROM_ROOT);
}

/** Builds the script jig; `scriptJig` is the default instance. */
export function createScriptJig(options: ScriptJigOptions = {}): JigDefinition {
  let runnerPath = options.runnerPath;
  const { launcherPath } = options;
  let launcher: Promise<string> | undefined;
  const cleanupTimeoutMs = options.cleanupTimeoutMs ?? 60_000;
  const remoteTempPath = options.remoteTempPath ?? (() => newRemoteTempPath('scriptjig'));

  const run = async (ctx: JigContext): Promise<JigResult> => {
    const role = ctx.role.name;
    const where = `role ${role} on node ${ctx.node.name}`;
    if (!ROLE_NAME.test(role)) {
      throw new JigFailure(`${where}: the role name cannot name a scripts directory`);
    }
    const roleDir = path.join(barclampSource(ctx, where, 'script'), 'script', 'roles', role);
    if (!(await isDir(roleDir))) {
      throw new JigFailure(`${where}: no scripts; expected a directory of *.sh scripts at ${roleDir}`);
    }
    runnerPath ??= resolveRunnerPath();
    launcher ??= readFile(launcherPath ?? resolveLauncherPath(), 'utf8').catch((err: unknown) => {
      launcher = undefined;
      throw err;
    });
    throwIfAborted(ctx, where);

    // everything the node needs, in one tar: the runner, the inputs and the role's scripts
    const runner = await stat(runnerPath);
    const entries: TarEntry[] = [
      { name: 'runner', mode: runner.mode & 0o7777, data: await readFile(runnerPath) },
      { name: 'attrs.json', mode: 0o600, data: Buffer.from(JSON.stringify(ctx.inputs)) },
    ];
    const map = attrsMap(ctx.inputs);
    if (map) entries.push({ name: 'attrs.map', mode: 0o600, data: map });
    entries.push(...(await treeEntries(roleDir, role)));
    // made here so the runner need not start mkdir
    entries.push({ name: 'attrs', mode: 0o755 }, { name: 'logs', mode: 0o755 });
    const bundle = tarArchive(entries);
    const script = await launcher;
    throwIfAborted(ctx, where);

    const tmp = remoteTempPath();
    if (!REMOTE_TEMP.test(tmp)) throw new Error(`script jig: bad remote temp dir '${tmp}'`);
    const nonce = newNonce();
    const mark = launchMark(nonce);
    const stdoutLog = new LaunchLogFilter(mark, ctx.log);
    let removed = false;
    try {
      let result: RunResult;
      try {
        result = await ctx.hammer.run(['bash', '-c', script, 'scriptjig', tmp, role, nonce], {
          stdin: bundle,
          signal: ctx.signal,
          onOutput: (stream, chunk) => (stream === 'stdout' ? stdoutLog.push(chunk) : ctx.log(chunk)),
        });
      } finally {
        stdoutLog.end();
      }
      const out = parseLaunchOutput(result.stdout, mark);
      removed = out.removed;
      throwIfAborted(ctx, where);
      if (result.code !== 0) throw runFailure(result, where);
      if (!out.complete) {
        throw new JigFailure(`${where}: the values the scripts wrote did not arrive complete from the node`);
      }
      const { wall, warnings } = wallFromFiles(out.files, out.warnings);
      for (const w of warnings) ctx.log(`scriptjig: ${w}\n`);
      return { wall };
    } catch (err) {
      throwIfAborted(ctx, where);
      throw err;
    } finally {
      // the launcher removes the dir itself unless it was killed or the connection was lost
      if (!removed) await removeRemoteTemp(ctx, tmp, cleanupTimeoutMs);
    }
  };

  return defineJig({
    name: 'script',
    description: 'Runs the role\'s script/roles/<role>/*.sh on the node with the OpenCrowbar runner helpers',
    stage: 'full',
    timeoutSeconds: 1800,
    rerunAfterCrash: true,
    run,
  });
}

export const scriptJig: JigDefinition = createScriptJig();

// Helpers ////////////////////////////////////////////////////////////////////////////////////

function runFailure(result: RunResult, where: string): JigFailure {
  const lines = result.stderr.split('\n').filter((l) => l.trim().length > 0);
  let script: string | undefined;
  const tail: string[] = [];
  for (const line of lines) {
    const m = FAILED_MARKER.exec(line);
    if (m) script = m[1];
    else tail.push(line);
  }
  const status = result.code === null ? `killed by ${result.signal ?? 'a signal'}` : `exit status ${result.code}`;
  const what = script ? `script ${script} failed` : 'the script runner failed';
  const last = tail.slice(-STDERR_TAIL_LINES).join('\n');
  return new JigFailure(`${where}: ${what} (${status})${last ? `; last lines of stderr:\n${last}` : ''}`, result.code);
}
