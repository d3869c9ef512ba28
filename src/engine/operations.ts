/**
 * Operations the REST API needs beyond the lifecycle modules, each run inside the caller's
 * transaction: node edits (deployment moves with the original's guard, the annealer target,
 * debug/undebug, delete), binding with data, node-role and deployment-role data, and the
 * deployment commit preview ("plan"), which performs the commit in a transaction that is
 * always rolled back.
 */
import type { Deployment, DeploymentRole, Node, NodeRole } from '../domain/entities.js';
import { ConflictError, InvalidError } from '../domain/errors.js';
import { NodeRoleState as S, stateName } from '../domain/states.js';
import { deepMerge, getPath, type Json, type JsonObject } from '../domain/json.js';
import { chunks, now } from '../store/db.js';
import {
  ensureDeploymentRole, getDeployment, getDeploymentRole, getDeploymentRoleById, listDeploymentRoles, requireDeployment,
  updateDeploymentRole,
} from '../store/deployments.js';
import { closure, findNodeRole, listNodeRoles, parentsOf, requireNodeRole, updateNodeRole } from '../store/node-roles.js';
import { getNode, requireNode, type NodePatch } from '../store/nodes.js';
import { getRole, requireRole, roleAttribs, rolesByIds } from '../store/roles.js';
import { NotFoundError } from '../domain/errors.js';
import { Ctx, type EngineCore } from './context.js';
import { bindRole, deleteNodeRole } from './binding.js';
import { commitDeployment, phantomName } from './deployments.js';
import { updateNodeFields } from './nodes.js';
import { stageInputs } from './injection.js';

// Nodes ////////////////////////////////////////////////////////////////////////////////////

/** A node edit as the API expresses it (spec §11.2: PUT/PATCH nodes). */
export interface NodeChange {
  name?: string;
  description?: string;
  allocated?: boolean;
  available?: boolean;
  alive?: boolean;
  bootenv?: string;
  /** move the node to this deployment (id or name) */
  deployment?: number | string;
  /** guard: refuse the move unless the node is in this deployment now */
  oldDeployment?: number | string;
  /** the annealer target: a role (id or name) bound to the node, or null to clear */
  target?: number | string | null;
}

export async function changeNode(ctx: Ctx, key: number | string, c: NodeChange): Promise<Node> {
  const node = await requireNode(ctx.tx, key);
  const patch: NodePatch = {};
  if (c.name !== undefined && c.name.toLowerCase() !== node.name) {
    const clash = await getNode(ctx.tx, c.name.toLowerCase());
    if (clash) throw new ConflictError(`node '${c.name.toLowerCase()}' already exists`, { field: 'name' });
    patch.name = c.name;
  }
  if (c.description !== undefined) patch.description = c.description;
  if (c.allocated !== undefined) patch.allocated = c.allocated;
  if (c.available !== undefined) patch.available = c.available;
  if (c.alive !== undefined) patch.alive = c.alive;
  if (c.bootenv !== undefined) {
    if (c.bootenv.trim() === '') throw new InvalidError(`'bootenv' must not be empty`, { field: 'bootenv' });
    patch.bootenv = c.bootenv;
  }
  let to: Deployment | undefined;
  if (c.deployment !== undefined) {
    to = await requireDeployment(ctx.tx, c.deployment);
    if (c.oldDeployment !== undefined) {
      const old = await requireDeployment(ctx.tx, c.oldDeployment);
      if (old.id !== node.deployment_id) {
        const cur = await getDeployment(ctx.tx, node.deployment_id);
        throw new ConflictError(`node '${node.name}' is not in deployment '${old.name}' (it is in '${cur?.name ?? node.deployment_id}')`, { field: 'old_deployment_id' });
      }
    }
    if (to.id !== node.deployment_id) patch.deployment_id = to.id;
  }
  const after = await updateNodeFields(ctx, node.id, patch);
  if (to && to.id !== node.deployment_id) await moveNodeRoles(ctx, node, node.deployment_id, to.id);
  if (c.target !== undefined) await setNodeTarget(ctx, after, c.target);
  return (await getNode(ctx.tx, node.id))!;
}

/**
 * After a node changes deployment (spec §1.9): its PROPOSED, never-run node-roles in the old
 * deployment follow it when every descendant is also PROPOSED, never run and in the old
 * deployment; the deployment-role is ensured in the new one.
 */
