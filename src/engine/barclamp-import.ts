/**
 * Barclamp import (spec §6): reads the OpenCrowbar barclamp YAML format, refuses a bad file
 * whole with file, line and reason, then find-or-updates the barclamp, its hammers, jigs,
 * roles and attribs, and reconciles the role graph (requires, attaches, wants-attribs, jig
 * implementors) with late binding, cycle refusal and cohorts.
 *
 * `wants-attribs` entries are an attrib name, or `{name, at}` (place the value at path `at`
 * instead of the attrib's map), or — an addition to the original format —
 * `{name, at, collect: true}`: receive the attrib from every member of the owning role the
 * node-role depends on (typically a `cluster` role bound on several nodes) as a JSON list:
 *
 *     wants-attribs:
 *       - { name: threetier-app-backend, at: threetier/lb/backends, collect: true }
 *
 * The list holds each member's own value (its wall, sysdata, data, deployment-role data or the
 * role template — not the attrib default), ordered by node name then node-role id; members
 * without a value (or with null) are left out, so it may be `[]`. A member bound later joins
 * the list (the consumer re-runs when the member's first run writes its value), a deleted
 * member leaves it (the consumer re-runs at once), and a run of any member that changes the
 * value in its wall re-runs the consumer. `collect` must be a boolean and needs an attrib owned
 * by another role. Without it (or with `false`) the original one-parent behaviour is kept.
 */
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PostgresAdapter } from 'kysely';
import { LineCounter, parseDocument } from 'yaml';
import type { Barclamp, RoleFlag } from '../domain/entities.js';
import { NAME_RE, RESERVED_BARCLAMP_NAMES, ROLE_FLAGS } from '../domain/entities.js';
import type { Json, JsonObject } from '../domain/json.js';
import { clone, isObject } from '../domain/json.js';
import { CrowbarError } from '../domain/errors.js';
import type { DB, Tx } from '../store/db.js';
import { chunks, fromJson, now, sql } from '../store/db.js';
import { getBarclamp, upsertBarclamp } from '../store/barclamps.js';
import { upsertAvailableHammer } from '../store/hammers.js';
import { upsertJig } from '../store/jigs.js';
import { upsertAttrib } from '../store/attribs.js';
import { listRoleRequires, resolveRequires, setRoleWants, upsertRole, type WantDecl } from '../store/roles.js';
import { relinkWant } from './binding.js';

/**
 * `production`: every jig but `test` is active after import; `development`: only `noop`,
 * `test` and `role-provided` (spec §1.2). Import always sets the flag per mode, also for a jig
 * that already exists (a jig activated at runtime, e.g. chef, is reset by a re-import — as in
 * the original).
 */
export type ImportMode = 'production' | 'development';

export interface ImportOptions {
  /** directory holding the barclamp's script/, ansible/, puppet/ trees; overrides `barclamp.source_path` */
  sourcePath?: string | null;
  /** name used in error messages (a path); defaults to the parsed file's name or `<barclamp>` */
  file?: string;
  mode: ImportMode;
}

/** A barclamp document parsed from YAML text, able to say on which line a node sits. */
export interface ParsedBarclamp {
  file: string;
  value: JsonObject;
  /** 1-based line of the node at `path` (or of its nearest existing ancestor); null if unknown */
  lineOf(path: ReadonlyArray<string | number>): number | null;
}

export interface ImportResult {
  barclamp: Barclamp;
  jigs: string[];
  hammers: string[];
  roles: string[];
  attribs: string[];
}

const DEV_JIGS = new Set(['noop', 'test', 'role-provided']);
/** PostgreSQL advisory lock key serializing imports across processes ("CRBI") */
const IMPORT_LOCK_KEY = 0x43524249;

/** The directory of the built-in barclamps (core `crowbar.yml` plus `barclamps/*.yml`). */
export function builtinBarclampDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../barclamps/crowbar');
}

