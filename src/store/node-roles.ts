/**
 * Node-roles and their graph: rows, parent/child edges (node_role_pcms), attrib links, and the
 * set-at-a-time reads and state writes the engine and annealer batch inside one transaction.
 */
import type { NodeRole } from '../domain/entities.js';
import { NotFoundError } from '../domain/errors.js';
import type { JsonObject } from '../domain/json.js';
import { chunks, now, toJson, type Tx } from './db.js';
import { toNodeRole } from './rows.js';

export async function getNodeRole(tx: Tx, id: number): Promise<NodeRole | undefined> {
  const row = await tx.selectFrom('node_roles').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toNodeRole(row);
}

export async function requireNodeRole(tx: Tx, id: number): Promise<NodeRole> {
  const nr = await getNodeRole(tx, id);
  if (!nr) throw new NotFoundError('node_role', id);
  return nr;
}

export async function findNodeRole(tx: Tx, roleId: number, nodeId: number): Promise<NodeRole | undefined> {
  const row = await tx
    .selectFrom('node_roles')
    .selectAll()
    .where('role_id', '=', roleId)
    .where('node_id', '=', nodeId)
    .executeTakeFirst();
  return row && toNodeRole(row);
}

export interface NodeRoleFilter {
  nodeId?: number;
  deploymentId?: number;
  roleId?: number;
  roleIds?: number[];
  states?: number[];
  ids?: number[];
}

export async function listNodeRoles(tx: Tx, f: NodeRoleFilter = {}, order: 'asc' | 'desc' = 'asc'): Promise<NodeRole[]> {
  const run = async (ids?: number[]) => {
    let q = tx.selectFrom('node_roles').selectAll().orderBy('cohort', order).orderBy('id', order);
    if (f.nodeId !== undefined) q = q.where('node_id', '=', f.nodeId);
    if (f.deploymentId !== undefined) q = q.where('deployment_id', '=', f.deploymentId);
    if (f.roleId !== undefined) q = q.where('role_id', '=', f.roleId);
    if (f.roleIds !== undefined) q = f.roleIds.length ? q.where('role_id', 'in', f.roleIds) : q.where('id', '<', 0);
    if (f.states !== undefined) q = q.where('state', 'in', f.states);
    if (ids !== undefined) q = q.where('id', 'in', ids);
    return (await q.execute()).map(toNodeRole);
  };
  if (f.ids === undefined) return run();
  if (f.ids.length === 0) return [];
  const out: NodeRole[] = [];
  for (const c of chunks(f.ids)) out.push(...(await run(c)));
  return f.ids.length > 5000 ? out.sort((a, b) => (a.cohort - b.cohort || a.id - b.id) * (order === 'asc' ? 1 : -1)) : out;
}

export async function insertNodeRole(
  tx: Tx,
  nr: { deployment_id: number; role_id: number; node_id: number; state: number; cohort: number },
): Promise<NodeRole> {
  const t = now();
  const row = await tx
    .insertInto('node_roles')
    .values({ ...nr, created_at: t, updated_at: t })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toNodeRole(row);
}

export interface NodeRolePatch {
  proposed_data?: JsonObject;
  committed_data?: JsonObject;
  sysdata?: JsonObject;
  wall?: JsonObject;
  notes?: JsonObject;
  runlog?: string;
  cohort?: number;
  deployment_id?: number;
  available?: boolean;
  status?: string | null;
}

export async function updateNodeRole(tx: Tx, id: number, p: NodeRolePatch): Promise<void> {
  const set: Record<string, unknown> = { updated_at: now() };
  for (const k of ['proposed_data', 'committed_data', 'sysdata', 'wall', 'notes'] as const) {
    if (p[k] !== undefined) set[k] = toJson(p[k]);
  }
  if (p.runlog !== undefined) set.runlog = p.runlog;
  if (p.cohort !== undefined) set.cohort = p.cohort;
  if (p.deployment_id !== undefined) set.deployment_id = p.deployment_id;
  if (p.available !== undefined) set.available = p.available ? 1 : 0;
  if (p.status !== undefined) set.status = p.status;
  await tx.updateTable('node_roles').set(set).where('id', '=', id).execute();
}

/** Sets `state` on every id in `ids` (no hooks; the engine records the change events). */
export async function setState(tx: Tx, ids: number[], state: number, extra: { runlog?: string } = {}): Promise<void> {
  const t = now();
  for (const c of chunks(ids)) {
    await tx
      .updateTable('node_roles')
      .set({ state, updated_at: t, ...(extra.runlog !== undefined ? { runlog: extra.runlog } : {}) })
      .where('id', 'in', c)
      .execute();
  }
}

export interface Brief {
  id: number;
  state: number;
  node_id: number;
  role_id: number;
  deployment_id: number;
  cohort: number;
  run_count: number;
}

const briefCols = ['id', 'state', 'node_id', 'role_id', 'deployment_id', 'cohort', 'run_count'] as const;

/**
 * BLOCKED node-roles whose parents are all ACTIVE (at most `limit`): stranded by a commit that
 * read a parent's state just before a concurrent transaction activated it (PostgreSQL).
 */