async function moveNodeRoles(ctx: Ctx, node: Node, fromId: number, toId: number): Promise<void> {
  const candidates = (await listNodeRoles(ctx.tx, { nodeId: node.id, deploymentId: fromId, states: [S.PROPOSED] })).filter((n) => n.run_count === 0);
  const moved: number[] = [];
  for (const nr of candidates) {
    const desc = await closure(ctx.tx, [nr.id], 'down');
    if (!desc.every((d) => d.state === S.PROPOSED && d.run_count === 0 && d.deployment_id === fromId)) continue;
    await ensureDeploymentRole(ctx.tx, toId, nr.role_id);
    await updateNodeRole(ctx.tx, nr.id, { deployment_id: toId });
    moved.push(nr.id);
  }
  ctx.emit('node.moved', { id: node.id, from: fromId, to: toId, node_roles: moved });
}

/**
 * The annealer target (spec §1.9 `target=`): only the target node-role and its ancestors on the
 * same node stay available to the annealer; null makes every node-role of the node available.
 */
export async function setNodeTarget(ctx: Ctx, node: Node, target: number | string | null): Promise<void> {
  const t = now();
  if (target === null) {
    await ctx.tx.updateTable('node_roles').set({ available: 1, updated_at: t }).where('node_id', '=', node.id).execute();
    await ctx.tx.updateTable('nodes').set({ target_role_id: null, updated_at: t }).where('id', '=', node.id).execute();
    ctx.emit('node.target', { id: node.id, target_role_id: null });
    ctx.wake = true;
    return;
  }
  const role = await getRole(ctx.tx, target);
  if (!role) throw new InvalidError(`target role '${target}' does not exist`, { field: 'target_role_id' });
  const nr = await findNodeRole(ctx.tx, role.id, node.id);
  if (!nr) {
    throw new ConflictError(`cannot set target role '${role.name}' for node '${node.name}': the role is not bound to the node`, { field: 'target_role_id' });
  }
  const keep = [nr.id, ...(await closure(ctx.tx, [nr.id], 'up')).filter((a) => a.node_id === node.id).map((a) => a.id)];
  await ctx.tx.updateTable('node_roles').set({ available: 0, updated_at: t }).where('node_id', '=', node.id).execute();
  for (const c of chunks(keep)) await ctx.tx.updateTable('node_roles').set({ available: 1 }).where('id', 'in', c).execute();
  await ctx.tx.updateTable('nodes').set({ target_role_id: role.id, updated_at: t }).where('id', '=', node.id).execute();
  ctx.emit('node.target', { id: node.id, target_role_id: role.id });
  ctx.wake = true;
}

/** `debug`: target `crowbar-managed-node`, alive, bootenv sledgehammer (the caller reboots it). */
export async function debugNode(ctx: Ctx, key: number | string): Promise<Node> {
  const role = await getRole(ctx.tx, 'crowbar-managed-node');
  if (!role) throw new ConflictError(`cannot debug a node: role 'crowbar-managed-node' is not imported`);
  return changeNode(ctx, key, { alive: true, bootenv: 'sledgehammer', target: role.id });
}

/** `undebug`: no target, not alive, bootenv local (the caller reboots it). */
export async function undebugNode(ctx: Ctx, key: number | string): Promise<Node> {
  return changeNode(ctx, key, { alive: false, bootenv: 'local', target: null });
}

/**
 * Deletes a node: refused for the last admin node and for a deployment's phantom node; its
 * node-roles go first (highest cohort first), each under the rules of spec §5.6, so one
 * refusal aborts the whole deletion.
 */
export async function deleteNode(ctx: Ctx, key: number | string): Promise<Node> {
  const node = await requireNode(ctx.tx, key);
  if (node.admin) {
    const admins = await ctx.tx.selectFrom('nodes').select('id').where('admin', '=', 1).execute();
    if (admins.length <= 1) throw new ConflictError(`node '${node.name}' is the last admin node; it cannot be deleted`);
  }
  if (node.system) {
    const dep = await getDeployment(ctx.tx, node.deployment_id);
    if (dep && phantomName(dep.name) === node.name) {
      throw new ConflictError(`node '${node.name}' is the phantom node of deployment '${dep.name}'; delete the deployment instead`);
    }
  }
  const nrs = await listNodeRoles(ctx.tx, { nodeId: node.id }, 'desc');
  for (const nr of nrs) {
    if (await ctx.tx.selectFrom('node_roles').select('id').where('id', '=', nr.id).executeTakeFirst()) await deleteNodeRole(ctx, nr.id);
  }
  await ctx.tx.deleteFrom('hammers').where('node_id', '=', node.id).execute();
  await ctx.tx.deleteFrom('node_groups').where('node_id', '=', node.id).execute();
  await ctx.tx.deleteFrom('nodes').where('id', '=', node.id).execute();
  ctx.emit('node.deleted', { id: node.id, name: node.name });
  return node;
}

// Node-roles ///////////////////////////////////////////////////////////////////////////////