/** Parses YAML text; a syntax error is refused with file, line and reason (BARCLAMP_INVALID). */
export function parseBarclampYaml(text: string, file: string): ParsedBarclamp {
  const lineCounter = new LineCounter();
  // duplicate keys are accepted (last wins) like the original's YAML loader did
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line ?? null;
    const reason = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw invalid(file, line, `malformed YAML: ${reason}`);
  }
  const value = doc.toJS({ maxAliasCount: 1000 }) as unknown;
  const lineOf = (path: ReadonlyArray<string | number>): number | null => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return lineCounter.linePos(range[0]).line;
    }
    return null;
  };
  if (!isObject(value as Json)) throw invalid(file, lineOf([]) ?? 1, 'a barclamp file must be a YAML mapping');
  return { file, value: value as JsonObject, lineOf };
}

/** Parses and imports one YAML text in its own transaction. */
export async function importBarclampYaml(
  db: DB,
  text: string,
  opts: ImportOptions & { file: string },
): Promise<ImportResult> {
  const parsed = parseBarclampYaml(text, opts.file);
  return db.transaction().execute(async (tx) => {
    // several servers on one PostgreSQL may import the built-ins at once: take turns
    if (tx.getExecutor().adapter instanceof PostgresAdapter) await sql`SELECT pg_advisory_xact_lock(${IMPORT_LOCK_KEY})`.execute(tx);
    return importBarclampDoc(tx, parsed, opts);
  });
}

/** Imports each file in order, one transaction per file; stops at the first refused file. */
export async function importBarclampFiles(
  db: DB,
  files: readonly string[],
  opts: { sourcePath: string | null; mode: ImportMode },
): Promise<ImportResult[]> {
  const out: ImportResult[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new CrowbarError('BARCLAMP_INVALID', `${file}: cannot read: ${(e as Error).message}`, { file, line: null }, { cause: e });
    }
    out.push(await importBarclampYaml(db, text, { ...opts, file }));
  }
  return out;
}

/**
 * Imports a barclamp directory like `barclamp_import`: `<dir>/crowbar.yml`, then every
 * `<dir>/barclamps/*.yml` in name order, all with source_path = the (absolute) directory.
 */
