/**
 * What every file-based jig (script, ansible, puppet-sa) does around its work on a node: find the
 * role's files in its barclamp and check the role name can name a directory; then, through the
 * node's hammer only, make the run's remote temp dir
 * (and accept only what `mktemp` makes) or name one to create exclusively, always remove it
 * afterwards in bounded time, and turn an abort into a clear failure.
 */
import { randomInt } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { JigFailure } from './types.js';
import type { JigContext } from './types.js';
import type { RunResult } from '../hammers/types.js';

/** A role name that can safely name a directory (`script/roles/<role>`, `puppet/roles/<role>`). */
export const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `role <role> on node <node>`: how failure messages name the run. */
export function runWhere(ctx: JigContext): string {
  return `role ${ctx.role.name} on node ${ctx.node.name}`;
}

/** Throws a JigFailure unless the role's name passes {@link ROLE_NAME}; `what` names the directory (`scripts`). */
export function checkRoleName(ctx: JigContext, where: string, what: string): void {
  if (!ROLE_NAME.test(ctx.role.name)) {
    throw new JigFailure(`${where}: the role name cannot name a ${what} directory`);
  }
}

/** The directory holding the role's barclamp files (`script/`, `ansible/`, `puppet/`); `jig` names the jig in the failure. */
export function barclampSource(ctx: JigContext, where: string, jig: string): string {
  if (!ctx.sourcePath) {
    throw new JigFailure(`${where}: the ${jig} jig needs the barclamp's files, but barclamp ${ctx.role.barclamp} has no source path`);
  }
  return ctx.sourcePath;
}

/** True when `p` is a directory on this (the admin) host. */
export function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

/** True when `p` is a regular file on this (the admin) host. */
export function isFile(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isFile(), () => false);
}

/**
 * Throws a JigFailure saying why the run was aborted (the signal's reason), when it was;
 * `stopped` ends the message (`the scripts were stopped`).
 */
export function throwIfAborted(ctx: JigContext, where: string, stopped = 'the scripts were stopped'): void {
  if (!ctx.signal.aborted) return;
  const reason: unknown = ctx.signal.reason;
  const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
  throw new JigFailure(`${where}: run aborted (${why}); ${stopped}`, null, { cause: reason });
}

export interface RemoteTempOptions {
  /** a plain lower-case word: the dir is `/tmp/<prefix>-XXXXXX`. @defaultValue 'scriptjig' */
  prefix?: string;
  /** ends the message when the run is aborted meanwhile (see {@link throwIfAborted}) */
  stopped?: string;
}

/**
 * `mktemp -d /tmp/<prefix>-XXXXXX` on the node; returns the path, accepting only what mktemp
 * makes (it goes on argv and into `rm -rf`).
 */
export async function makeRemoteTemp(ctx: JigContext, where: string, options: RemoteTempOptions = {}): Promise<string> {
  const { prefix = 'scriptjig', stopped } = options;
  if (!/^[a-z][a-z0-9]*$/.test(prefix)) throw new Error(`makeRemoteTemp: bad prefix '${prefix}'`);
  let result: RunResult;
  try {
    result = await ctx.hammer.run(['mktemp', '-d', `/tmp/${prefix}-XXXXXX`], { signal: ctx.signal });
  } catch (err) {
    throwIfAborted(ctx, where, stopped);
    throw new JigFailure(`${where}: cannot create a temp dir on the node: ${(err as Error).message}`, null, {
      cause: err,
    });
  }
  throwIfAborted(ctx, where, stopped);
  const tmp = result.stdout.trim();
  if (result.code !== 0 || !new RegExp(`^/[^\\n]*/${prefix}-[A-Za-z0-9]{6,}$`).test(tmp)) {
    throw new JigFailure(
      `${where}: mktemp on the node failed (exit status ${result.code}): ${result.stderr.trim() || tmp || 'no output'}`,
      result.code,
    );
  }
  return tmp;
}

const TEMP_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A fresh, unguessable `/tmp/<prefix>-XXXXXXXXXXXX` (12 random letters and digits, ~71 bits), for
 * a jig that creates its temp dir itself on the node, in the same command that uses it: with
 * `mkdir -m 0700`, which fails if the path exists (so it is never someone else's directory).
 */
export function newRemoteTempPath(prefix: string): string {
  if (!/^[a-z][a-z0-9]*$/.test(prefix)) throw new Error(`newRemoteTempPath: bad prefix '${prefix}'`);
  let name = '';
  for (let i = 0; i < 12; i++) name += TEMP_CHARS[randomInt(TEMP_CHARS.length)];
  return `/tmp/${prefix}-${name}`;
}

/**
 * `rm -rf` of the run's temp dir, bounded by `timeoutMs` and independent of the run's signal
 * (the run may have been aborted). Never throws: a failure is a line in the run log.
 */
export async function removeRemoteTemp(ctx: JigContext, tmp: string, timeoutMs: number, logPrefix = 'scriptjig'): Promise<void> {
  try {
    const res = await ctx.hammer.run(['rm', '-rf', '--', tmp], { signal: AbortSignal.timeout(timeoutMs) });
    if (res.code !== 0) ctx.log(`${logPrefix}: could not remove ${tmp} on the node: ${res.stderr.trim()}\n`);
  } catch (err) {
    ctx.log(`${logPrefix}: could not remove ${tmp} on the node: ${(err as Error).message}\n`);
  }
}