/** Binds (find-or-create, spec §5.2) and, when given, sets the node-role's proposed data. */
export async function bindWithData(
  ctx: Ctx, role: number | string, node: number | string, deployment: number | string | undefined, data: JsonObject | undefined,
): Promise<NodeRole> {
  const nr = await bindRole(ctx, role, node, deployment);
  if (data !== undefined) await setNodeRoleData(ctx, nr.id, data);
  return requireNodeRole(ctx.tx, nr.id);
}

/** Writes a node-role's data; only while PROPOSED (spec §1.10). */
export async function setNodeRoleData(ctx: Ctx, id: number, data: JsonObject): Promise<NodeRole> {
  const nr = await requireNodeRole(ctx.tx, id);
  if (nr.state !== S.PROPOSED) {
    throw new ConflictError(`node-role ${id} is ${stateName(nr.state)}; its data can only change while it is proposed (propose it first)`, { field: 'data' });
  }
  await updateNodeRole(ctx.tx, id, { proposed_data: data });
  ctx.emit('node_role.updated', { id });
  return requireNodeRole(ctx.tx, id);
}

// Deployment-roles /////////////////////////////////////////////////////////////////////////

/** Creates the deployment-role of a role in a deployment; with data it starts proposed. */
export async function createDeploymentRole(
  ctx: Ctx, role: number | string, deployment: number | string, data: JsonObject | undefined,
): Promise<DeploymentRole> {
  const r = await requireRole(ctx.tx, role);
  const d = await requireDeployment(ctx.tx, deployment);
  const existing = await getDeploymentRole(ctx.tx, d.id, r.id);
  if (existing) throw new ConflictError(`deployment-role ${existing.id} for role '${r.name}' in deployment '${d.name}' already exists`, { field: 'role' });
  const dr = await ensureDeploymentRole(ctx.tx, d.id, r.id);
  if (data !== undefined) await updateDeploymentRole(ctx.tx, dr.id, { proposed_data: data });
  ctx.emit('deployment_role.created', { id: dr.id, deployment_id: d.id, role_id: r.id });
  return (await getDeploymentRoleById(ctx.tx, dr.id))!;
}

/** Setting data puts the deployment-role into proposed (spec §1.8). */
export async function setDeploymentRoleData(ctx: Ctx, id: number, data: JsonObject): Promise<DeploymentRole> {
  const dr = await getDeploymentRoleById(ctx.tx, id);
  if (!dr) throw new NotFoundError('deployment_role', id);
  await updateDeploymentRole(ctx.tx, id, { proposed_data: data });
  ctx.emit('deployment_role.updated', { id });
  return (await getDeploymentRoleById(ctx.tx, id))!;
}

/** Refused while node-roles of the role are bound in the deployment (spec §1.8). */
export async function deleteDeploymentRole(ctx: Ctx, id: number): Promise<DeploymentRole> {
  const dr = await getDeploymentRoleById(ctx.tx, id);
  if (!dr) throw new NotFoundError('deployment_role', id);
  const bound = await listNodeRoles(ctx.tx, { deploymentId: dr.deployment_id, roleId: dr.role_id });
  if (bound.length) {
    throw new ConflictError(`deployment-role ${id} still has ${bound.length} node-role(s) (${bound.slice(0, 5).map((n) => n.id).join(', ')}${bound.length > 5 ? ', …' : ''}); delete them first`);
  }
  await ctx.tx.deleteFrom('deployment_roles').where('id', '=', id).execute();
  ctx.emit('deployment_role.deleted', { id });
  return dr;
}

// Plan /////////////////////////////////////////////////////////////////////////////////////

export interface AttribChange {
  attrib: string;
  map: string;
  committed: Json | null;
  proposed: Json | null;
}

export interface PlanEntry {
  /** position in the order the annealer would take them (cohort, then id) */
  order: number;
  id: number;
  node_id: number;
  node: string;
  role_id: number;
  role: string;
  deployment_id: number;
  cohort: number;
  from: string;
  to: string;
  state: number;
  /** commit (PROPOSED → …), poke (an attrib it reads changed), cascade (a parent moved) */
  reason: 'commit' | 'poke' | 'cascade';
  /** for BLOCKED: parents that are not ACTIVE after the commit */
  waiting_on: Array<{ id: number; state: string }>;
  inputs?: JsonObject;
  provenance?: Record<string, unknown>;
}

export interface DeploymentPlan {
  deployment: { id: number; name: string; state: number };
  deployment_roles: Array<{ id: number; role_id: number; role: string; changed: AttribChange[] }>;
  node_roles: PlanEntry[];
  /** node-roles in flight now that would run again when their current run ends */
  reruns: number[];
  /** inputs were left out (asked for, or more node-roles than `inputLimit`) */
  inputs_omitted: boolean;
}

class Rollback extends Error {
  readonly plan: DeploymentPlan;
  constructor(plan: DeploymentPlan) {
    super('plan rollback');
    this.plan = plan;
  }
}