export async function importBarclampDir(db: DB, dir: string, opts: { mode: ImportMode }): Promise<ImportResult[]> {
  const root = resolve(dir);
  let extra: string[] = [];
  try {
    extra = (await readdir(join(root, 'barclamps')))
      .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
      .sort()
      .map((f) => join(root, 'barclamps', f));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return importBarclampFiles(db, [join(root, 'crowbar.yml'), ...extra], { sourcePath: root, mode: opts.mode });
}

/**
 * Imports one barclamp document. Must run inside a transaction: any refusal (schema problem,
 * cycle) throws and the caller's transaction rolls the whole document back.
 */
export async function importBarclampDoc(
  tx: Tx,
  doc: JsonObject | ParsedBarclamp,
  opts: ImportOptions,
): Promise<ImportResult> {
  const parsed = isParsed(doc) ? doc : undefined;
  const value = parsed ? parsed.value : (doc as JsonObject);
  const file = opts.file ?? parsed?.file ?? '<barclamp>';
  const lineOf = parsed ? parsed.lineOf : () => null;

  const bc = readDoc(value, file, lineOf);
  await checkAgainstStore(tx, bc, file, lineOf);

  const sourcePath = opts.sourcePath ?? bc.source_path;
  const cfg = clone(value);
  if (sourcePath !== null && isObject(cfg['barclamp'])) cfg['barclamp'] = { ...cfg['barclamp'], source_path: sourcePath };

  const parent = bc.parent === null || bc.parent === bc.name ? null : (await getBarclamp(tx, bc.parent))!;
  const barclamp = await upsertBarclamp(tx, {
    name: bc.name,
    description: bc.description ?? humanize(bc.name),
    parentId: parent ? parent.id : null,
    version: bc.version,
    build_version: bc.build_version,
    source_url: bc.source_url,
    source_path: sourcePath,
    commit: bc.commit,
    build_on: bc.build_on,
    cfg_data: cfg,
  });

  for (const h of bc.hammers) await upsertAvailableHammer(tx, { name: h.name, klass: h.type, priority: h.priority });

  for (const j of bc.jigs) {
    await upsertJig(tx, {
      name: j.name,
      type: j.type,
      description: j.description ?? `Imported by ${bc.name}`,
      client_role_name: j.implementor,
      order: 100,
      active: opts.mode === 'production' ? j.name !== 'test' : DEV_JIGS.has(j.name),
      barclamp_id: barclamp.id,
    });
  }

  const roleIds: number[] = [];
  for (const r of bc.roles) {
    const role = await upsertRole(tx, {
      name: r.name,
      description: r.description ?? titleize(r.name),
      type: r.type ?? 'Role',
      jig_name: r.jig,
      barclamp_id: barclamp.id,
      provides: r.provides,
      conflicts: r.conflicts,
      flags: Object.fromEntries(r.flags.map((f) => [f, true])),
      timeout: r.timeout,
    });
    roleIds.push(role.id);
    for (const a of r.attribs) await upsertAttrib(tx, attribInput(a, barclamp.id, role.id));
  }
  // node-level attribs; unlike the original, `default` and `ui_renderer` are imported here too
  for (const a of bc.attribs) await upsertAttrib(tx, attribInput(a, barclamp.id, null));
  const flipped: Array<{ roleId: number; name: string; collect: boolean }> = [];
  for (const [i, r] of bc.roles.entries()) {
    for (const f of await setRoleWants(tx, roleIds[i]!, r.wants)) flipped.push({ roleId: roleIds[i]!, ...f });
  }

  try {
    await syncRoleGraph(tx, roleIds);
  } catch (e) {
    if (e instanceof CrowbarError && e.code === 'CYCLE') {
      throw new CrowbarError('CYCLE', `${file}: ${e.message}`, { ...e.details, file, line: null }, { cause: e });
    }
    throw e;
  }
  // a want that started or stopped collecting: node-roles already bound get their links redone
  for (const f of flipped) await relinkWant(tx, f.roleId, f.name, f.collect);

  return {
    barclamp,
    jigs: bc.jigs.map((j) => j.name),
    hammers: bc.hammers.map((h) => h.name),
    roles: bc.roles.map((r) => r.name),
    attribs: [...bc.roles.flatMap((r) => r.attribs.map((a) => a.name)), ...bc.attribs.map((a) => a.name)],
  };
}

/**
 * Makes role_requires match what the imported documents declare, for every role: its own
 * `requires` (from its barclamp's cfg_data), its jig's implementor role, the owners of the
 * attribs it wants (when they exist), and the roles that `attaches` it. Requirements no longer
 * declared are removed — except on roles no imported document declares (created otherwise),
 * which only gain. Then resolves names (late binding), refuses cycles and recomputes cohorts;
 * `focus` chooses where a reported cycle path starts.
 */
export async function syncRoleGraph(tx: Tx, focus: readonly number[] = []): Promise<void> {
  const roles = await tx.selectFrom('roles').select(['id', 'name', 'jig_name', 'barclamp_id']).execute();
  const barclamps = await tx.selectFrom('barclamps').select(['id', 'cfg_data']).execute();
  const jigs = await tx.selectFrom('jigs').select(['name', 'client_role_name']).execute();
  const attribs = await tx.selectFrom('attribs').select(['name', 'role_id']).execute();
  const wants = await tx.selectFrom('role_require_attribs').select(['role_id', 'attrib_name']).execute();
  const edges = await listRoleRequires(tx);

  const roleByName = new Map(roles.map((r) => [r.name, r]));
  const nameById = new Map(roles.map((r) => [r.id, r.name]));
  const implementor = new Map(jigs.map((j) => [j.name, j.client_role_name]));
  const ownerOf = new Map(attribs.map((a) => [a.name, a.role_id]));

  const declared = new Map<number, Map<string, { requires: string[]; attaches: string[] }>>();
  for (const b of barclamps) {
    const cfg = fromJson<Json>(b.cfg_data, {});
    const list = isObject(cfg) && Array.isArray(cfg['roles']) ? cfg['roles'] : [];
    const byName = new Map<string, { requires: string[]; attaches: string[] }>();
    for (const r of list) {
      if (!isObject(r) || typeof r['name'] !== 'string') continue;
      byName.set(r['name'], { requires: stringList(r['requires']), attaches: stringList(r['attaches']) });
    }
    declared.set(b.id, byName);
  }

  const desired = new Map<number, Set<string>>(roles.map((r) => [r.id, new Set<string>()]));
  const managed = new Set<number>();
  for (const r of roles) {
    const want = desired.get(r.id)!;
    const entry = declared.get(r.barclamp_id)?.get(r.name);
    if (entry) {
      managed.add(r.id);
      for (const n of entry.requires) want.add(n);
      for (const target of entry.attaches) {
        const t = roleByName.get(target);
        if (t) desired.get(t.id)!.add(r.name);
      }
    }
    const client = implementor.get(r.jig_name);
    if (client && client !== r.name) want.add(client);
  }
  for (const w of wants) {
    const owner = ownerOf.get(w.attrib_name);
    if (owner === undefined || owner === null || owner === w.role_id) continue;
    const ownerName = nameById.get(owner);
    if (ownerName) desired.get(w.role_id)?.add(ownerName);
  }

  const have = new Map<number, Set<string>>();
  const stale: number[] = [];
  for (const e of edges) {
    have.set(e.role_id, (have.get(e.role_id) ?? new Set()).add(e.requires));
    if (managed.has(e.role_id) && !desired.get(e.role_id)?.has(e.requires)) stale.push(e.id);
  }
  const fresh: Array<{ role_id: number; requires: string }> = [];
  for (const [roleId, names] of desired) {
    for (const n of names) if (!have.get(roleId)?.has(n)) fresh.push({ role_id: roleId, requires: n });
  }

  for (const part of chunks(stale)) {
    if (part.length) await tx.deleteFrom('role_requires').where('id', 'in', part).execute();
  }
  const stamp = now();
  for (const part of chunks(fresh, 1000)) {
    if (!part.length) continue;
    await tx
      .insertInto('role_requires')
      .values(part.map((f) => ({ ...f, required_role_id: null, created_at: stamp, updated_at: stamp })))
      .execute();
  }
  await resolveRequires(tx, { focus });
}

// ---------------------------------------------------------------------------------------------
// Reading and validating a document

type Path = Array<string | number>;
type LineOf = (path: ReadonlyArray<string | number>) => number | null;

interface AttribDecl {
  name: string;
  description: string;
  map: string;
  schema: Json | null;
  default: Json;
  ui_renderer: string | null;
  type: string | null;
}

interface RoleDecl {
  path: Path;
  name: string;
  description: string | null;
  jig: string;
  type: string | null;
  flags: RoleFlag[];
  requires: string[];
  attaches: string[];
  wants: Array<WantDecl & { path?: Path }>;
  provides: string[];
  conflicts: string[];
  timeout: number | null;
  attribs: AttribDecl[];
}

interface BarclampDecl {
  name: string;
  parent: string | null;
  description: string | null;
  version: string;
  build_version: string;
  source_url: string | null;
  source_path: string | null;
  commit: string | null;
  build_on: string | null;
  jigs: Array<{ path: Path; name: string; type: string; description: string | null; implementor: string | null }>;
  hammers: Array<{ name: string; type: string; priority: number }>;
  roles: RoleDecl[];
  attribs: AttribDecl[];
}

interface Issue {
  path: Path;
  message: string;
}

function readDoc(value: JsonObject, file: string, lineOf: LineOf): BarclampDecl {
  const issues: Issue[] = [];
  const bad = (path: Path, message: string) => {
    issues.push({ path, message });
  };

  const text = (v: Json | undefined, path: Path, what: string): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    bad(path, `${what} must be a string`);
    return null;
  };
  const name = (v: Json | undefined, path: Path, what: string, re: RegExp | null): string | null => {
    if (v === undefined || v === null || v === '') {
      bad(path, `${what} is missing`);
      return null;
    }
    if (typeof v !== 'string') {
      bad(path, `${what} must be a string, got ${JSON.stringify(v)}`);
      return null;
    }
    if (re && !re.test(v)) {
      bad(path, `${what} '${v}' is not a valid name (must match ${re.source})`);
      return null;
    }
    return v;
  };
  const seq = (v: Json | undefined, path: Path, what: string): Json[] => {
    if (v === undefined || v === null) return [];
    if (Array.isArray(v)) return v;
    bad(path, `${what} must be a list`);
    return [];
  };
  const names = (v: Json | undefined, path: Path, what: string, re: RegExp | null): string[] =>
    seq(v, path, what).flatMap((item, i) => name(item, [...path, i], `${what} entry`, re) ?? []);
  const mapping = (v: Json | undefined, path: Path, what: string): JsonObject | null => {
    if (isObject(v ?? null)) return v as JsonObject;
    bad(path, v === undefined || v === null ? `${what} is missing` : `${what} must be a mapping`);
    return null;
  };

  const readAttrib = (v: Json, path: Path): AttribDecl | null => {
    const a = mapping(v, path, 'attrib');
    if (!a) return null;
    const n = name(a['name'], [...path, 'name'], 'attrib name', null);
    const map = text(a['map'], [...path, 'map'], 'attrib map') ?? '';
    const description = text(a['description'], [...path, 'description'], 'attrib description') ?? '';
    const uiRenderer = text(a['ui_renderer'], [...path, 'ui_renderer'], 'attrib ui_renderer');
    const type = text(a['type'], [...path, 'type'], 'attrib type');
    if (n === null) return null;
    const schema = a['schema'];
    return {
      name: n,
      description,
      map,
      schema: schema === undefined || schema === null || schema === false ? null : schema,
      default: a['default'] ?? null,
      ui_renderer: uiRenderer,
      type,
    };
  };

  const meta = mapping(value['barclamp'], ['barclamp'], 'barclamp');
  const bcName = meta ? name(meta['name'], ['barclamp', 'name'], 'barclamp.name', NAME_RE.barclamp) : null;
  if (bcName !== null && RESERVED_BARCLAMP_NAMES.includes(bcName)) {
    bad(['barclamp', 'name'], `barclamp name '${bcName}' is reserved (${RESERVED_BARCLAMP_NAMES.join(', ')})`);
  }
  const parent = meta && meta['parent'] != null ? name(meta['parent'], ['barclamp', 'parent'], 'barclamp.parent', NAME_RE.barclamp) : null;
  const git = value['git'];
  const gitObj = git === undefined || git === null ? null : mapping(git, ['git'], 'git');

  const jigs: BarclampDecl['jigs'] = [];
  seq(value['jigs'], ['jigs'], 'jigs').forEach((v, i) => {
    const path: Path = ['jigs', i];
    const j = mapping(v, path, 'jig');
    if (!j) return;
    const n = name(j['name'], [...path, 'name'], 'jig name', NAME_RE.jig);
    const type = name(j['class'], [...path, 'class'], `jig class`, null);
    const implementor = j['implementor'] == null ? null : name(j['implementor'], [...path, 'implementor'], 'jig implementor', NAME_RE.role);
    const description = text(j['description'], [...path, 'description'], 'jig description');
    if (n !== null && type !== null) jigs.push({ path, name: n, type, description, implementor });
  });

  const hammers: BarclampDecl['hammers'] = [];
  seq(value['hammers'], ['hammers'], 'hammers').forEach((v, i) => {
    const path: Path = ['hammers', i];
    const h = mapping(v, path, 'hammer');
    if (!h) return;
    const n = name(h['name'], [...path, 'name'], 'hammer name', NAME_RE.jig);
    const type = name(h['type'], [...path, 'type'], 'hammer type', null);
    const p = h['priority'] ?? 0;
    const priority = typeof p === 'string' && /^-?\d+$/.test(p) ? Number(p) : p;
    if (typeof priority !== 'number' || !Number.isInteger(priority)) bad([...path, 'priority'], 'hammer priority must be an integer');
    else if (n !== null && type !== null) hammers.push({ name: n, type, priority });
  });

  const roles: RoleDecl[] = [];
  seq(value['roles'], ['roles'], 'roles').forEach((v, i) => {
    const path: Path = ['roles', i];
    const r = mapping(v, path, 'role');
    if (!r) return;
    const n = name(r['name'], [...path, 'name'], 'role name', NAME_RE.role);
    const jig = name(r['jig'], r['jig'] === undefined ? path : [...path, 'jig'], `role${n ? ` '${n}'` : ''} jig`, NAME_RE.jig);
    const flags: RoleFlag[] = [];
    seq(r['flags'], [...path, 'flags'], 'flags').forEach((f, k) => {
      if (typeof f === 'string' && (ROLE_FLAGS as readonly string[]).includes(f)) flags.push(f as RoleFlag);
      else bad([...path, 'flags', k], `unknown role flag ${JSON.stringify(f)} (known: ${ROLE_FLAGS.join(', ')})`);
    });
    const wants: RoleDecl['wants'] = [];
    seq(r['wants-attribs'], [...path, 'wants-attribs'], 'wants-attribs').forEach((w, k) => {
      const wp: Path = [...path, 'wants-attribs', k];
      if (typeof w === 'string' && w !== '') wants.push({ name: w, at: null, collect: false });
      else if (isObject(w)) {
        const wn = name(w['name'], [...wp, 'name'], 'wanted attrib name', null);
        const at = text(w['at'], [...wp, 'at'], 'wanted attrib at');
        const c = w['collect'];
        if (c !== undefined && c !== null && typeof c !== 'boolean') {
          bad([...wp, 'collect'], `wanted attrib collect must be true or false, got ${JSON.stringify(c)}`);
        }
        if (wn !== null) wants.push({ name: wn, at, collect: c === true, path: wp });
      } else bad(wp, 'a wants-attribs entry must be an attrib name or {name, at, collect}');
    });
    let timeout: number | null = null;
    if (r['timeout'] != null) {
      const t = typeof r['timeout'] === 'string' ? Number(r['timeout']) : r['timeout'];
      if (typeof t === 'number' && Number.isInteger(t) && t > 0) timeout = t;
      else bad([...path, 'timeout'], 'role timeout must be a positive number of seconds');
    }
    const role: RoleDecl = {
      path,
      name: n ?? '',
      description: text(r['description'], [...path, 'description'], 'role description'),
      jig: jig ?? '',
      type: text(r['type'], [...path, 'type'], 'role type'),
      flags,
      requires: names(r['requires'], [...path, 'requires'], 'requires', NAME_RE.role),
      attaches: names(r['attaches'], [...path, 'attaches'], 'attaches', NAME_RE.role),
      wants,
      provides: names(r['provides'], [...path, 'provides'], 'provides', null),
      conflicts: names(r['conflicts'], [...path, 'conflicts'], 'conflicts', null),
      timeout,
      attribs: seq(r['attribs'], [...path, 'attribs'], 'attribs').flatMap((a, k) => readAttrib(a, [...path, 'attribs', k]) ?? []),
    };
    if (n !== null && jig !== null) roles.push(role);
  });

  const attribs = seq(value['attribs'], ['attribs'], 'attribs').flatMap((a, k) => readAttrib(a, ['attribs', k]) ?? []);

  const m = meta ?? {};
  const description = text(m['description'], ['barclamp', 'description'], 'description');
  const version = text(m['version'], ['barclamp', 'version'], 'version') ?? '0.0';
  const buildVersion = text(m['build_version'], ['barclamp', 'build_version'], 'build_version') ?? '0.0';
  const sourceUrl = text(m['source_url'], ['barclamp', 'source_url'], 'source_url');
  const sourcePath = text(m['source_path'], ['barclamp', 'source_path'], 'source_path');
  const commit = gitObj ? text(gitObj['commit'], ['git', 'commit'], 'git.commit') ?? 'unknown' : null;
  const buildOn = gitObj ? text(gitObj['date'], ['git', 'date'], 'git.date') ?? 'unknown' : null;

  if (issues.length || bcName === null) throw refusal(file, lineOf, issues);
  return {
    name: bcName,
    parent,
    description,
    version,
    build_version: buildVersion,
    source_url: sourceUrl,
    source_path: sourcePath,
    commit,
    build_on: buildOn,
    jigs,
    hammers,
    roles,
    attribs,
  };
}

