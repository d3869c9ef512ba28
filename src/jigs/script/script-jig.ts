/**
 * The `script` jig (spec §7.3): runs a role's `script/roles/<role>/*.sh` on the node through its
 * hammer, with our `runner.sh` supplying the OpenCrowbar helpers, and reads the values the
 * scripts wrote back as the wall. Inputs travel only as attrs.json, never on a command line.
 * Owns the remote temp dir's life (always removed) and the failure messages.
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveAssetPath } from '../assets.js';
import { ROLE_NAME, makeRemoteTemp, removeRemoteTemp, throwIfAborted } from '../remote.js';
import { JigFailure, defineJig } from '../types.js';
import type { JigContext, JigDefinition, JigResult } from '../types.js';
import type { RunResult } from '../../hammers/types.js';
import { readWallTree } from './wall.js';

export interface ScriptJigOptions {
  /** the runner script copied to nodes; default: {@link resolveRunnerPath} */
  runnerPath?: string;
  /**
   * Limit for removing the remote temp dir after the run (which may have been aborted).
   * @defaultValue 60000
   */
  cleanupTimeoutMs?: number;
}

const RUNNER_FROM_ROOT = path.join('src', 'jigs', 'script', 'runner.sh');
const FAILED_MARKER = /^scriptjig: FAILED (.+) \(exit status (\d+)\)$/;
const STDERR_TAIL_LINES = 20;

/**
 * Where `runner.sh` is: beside this module when running from `src/` (tsx, vitest), else under
 * the source tree (see {@link resolveAssetPath}).
 */
export function resolveRunnerPath(moduleUrl: string = import.meta.url): string {
  return resolveAssetPath(moduleUrl, RUNNER_FROM_ROOT);
}

/** Builds the script jig; `scriptJig` is the default instance. */
export function createScriptJig(options: ScriptJigOptions = {}): JigDefinition {
  let runnerPath = options.runnerPath;
  const cleanupTimeoutMs = options.cleanupTimeoutMs ?? 60_000;

  const run = async (ctx: JigContext): Promise<JigResult> => {
    const role = ctx.role.name;
    const where = `role ${role} on node ${ctx.node.name}`;
    if (!ROLE_NAME.test(role)) {
      throw new JigFailure(`${where}: the role name cannot name a scripts directory`);
    }
    if (!ctx.sourcePath) {
      throw new JigFailure(
        `${where}: the script jig needs the barclamp's files, but barclamp ${ctx.role.barclamp} has no source path`,
      );
    }
    const roleDir = path.join(ctx.sourcePath, 'script', 'roles', role);
    const isDir = await stat(roleDir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) {
      throw new JigFailure(`${where}: no scripts; expected a directory of *.sh scripts at ${roleDir}`);
    }
    runnerPath ??= resolveRunnerPath();
    throwIfAborted(ctx, where);

    const stage = path.join(ctx.workDir, 'script-jig');
    await mkdir(stage, { recursive: true });
    const attrsFile = path.join(stage, 'attrs.json');
    await writeFile(attrsFile, JSON.stringify(ctx.inputs), { mode: 0o600 });

    const tmp = await makeRemoteTemp(ctx, where);
    try {
      await ctx.hammer.copyTo(attrsFile, `${tmp}/attrs.json`);
      await ctx.hammer.copyTo(roleDir, `${tmp}/${role}`);
      await ctx.hammer.copyTo(runnerPath, `${tmp}/runner`);
      throwIfAborted(ctx, where);

      const result = await ctx.hammer.run(['bash', `${tmp}/runner`, tmp, role], {
        signal: ctx.signal,
        onOutput: (_stream, chunk) => ctx.log(chunk),
      });
      throwIfAborted(ctx, where);
      if (result.code !== 0) throw runFailure(result, where);

      const returned = path.join(stage, 'attrs-returned');
      await ctx.hammer.copyFrom(`${tmp}/attrs`, returned);
      const { wall, warnings } = await readWallTree(returned);
      for (const w of warnings) ctx.log(`scriptjig: ${w}\n`);
      return { wall };
    } finally {
      await removeRemoteTemp(ctx, tmp, cleanupTimeoutMs);
      await rm(stage, { recursive: true, force: true });
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