/**
 * What committing the deployment would do, computed by doing it in a transaction that is then
 * rolled back: the node-roles that would become TODO or BLOCKED (and why), in annealer order,
 * with the inputs each would be staged with, and the deployment-role attribs whose proposed
 * value differs from the committed one. Nothing is written and no event is published.
 */
export async function planDeployment(core: EngineCore, key: number | string, o: { inputs?: boolean; inputLimit?: number } = {}): Promise<DeploymentPlan> {
  try {
    await core.db.transaction().execute(async (trx) => {
      const ctx = new Ctx(trx, core.opts);
      const dep = await requireDeployment(trx, key);

      const drs: DeploymentPlan['deployment_roles'] = [];
      const pending = (await listDeploymentRoles(trx, dep.id)).filter((dr) => dr.proposed_data !== null);
      const drRoles = await rolesByIds(trx, pending.map((d) => d.role_id));
      for (const dr of pending) {
        const role = drRoles.get(dr.role_id)!;
        const before = deepMerge(deepMerge(role.template, dr.wall), dr.committed_data);
        const after = deepMerge(deepMerge(role.template, dr.wall), dr.proposed_data!);
        const changed: AttribChange[] = [];
        for (const a of await roleAttribs(trx, role.id)) {
          const c = getPath(before, a.map) ?? null;
          const p = getPath(after, a.map) ?? null;
          if (JSON.stringify(c) !== JSON.stringify(p)) changed.push({ attrib: a.name, map: a.map, committed: c, proposed: p });
        }
        drs.push({ id: dr.id, role_id: role.id, role: role.name, changed });
      }

      const flagged = new Set((await trx.selectFrom('node_roles').select('id').where('rerun', '=', 1).execute()).map((r) => r.id));
      await commitDeployment(ctx, dep.id);
      const reruns = (await trx.selectFrom('node_roles').select('id').where('rerun', '=', 1).execute()).map((r) => r.id).filter((id) => !flagged.has(id));

      // first `from` and last `to` of each node-role that changed
      const moves = new Map<number, { from: number; to: number }>();
      for (const ch of ctx.changes) {
        const m = moves.get(ch.id);
        moves.set(ch.id, { from: m ? m.from : ch.from, to: ch.to });
      }
      for (const [id, m] of moves) if (m.from === m.to) moves.delete(id);
      const nrs = await listNodeRoles(trx, { ids: [...moves.keys()] });
      const roles = await rolesByIds(trx, nrs.map((n) => n.role_id));
      const nodeNames = new Map<number, string>();
      const nodeIds = [...new Set(nrs.map((n) => n.node_id))];
      for (const c of chunks(nodeIds)) {
        if (c.length) for (const r of await trx.selectFrom('nodes').select(['id', 'name']).where('id', 'in', c).execute()) nodeNames.set(r.id, r.name);
      }
      const parents = await parentsOf(trx, nrs.map((n) => n.id));
      const limit = o.inputLimit ?? 500;
      const withInputs = o.inputs !== false && nrs.length <= limit;
      const entries: PlanEntry[] = [];
      for (const nr of nrs) {
        const m = moves.get(nr.id)!;
        const e: PlanEntry = {
          order: 0,
          id: nr.id,
          node_id: nr.node_id,
          node: nodeNames.get(nr.node_id) ?? String(nr.node_id),
          role_id: nr.role_id,
          role: roles.get(nr.role_id)?.name ?? String(nr.role_id),
          deployment_id: nr.deployment_id,
          cohort: nr.cohort,
          from: stateName(m.from),
          to: stateName(m.to),
          state: m.to,
          reason: m.from === S.PROPOSED ? 'commit' : m.from === S.ACTIVE ? 'poke' : 'cascade',
          waiting_on: m.to === S.BLOCKED ? (parents.get(nr.id) ?? []).filter((p) => p.state !== S.ACTIVE).map((p) => ({ id: p.id, state: stateName(p.state) })) : [],
        };
        if (withInputs) {
          const staged = await stageInputs(trx, nr.id);
          e.inputs = staged.inputs;
          e.provenance = staged.provenance;
        }
        entries.push(e);
      }
      entries.sort((a, b) => a.cohort - b.cohort || a.id - b.id);
      entries.forEach((e, i) => (e.order = i + 1));
      throw new Rollback({
        deployment: { id: dep.id, name: dep.name, state: dep.state },
        deployment_roles: drs,
        node_roles: entries,
        reruns,
        inputs_omitted: !withInputs,
      });
    });
  } catch (e) {
    if (e instanceof Rollback) return e.plan;
    throw e;
  }
  throw new Error('unreachable: the plan transaction always rolls back');
}