/** Checks that need the store: the parent barclamp, every role's jig, every attaches target. */
async function checkAgainstStore(tx: Tx, bc: BarclampDecl, file: string, lineOf: LineOf): Promise<void> {
  const issues: Issue[] = [];
  if (bc.parent !== null && bc.parent !== bc.name && !(await getBarclamp(tx, bc.parent))) {
    issues.push({ path: ['barclamp', 'parent'], message: `parent barclamp '${bc.parent}' is not imported (import it first)` });
  }
  const jigNames = new Set([...bc.jigs.map((j) => j.name), ...(await tx.selectFrom('jigs').select('name').execute()).map((j) => j.name)]);
  const attachTargets = bc.roles.flatMap((r) => r.attaches);
  const known = new Set(bc.roles.map((r) => r.name));
  if (attachTargets.length) {
    const rows = await tx.selectFrom('roles').select('name').where('name', 'in', attachTargets).execute();
    for (const r of rows) known.add(r.name);
  }
  const collected = [...new Set(bc.roles.flatMap((r) => r.wants.filter((w) => w.collect).map((w) => w.name)))];
  const owner = new Map<string, string | null>();
  if (collected.length) {
    const rows = await tx
      .selectFrom('attribs')
      .leftJoin('roles', 'roles.id', 'attribs.role_id')
      .select(['attribs.name', 'roles.name as role'])
      .where('attribs.name', 'in', collected)
      .execute();
    for (const a of rows) owner.set(a.name, a.role ?? null);
    for (const a of bc.attribs) owner.set(a.name, null);
    for (const r of bc.roles) for (const a of r.attribs) owner.set(a.name, r.name);
  }
  for (const r of bc.roles) {
    for (const w of r.wants) {
      if (!w.collect || !owner.has(w.name)) continue; // not imported yet: nothing to check now
      const o = owner.get(w.name);
      const where = w.path ? [...w.path, 'collect'] : r.path;
      if (o === null) issues.push({ path: where, message: `role '${r.name}' collects attrib '${w.name}', a node-level attrib; collect needs an attrib owned by a role` });
      else if (o === r.name) issues.push({ path: where, message: `role '${r.name}' collects its own attrib '${w.name}'; collect needs an attrib owned by another role` });
    }
    if (!jigNames.has(r.jig)) {
      issues.push({ path: [...r.path, 'jig'], message: `role '${r.name}' uses jig '${r.jig}', which no imported barclamp declares` });
    }
    r.attaches.forEach((t, k) => {
      if (!known.has(t)) issues.push({ path: [...r.path, 'attaches', k], message: `role '${r.name}' attaches to unknown role '${t}'` });
    });
  }
  if (issues.length) throw refusal(file, lineOf, issues);
}

