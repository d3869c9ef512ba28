/**
 * The role aggregate (spec §1.3–§1.5): roles, their requirements (role_requires, late-bound by
 * name) and wants-attribs (role_require_attribs). Owns the role graph rules: resolution of
 * requirements by name, cycle refusal with the offending path, and cohorts
 * (1 + max(parent cohorts), 0 without parents).
 */
import type { Attrib, Role, RoleFlag } from '../domain/entities.js';
import { ROLE_FLAGS } from '../domain/entities.js';
import type { JsonObject } from '../domain/json.js';
import { CrowbarError, NotFoundError } from '../domain/errors.js';
import { chunks, now, sql, toJson, type Tx } from './db.js';
import { bool, toAttrib, toRole } from './rows.js';
import { didYouMean } from './barclamps.js';
import { keyAsId } from './rows.js';

export { getAttrib, requireAttrib, listAttribs, nodeLevelAttribs } from './attribs.js';

/** A requirement of a role on another role, by name; `required_role_id` null until resolved. */
export interface RoleRequire {
  id: number;
  role_id: number;
  requires: string;
  required_role_id: number | null;
}

/**
 * A wants-attrib: the role wants attrib `attrib_name` placed at `attrib_at` (null = the attrib's
 * map). With `collect` it wants the value of every ancestor node-role of the attrib's owner, as
 * a list, instead of the value of one.
 */
export interface RoleWant {
  id: number;
  role_id: number;
  attrib_name: string;
  attrib_at: string | null;
  collect: boolean;
}

/** A wants-attrib as barclamp import declares it. */
export interface WantDecl {
  name: string;
  at: string | null;
  collect: boolean;
}

export async function getRole(tx: Tx, idOrName: number | string): Promise<Role | undefined> {
  const id = keyAsId(idOrName);
  if (id !== null) {
    const row = await tx.selectFrom('roles').selectAll().where('id', '=', id).executeTakeFirst();
    if (row || typeof idOrName === 'number') return row && toRole(row);
  }
  const row = await tx.selectFrom('roles').selectAll().where('name', '=', String(idOrName)).executeTakeFirst();
  return row && toRole(row);
}

export async function requireRole(tx: Tx, idOrName: number | string): Promise<Role> {
  const found = await getRole(tx, idOrName);
  if (found) return found;
  const names = await tx.selectFrom('roles').select('name').execute();
  throw new NotFoundError('role', idOrName, didYouMean(idOrName, names.map((n) => n.name)));
}

/** Every role, ordered cohort then name (the order the annealer and UI use). */
export async function listRoles(tx: Tx): Promise<Role[]> {
  const rows = await tx.selectFrom('roles').selectAll().orderBy('cohort').orderBy('name').execute();
  return rows.map(toRole);
}

export async function rolesByIds(tx: Tx, ids: Iterable<number>): Promise<Map<number, Role>> {
  const out = new Map<number, Role>();
  for (const part of chunks([...new Set(ids)])) {
    if (part.length === 0) continue;
    const rows = await tx.selectFrom('roles').selectAll().where('id', 'in', part).execute();
    for (const r of rows) out.set(r.id, toRole(r));
  }
  return out;
}

/** Direct, resolved parents (the roles this role requires), ordered cohort then name. */
export async function roleParents(tx: Tx, roleId: number): Promise<Role[]> {
  const rows = await tx
    .selectFrom('role_requires')
    .innerJoin('roles', 'roles.id', 'role_requires.required_role_id')
    .selectAll('roles')
    .where('role_requires.role_id', '=', roleId)
    .orderBy('roles.cohort')
    .orderBy('roles.name')
    .execute();
  return rows.map(toRole);
}

/** Direct children (roles that require this one, resolved), ordered cohort then name. */
export async function roleChildren(tx: Tx, roleId: number): Promise<Role[]> {
  const rows = await tx
    .selectFrom('role_requires')
    .innerJoin('roles', 'roles.id', 'role_requires.role_id')
    .selectAll('roles')
    .where('role_requires.required_role_id', '=', roleId)
    .orderBy('roles.cohort')
    .orderBy('roles.name')
    .execute();
  return rows.map(toRole);
}

