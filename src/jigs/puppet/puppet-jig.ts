/**
 * The `puppet-sa` jig (spec §7.7): masterless `puppet apply` of a role's manifest on the node
 * through its hammer, attributes as Hiera data and external facts (never on a command line),
 * every puppet directory private to the run, the wall read back from a declared JSON file.
 * Owns the remote temp dir's life (always removed) and the failure messages. Contract below.
 */
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isObject } from '../../domain/json.js';
import type { JsonObject } from '../../domain/json.js';
import type { RunResult } from '../../hammers/types.js';
import { barclampSource, checkRoleName, isDir, isFile, makeRemoteTemp, removeRemoteTemp, runWhere, throwIfAborted } from '../remote.js';
import { JigFailure, defineJig } from '../types.js';
import type { JigContext, JigDefinition, JigResult } from '../types.js';
import { HIERA_YAML, puppetInputs } from './inputs.js';

/*
 * Contract for barclamp authors.
 *
 * Barclamp layout:
 * - `<barclamp>/puppet/roles/<role>/init.pp` — the entry manifest (`site.pp` is accepted instead;
 *   having both is an error). Other files of the role dir are copied along (see
 *   `crowbar_role_dir`), but only the entry manifest is applied.
 * - `<barclamp>/puppet/modules/` — optional; modules for `include`/`class` (unmodified upstream
 *   modules work), the run's whole `--modulepath`.
 *
 * What the manifest sees, for every top-level key `k` of the staged inputs:
 * - Hiera: `lookup('k')` (and `lookup('k.sub.0')` to dig; automatic class parameters such as
 *   `ntp::servers` work for keys so named). Values arrive verbatim: Hiera's `%{…}` interpolation
 *   is escaped.
 * - Facts: `$facts['k']` (and `$::k`) as external facts, via `--pluginfactdest`. Facter
 *   lower-cases fact names, and a key that would replace a facter core fact (`os`, `networking`,
 *   `hostname`, … see CORE_FACT_NAMES) is given through Hiera only (a line in the run log says so).
 * - `crowbar_wall_file` (Hiera and fact): a path in the run's temp dir. If the manifest writes a
 *   JSON object there (e.g. `file { lookup('crowbar_wall_file'): content => to_json($h) }` with
 *   stdlib, or `inline_template('<%= require "json"; JSON.generate(@h) %>')`), it becomes the
 *   node-role's wall; no file → an empty wall; anything but a JSON object → the run fails.
 * - `crowbar_role_dir` (Hiera and fact): the run's copy of the role dir, e.g. for
 *   `file("${crowbar_role_dir}/motd.txt")`.
 *
 * Exit statuses under `--detailed-exitcodes`: 0 (no changes) and 2 (changes) succeed; 1 (e.g. a
 * compile error), 4 and 6 (resources failed) fail with puppet's `Error:` lines, file paths shown
 * as the barclamp's own files.
 */

export interface PuppetJigOptions {
  /**
   * argv prefix that runs puppet with the arguments that follow. The default finds `puppet` on
   * the node's PATH plus `/opt/puppetlabs/bin` (where Puppet's own packages put it, which a
   * non-login ssh session does not have on its PATH).
   */
  puppetCommand?: string[];
  /**
   * Limit for removing the remote temp dir after the run (which may have been aborted).
   * @defaultValue 60000
   */
  cleanupTimeoutMs?: number;
}

/** The default {@link PuppetJigOptions.puppetCommand}: a constant script; arguments go in "$@". */
export const DEFAULT_PUPPET_COMMAND: readonly string[] = [
  'sh',
  '-c',
  'PATH="$PATH:/opt/puppetlabs/bin"; exec puppet "$@"',
  'puppet',
];

/** Entry manifests of a role dir, in order of preference; exactly one must exist. */
export const ENTRY_MANIFESTS: readonly string[] = ['init.pp', 'site.pp'];

const STOPPED = 'puppet was stopped';
const LOG = 'puppetjig';
const ERROR_LINES = 12;
const STDERR_TAIL_LINES = 20;
const MAX_WALL_BYTES = 16 * 1024 * 1024;
/** puppet's per-run directories under `<tmp>/puppet/` */
const PUPPET_DIRS: ReadonlyArray<readonly [setting: string, dir: string]> = [
  ['confdir', 'etc'],
  ['codedir', 'code'],
  ['vardir', 'var'], // statedir, clientbucket, reports, locks live under it
  ['logdir', 'log'],
  ['rundir', 'run'],
  ['publicdir', 'public'], // last_run_summary.yaml
  ['ssldir', 'ssl'], // Debian's puppet pins it to /var/lib/puppet/ssl
];