export async function strandedBlocked(tx: Tx, limit: number): Promise<number[]> {
  const rows = await tx
    .selectFrom('node_roles as nr')
    .select('nr.id')
    .where('nr.state', '=', 3)
    .where(({ not, exists, selectFrom }) =>
      not(exists(
        selectFrom('node_role_pcms as e')
          .innerJoin('node_roles as p', 'p.id', 'e.parent_id')
          .select('e.parent_id')
          .whereRef('e.child_id', '=', 'nr.id')
          .where('p.state', '<>', 0),
      )),
    )
    .orderBy('nr.id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

export async function briefs(tx: Tx, ids: number[]): Promise<Brief[]> {
  const out: Brief[] = [];
  for (const c of chunks(ids)) out.push(...(await tx.selectFrom('node_roles').select(briefCols).where('id', 'in', c).execute()));
  return out;
}

// Graph ////////////////////////////////////////////////////////////////////////////////////

export async function addEdge(tx: Tx, parentId: number, childId: number): Promise<boolean> {
  const res = await tx
    .insertInto('node_role_pcms')
    .values({ parent_id: parentId, child_id: childId })
    .onConflict((oc) => oc.columns(['parent_id', 'child_id']).doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** Direct parents of each child id, as briefs. */
export async function parentsOf(tx: Tx, childIds: number[]): Promise<Map<number, Brief[]>> {
  const out = new Map<number, Brief[]>();
  for (const c of chunks(childIds)) {
    const rows = await tx
      .selectFrom('node_role_pcms as e')
      .innerJoin('node_roles as p', 'p.id', 'e.parent_id')
      .select(['e.child_id', 'p.id', 'p.state', 'p.node_id', 'p.role_id', 'p.deployment_id', 'p.cohort', 'p.run_count'])
      .where('e.child_id', 'in', c)
      .execute();
    for (const { child_id, ...p } of rows) {
      const list = out.get(child_id) ?? [];
      list.push(p);
      out.set(child_id, list);
    }
  }
  return out;
}

/** Direct children of each parent id, as briefs. */
export async function childrenOf(tx: Tx, parentIds: number[]): Promise<Map<number, Brief[]>> {
  const out = new Map<number, Brief[]>();
  for (const c of chunks(parentIds)) {
    const rows = await tx
      .selectFrom('node_role_pcms as e')
      .innerJoin('node_roles as ch', 'ch.id', 'e.child_id')
      .select(['e.parent_id', 'ch.id', 'ch.state', 'ch.node_id', 'ch.role_id', 'ch.deployment_id', 'ch.cohort', 'ch.run_count'])
      .where('e.parent_id', 'in', c)
      .execute();
    for (const { parent_id, ...ch } of rows) {
      const list = out.get(parent_id) ?? [];
      list.push(ch);
      out.set(parent_id, list);
    }
  }
  return out;
}

/** Transitive closure over parents (`up`) or children (`down`), excluding the start ids. */
export async function closure(tx: Tx, startIds: number[], direction: 'up' | 'down'): Promise<Brief[]> {
  const seen = new Map<number, Brief>();
  let frontier = startIds;
  const start = new Set(startIds);
  while (frontier.length > 0) {
    const step = direction === 'up' ? await parentsOf(tx, frontier) : await childrenOf(tx, frontier);
    const next: number[] = [];
    for (const list of step.values()) {
      for (const b of list) {
        if (seen.has(b.id) || start.has(b.id)) continue;
        seen.set(b.id, b);
        next.push(b.id);
      }
    }
    frontier = next;
  }
  return [...seen.values()];
}

export async function addAttribLink(tx: Tx, parentId: number, childId: number, attribId: number): Promise<void> {
  const exists = await tx
    .selectFrom('node_role_attrib_links')
    .select('id')
    .where('parent_id', '=', parentId)
    .where('child_id', '=', childId)
    .where('attrib_id', '=', attribId)
    .executeTakeFirst();
  if (!exists) await tx.insertInto('node_role_attrib_links').values({ parent_id: parentId, child_id: childId, attrib_id: attribId }).execute();
}

export async function attribLinksOf(tx: Tx, childId: number): Promise<Array<{ parent_id: number; attrib_id: number }>> {
  return tx.selectFrom('node_role_attrib_links').select(['parent_id', 'attrib_id']).where('child_id', '=', childId).orderBy('id').execute();
}

/** Children linked to any of these parents through an attrib link, with the attrib. */
export async function attribLinkChildren(tx: Tx, parentIds: number[]): Promise<Array<{ parent_id: number; child_id: number; attrib_id: number }>> {
  const out: Array<{ parent_id: number; child_id: number; attrib_id: number }> = [];
  for (const c of chunks(parentIds)) {
    out.push(...(await tx.selectFrom('node_role_attrib_links').select(['parent_id', 'child_id', 'attrib_id']).where('parent_id', 'in', c).execute()));
  }
  return out;
}

export async function deleteNodeRoles(tx: Tx, ids: number[]): Promise<void> {
  for (const c of chunks(ids)) {
    await tx.deleteFrom('node_role_pcms').where((eb) => eb.or([eb('parent_id', 'in', c), eb('child_id', 'in', c)])).execute();
    await tx.deleteFrom('node_role_attrib_links').where((eb) => eb.or([eb('parent_id', 'in', c), eb('child_id', 'in', c)])).execute();
    await tx.deleteFrom('node_roles').where('id', 'in', c).execute();
  }
}