/**
 * Names still unresolved anywhere in the role's transitive requirement closure (the role
 * itself included). Empty ⇒ the role may be bound.
 */
export async function unresolvedRequirements(tx: Tx, roleId: number): Promise<string[]> {
  const res = await sql<{ requires: string }>`
    WITH RECURSIVE closure(id) AS (
      SELECT CAST(${roleId} AS INTEGER)
      UNION
      SELECT rr.required_role_id FROM role_requires rr JOIN closure c ON rr.role_id = c.id
      WHERE rr.required_role_id IS NOT NULL
    )
    SELECT DISTINCT rr.requires AS requires FROM role_requires rr JOIN closure c ON rr.role_id = c.id
    WHERE rr.required_role_id IS NULL
    ORDER BY 1`.execute(tx);
  return res.rows.map((r) => r.requires);
}

/** The role's wants-attribs whose attrib exists, with where to place each (`at`) and whether it collects. */
export async function wantedAttribs(tx: Tx, roleId: number): Promise<Array<{ attrib: Attrib; at: string; collect: boolean }>> {
  const rows = await tx
    .selectFrom('role_require_attribs')
    .innerJoin('attribs', 'attribs.name', 'role_require_attribs.attrib_name')
    .selectAll('attribs')
    .select(['role_require_attribs.attrib_at', 'role_require_attribs.collect as want_collect'])
    .where('role_require_attribs.role_id', '=', roleId)
    .orderBy('role_require_attribs.id')
    .execute();
  return rows.map(({ attrib_at, want_collect, ...a }) => {
    const attrib = toAttrib(a);
    return { attrib, at: attrib_at ?? attrib.map, collect: Boolean(want_collect) };
  });
}

/** Attribs owned by the role. */
export async function roleAttribs(tx: Tx, roleId: number): Promise<Attrib[]> {
  const rows = await tx.selectFrom('attribs').selectAll().where('role_id', '=', roleId).orderBy('id').execute();
  return rows.map(toAttrib);
}

export async function listRoleRequires(tx: Tx, roleId?: number): Promise<RoleRequire[]> {
  let q = tx.selectFrom('role_requires').select(['id', 'role_id', 'requires', 'required_role_id']);
  if (roleId !== undefined) q = q.where('role_id', '=', roleId);
  return q.orderBy('id').execute();
}

export async function listRoleWants(tx: Tx, roleId?: number): Promise<RoleWant[]> {
  let q = tx.selectFrom('role_require_attribs').select(['id', 'role_id', 'attrib_name', 'attrib_at', 'collect']);
  if (roleId !== undefined) q = q.where('role_id', '=', roleId);
  return (await q.orderBy('id').execute()).map((r) => ({ ...r, collect: Boolean(r.collect) }));
}

export interface RoleInput {
  name: string;
  description: string;
  type: string;
  jig_name: string;
  barclamp_id: number;
  provides: string[];
  conflicts: string[];
  flags: Partial<Record<RoleFlag, boolean>>;
  /** run timeout in seconds; null = the jig's default */
  timeout: number | null;
}

/**
 * Find-or-create by name, then set every declared field. The template, notes and cohort are
 * runtime state and are kept (the original reset the template on every import; we do not).
 */
export async function upsertRole(tx: Tx, input: RoleInput): Promise<Role> {
  const stamp = now();
  const fields = {
    description: input.description,
    type: input.type,
    jig_name: input.jig_name,
    barclamp_id: input.barclamp_id,
    provides: toJson(input.provides),
    conflicts: toJson(input.conflicts),
    timeout: input.timeout,
    updated_at: stamp,
    ...Object.fromEntries(ROLE_FLAGS.map((f) => [f, bool(input.flags[f])])),
  } as { [K in RoleFlag]: number } & {
    description: string; type: string; jig_name: string; barclamp_id: number; provides: string;
    conflicts: string; timeout: number | null; updated_at: string;
  };
  const existing = await tx.selectFrom('roles').select('id').where('name', '=', input.name).executeTakeFirst();
  if (existing) await tx.updateTable('roles').set(fields).where('id', '=', existing.id).execute();
  else {
    await tx
      .insertInto('roles')
      .values({ ...fields, name: input.name, template: '{}', cohort: 0, notes: '{}', created_at: stamp })
      .execute();
  }
  return (await getRole(tx, input.name))!;
}