/** Builds the puppet-sa jig; `puppetJig` is the default instance. */
export function createPuppetJig(options: PuppetJigOptions = {}): JigDefinition {
  const puppetCommand = options.puppetCommand ?? DEFAULT_PUPPET_COMMAND;
  const cleanupTimeoutMs = options.cleanupTimeoutMs ?? 60_000;

  const run = async (ctx: JigContext): Promise<JigResult> => {
    const role = ctx.role.name;
    const where = runWhere(ctx);
    checkRoleName(ctx, where, 'manifests');
    const source = barclampSource(ctx, where, 'puppet-sa');
    const roleDir = path.join(source, 'puppet', 'roles', role);
    if (!(await isDir(roleDir))) {
      throw new JigFailure(`${where}: no manifests; expected a directory holding init.pp (or site.pp) at ${roleDir}`);
    }
    const entry = await entryManifest(roleDir, where);
    const modulesDir = path.join(source, 'puppet', 'modules');
    const hasModules = await isDir(modulesDir);
    if (!hasModules && (await exists(modulesDir))) {
      throw new JigFailure(`${where}: ${modulesDir} is not a directory (it should hold puppet modules)`);
    }
    throwIfAborted(ctx, where, STOPPED);

    const stage = path.join(ctx.workDir, 'puppet-jig');
    await mkdir(stage, { recursive: true, mode: 0o700 });
    const tmp = await makeRemoteTemp(ctx, where, { prefix: 'puppetjig', stopped: STOPPED });
    try {
      const remote = {
        roleDir: `${tmp}/roles/${role}`,
        modules: `${tmp}/modules`,
        input: `${tmp}/input`,
        wallFile: `${tmp}/wall.json`,
      };
      const { hieraData, facts, notes } = puppetInputs(ctx.inputs, { wallFile: remote.wallFile, roleDir: remote.roleDir });
      for (const note of notes) ctx.log(`${LOG}: ${note}\n`);
      await writeStage(stage, hieraData, facts);

      await ctx.hammer.copyTo(path.join(stage, 'input'), remote.input);
      await ctx.hammer.copyTo(path.join(stage, 'roles'), `${tmp}/roles`);
      await ctx.hammer.copyTo(roleDir, remote.roleDir);
      await ctx.hammer.copyTo(hasModules ? modulesDir : path.join(stage, 'modules'), remote.modules);
      throwIfAborted(ctx, where, STOPPED);

      const args = ['apply', '--detailed-exitcodes', '--color=false'];
      for (const [setting, dir] of PUPPET_DIRS) args.push(`--${setting}`, `${tmp}/puppet/${dir}`);
      args.push(
        '--hiera_config', `${remote.input}/hiera.yaml`,
        '--pluginfactdest', `${remote.input}/facts.d`,
        '--modulepath', remote.modules,
        `${remote.roleDir}/${entry}`,
      );
      const result = await ctx.hammer.run([...puppetCommand, ...args], {
        signal: ctx.signal,
        onOutput: (_stream, chunk) => ctx.log(chunk),
      });
      throwIfAborted(ctx, where, STOPPED);
      if (result.code !== 0 && result.code !== 2) {
        const local = (text: string): string =>
          text.split(remote.roleDir).join(roleDir).split(remote.modules).join(modulesDir);
        throw applyFailure(result, where, local);
      }
      ctx.log(`${LOG}: puppet apply succeeded: ${result.code === 2 ? 'changes applied' : 'no changes'} (exit status ${result.code})\n`);

      const wall = await readWall(ctx, remote.wallFile, path.join(stage, 'wall.json'), where);
      return { wall };
    } finally {
      await removeRemoteTemp(ctx, tmp, cleanupTimeoutMs, LOG);
      await rm(stage, { recursive: true, force: true });
    }
  };

  return defineJig({
    name: 'puppet-sa',
    description: "Runs `puppet apply` of the role's puppet/roles/<role>/init.pp on the node, attributes as Hiera data and facts",
    stage: 'full',
    timeoutSeconds: 1800,
    rerunAfterCrash: true,
    run,
  });
}

export const puppetJig: JigDefinition = createPuppetJig();

// Helpers ////////////////////////////////////////////////////////////////////////////////////

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