function refusal(file: string, lineOf: LineOf, issues: Issue[]): CrowbarError {
  if (issues.length === 0) return invalid(file, lineOf([]), 'not a barclamp document');
  const located = issues
    .map((i) => ({ line: lineOf(i.path), message: i.message, path: i.path.join('.') }))
    .sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  const first = located[0]!;
  const more = located.length > 1 ? ` (and ${located.length - 1} more problem${located.length > 2 ? 's' : ''})` : '';
  return invalid(file, first.line, `${first.message}${more}`, { issues: located });
}

function invalid(file: string, line: number | null, reason: string, extra: Record<string, unknown> = {}): CrowbarError {
  return new CrowbarError('BARCLAMP_INVALID', `${file}${line === null ? '' : `:${line}`}: ${reason}`, { file, line, ...extra });
}

function attribInput(a: AttribDecl, barclampId: number, roleId: number | null) {
  return {
    name: a.name,
    description: a.description,
    barclamp_id: barclampId,
    role_id: roleId,
    type: a.type ?? 'Attrib',
    map: a.map,
    schema: a.schema,
    ui_renderer: a.ui_renderer ?? 'attribs/default',
    default: a.default,
  };
}

function isParsed(doc: JsonObject | ParsedBarclamp): doc is ParsedBarclamp {
  return typeof (doc as { lineOf?: unknown }).lineOf === 'function' && isObject((doc as { value?: Json }).value ?? null);
}

function stringList(v: Json | undefined): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** `test_bc` → `Test bc` (Rails `humanize`). */
function humanize(s: string): string {
  const t = s.replace(/_/g, ' ').toLowerCase();
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** `crowbar-api_server` → `Crowbar Api Server` (Rails `titleize` after `-` → space). */
function titleize(s: string): string {
  return s.replace(/[-_]/g, ' ').toLowerCase().replace(/\b[a-z]/g, (c) => c.toUpperCase());
}