/** Replaces a role's template (role-level default data, the lowest layer of deployment-role data). */
export async function setRoleTemplate(tx: Tx, roleId: number, template: JsonObject): Promise<void> {
  await tx.updateTable('roles').set({ template: toJson(template), updated_at: now() }).where('id', '=', roleId).execute();
}

/**
 * Makes the role require exactly `names` (with `prune`, the default) or at least `names`.
 * New rows are written unresolved: call `resolveRequires` afterwards (in the same
 * transaction) to resolve them, refuse cycles and update cohorts.
 */
export async function setRoleRequires(
  tx: Tx,
  roleId: number,
  names: Iterable<string>,
  opts: { prune?: boolean } = {},
): Promise<{ added: string[]; removed: string[] }> {
  const wanted = new Set(names);
  const existing = await listRoleRequires(tx, roleId);
  const have = new Set(existing.map((e) => e.requires));
  const added = [...wanted].filter((n) => !have.has(n));
  const removedRows = opts.prune === false ? [] : existing.filter((e) => !wanted.has(e.requires));
  for (const part of chunks(removedRows.map((r) => r.id))) {
    if (part.length) await tx.deleteFrom('role_requires').where('id', 'in', part).execute();
  }
  if (added.length) {
    const stamp = now();
    for (const part of chunks(added, 1000)) {
      await tx
        .insertInto('role_requires')
        .values(part.map((n) => ({ role_id: roleId, requires: n, required_role_id: null, created_at: stamp, updated_at: stamp })))
        .execute();
    }
  }
  return { added, removed: removedRows.map((r) => r.requires) };
}

/**
 * Makes the role's wants-attribs exactly `wants` (added, re-pointed or removed). Returns the
 * existing wants whose `collect` flag changed: node-roles already bound keep the attrib links
 * binding made for the old flag until they are relinked (see `relinkWant` in engine/binding).
 */
export async function setRoleWants(tx: Tx, roleId: number, wants: ReadonlyArray<WantDecl>): Promise<Array<{ name: string; collect: boolean }>> {
  const byName = new Map(wants.map((w) => [w.name, w]));
  const existing = await listRoleWants(tx, roleId);
  const stamp = now();
  const flipped: Array<{ name: string; collect: boolean }> = [];
  for (const e of existing) {
    const w = byName.get(e.attrib_name);
    if (!w) {
      await tx.deleteFrom('role_require_attribs').where('id', '=', e.id).execute();
    } else if (w.at !== e.attrib_at || w.collect !== e.collect) {
      await tx
        .updateTable('role_require_attribs')
        .set({ attrib_at: w.at, collect: bool(w.collect), updated_at: stamp })
        .where('id', '=', e.id)
        .execute();
      if (w.collect !== e.collect) flipped.push({ name: e.attrib_name, collect: w.collect });
    }
  }
  const have = new Set(existing.map((e) => e.attrib_name));
  const fresh = [...byName.values()].filter((w) => !have.has(w.name));
  if (fresh.length) {
    await tx
      .insertInto('role_require_attribs')
      .values(fresh.map((w) => ({ role_id: roleId, attrib_name: w.name, attrib_at: w.at, collect: bool(w.collect), created_at: stamp, updated_at: stamp })))
      .execute();
  }
  return flipped;
}

/**
 * Late binding: points every requirement at the role of that name (or back to NULL when the
 * role is gone), refuses a cyclic graph — CrowbarError CYCLE naming the path, e.g.
 * `a -> b -> c -> a` ("a requires b requires c requires a") — and recomputes every cohort.
 * `focus` (role ids) only chooses where a reported cycle starts. Returns how many
 * requirements changed resolution. Throwing leaves the caller's transaction to roll back.
 */