async function entryManifest(roleDir: string, where: string): Promise<string> {
  const found: string[] = [];
  for (const name of ENTRY_MANIFESTS) {
    if (await isFile(path.join(roleDir, name))) found.push(name);
  }
  if (found.length === 0) {
    throw new JigFailure(`${where}: no entry manifest; expected ${path.join(roleDir, 'init.pp')} (or site.pp)`);
  }
  if (found.length > 1) {
    throw new JigFailure(`${where}: ${roleDir} has both ${found.join(' and ')}; keep one as the entry manifest`);
  }
  return found[0]!;
}

/**
 * The local copy of what goes to `<tmp>/`: `input/{hiera.yaml, data/crowbar.json,
 * facts.d/crowbar.json}`, and empty `roles/` and `modules/` (so the role dir has a parent and
 * `--modulepath` exists when the barclamp has no modules).
 */
async function writeStage(stage: string, hieraData: JsonObject, facts: JsonObject): Promise<void> {
  const input = path.join(stage, 'input');
  for (const dir of ['data', 'facts.d']) await mkdir(path.join(input, dir), { recursive: true, mode: 0o700 });
  await mkdir(path.join(stage, 'roles'), { recursive: true, mode: 0o700 });
  await mkdir(path.join(stage, 'modules'), { recursive: true, mode: 0o700 });
  await writeFile(path.join(input, 'hiera.yaml'), HIERA_YAML, { mode: 0o600 });
  await writeFile(path.join(input, 'data', 'crowbar.json'), JSON.stringify(hieraData), { mode: 0o600 });
  await writeFile(path.join(input, 'facts.d', 'crowbar.json'), JSON.stringify(facts), { mode: 0o600 });
}

/** The wall the manifest declared at `wallFile`, {} when it wrote none. */
async function readWall(ctx: JigContext, wallFile: string, localFile: string, where: string): Promise<JsonObject> {
  const probe = await ctx.hammer.run(['test', '-e', wallFile], { signal: ctx.signal });
  throwIfAborted(ctx, where, STOPPED);
  if (probe.code !== 0) return {};
  await ctx.hammer.copyFrom(wallFile, localFile);
  const st = await lstat(localFile);
  const bad = (why: string): JigFailure =>
    new JigFailure(`${where}: the wall file crowbar_wall_file (${wallFile}) ${why}`);
  if (!st.isFile()) throw bad('is not a regular file');
  if (st.size > MAX_WALL_BYTES) throw bad(`is ${st.size} bytes; the limit is ${MAX_WALL_BYTES}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(localFile, 'utf8'));
  } catch (err) {
    throw bad(`is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) {
    const kind = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : `a ${typeof parsed}`;
    throw bad(`must hold a JSON object, not ${kind}`);
  }
  return parsed;
}

/**
 * The failure of a puppet apply that did not succeed: what went wrong by exit status, then
 * puppet's `Error:` lines (facter's own complaints only when there is nothing else), or else
 * the tail of its stderr; `local` maps the node's file paths to the barclamp's.
 */
function applyFailure(result: RunResult, where: string, local: (text: string) => string): JigFailure {
  const { code } = result;
  const status = code === null ? `killed by ${result.signal ?? 'a signal'}` : `exit status ${code}`;
  const what =
    code === null
      ? 'puppet apply was killed'
      : code === 4
        ? 'puppet apply failed: resources failed'
        : code === 6
          ? 'puppet apply failed: resources failed (others were changed)'
          : code === 127
            ? 'puppet could not be started (is it installed on the node?)'
            : 'puppet apply failed';
  const lines = `${result.stderr}\n${result.stdout}`.split('\n').map((l) => l.trimEnd());
  const errors = lines.filter((l) => l.startsWith('Error: '));
  const own = errors.filter((l) => !l.startsWith('Error: Facter:'));
  const picked = dedupe(own.length > 0 ? own : errors).slice(-ERROR_LINES);
  let detail = '';
  if (picked.length > 0) detail = `:\n${picked.join('\n')}`;
  else {
    const tail = result.stderr.split('\n').filter((l) => l.trim().length > 0).slice(-STDERR_TAIL_LINES);
    if (tail.length > 0) detail = `; last lines of stderr:\n${tail.join('\n')}`;
  }
  return new JigFailure(`${where}: ${what} (${status})${local(detail)}`, code);
}

function dedupe(lines: string[]): string[] {
  return lines.filter((l, i) => lines.indexOf(l) === i);
}