export async function resolveRequires(tx: Tx, opts: { focus?: Iterable<number> } = {}): Promise<number> {
  const roles = await tx.selectFrom('roles').select(['id', 'name', 'cohort']).execute();
  const edges = await listRoleRequires(tx);
  const idByName = new Map(roles.map((r) => [r.name, r.id]));
  const nameById = new Map(roles.map((r) => [r.id, r.name]));

  const changes = new Map<number | null, number[]>();
  const parents = new Map<number, number[]>();
  for (const e of edges) {
    const target = idByName.get(e.requires) ?? null;
    if (target !== e.required_role_id) {
      const list = changes.get(target) ?? [];
      list.push(e.id);
      changes.set(target, list);
    }
    if (target !== null) {
      const list = parents.get(e.role_id) ?? [];
      list.push(target);
      parents.set(e.role_id, list);
    }
  }

  const focus = [...(opts.focus ?? [])];
  const cycle = findCycle(parents, [...focus, ...roles.map((r) => r.id)], new Set(focus));
  if (cycle) {
    const path = cycle.map((id) => nameById.get(id) ?? String(id));
    throw new CrowbarError('CYCLE', `role requirements would make the role graph cyclic: ${path.join(' -> ')}`, { path });
  }

  let changed = 0;
  const stamp = now();
  for (const [target, ids] of changes) {
    changed += ids.length;
    for (const part of chunks(ids)) {
      await tx.updateTable('role_requires').set({ required_role_id: target, updated_at: stamp }).where('id', 'in', part).execute();
    }
  }
  await writeCohorts(tx, roles, parents);
  return changed;
}

/** Recomputes every role's cohort from the resolved requirements. */
export async function recomputeCohorts(tx: Tx): Promise<void> {
  const roles = await tx.selectFrom('roles').select(['id', 'cohort']).execute();
  const edges = await tx
    .selectFrom('role_requires')
    .select(['role_id', 'required_role_id'])
    .where('required_role_id', 'is not', null)
    .execute();
  const parents = new Map<number, number[]>();
  for (const e of edges) {
    const list = parents.get(e.role_id) ?? [];
    list.push(e.required_role_id!);
    parents.set(e.role_id, list);
  }
  await writeCohorts(tx, roles, parents);
}

async function writeCohorts(
  tx: Tx,
  roles: ReadonlyArray<{ id: number; cohort: number }>,
  parents: Map<number, number[]>,
): Promise<void> {
  const cohort = new Map<number, number>();
  const compute = (id: number, depth: number): number => {
    const known = cohort.get(id);
    if (known !== undefined) return known;
    if (depth > roles.length) throw new CrowbarError('CYCLE', `role graph is cyclic at role id ${id}`);
    let c = 0;
    for (const p of parents.get(id) ?? []) c = Math.max(c, compute(p, depth + 1) + 1);
    cohort.set(id, c);
    return c;
  };
  const byValue = new Map<number, number[]>();
  for (const r of roles) {
    const c = compute(r.id, 0);
    if (c !== r.cohort) byValue.set(c, [...(byValue.get(c) ?? []), r.id]);
  }
  for (const [c, ids] of byValue) {
    for (const part of chunks(ids)) await tx.updateTable('roles').set({ cohort: c }).where('id', 'in', part).execute();
  }
}

/**
 * A cycle in the graph (node → parents) as [a, b, …, a], or null. Roots are tried in order;
 * a cycle through a `prefer` node is rotated to start there.
 */
function findCycle(parents: Map<number, number[]>, roots: number[], prefer: Set<number>): number[] | null {
  const state = new Map<number, 'open' | 'done'>();
  const stack: number[] = [];
  const visit = (n: number): number[] | null => {
    state.set(n, 'open');
    stack.push(n);
    for (const p of parents.get(n) ?? []) {
      const s = state.get(p);
      if (s === 'open') return stack.slice(stack.indexOf(p));
      if (s === undefined) {
        const c = visit(p);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const root of roots) {
    if (state.has(root)) continue;
    const ring = visit(root);
    if (ring) {
      const start = Math.max(0, ring.findIndex((n) => prefer.has(n)));
      const rotated = [...ring.slice(start), ...ring.slice(0, start)];
      return [...rotated, rotated[0]!];
    }
  }
  return null;
}
