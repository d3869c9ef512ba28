/**
 * Node lifecycle (spec §1.9): create (hammer binding, bootstrap roles on admin nodes), commit
 * (discovery roles, available, commit node-roles), propose, redeploy, alive/available changes.
 * A node going not-alive pauses its work (DESIGN.md) unless `resetOnNodeDeath` is set.
 */
import type { Node } from '../domain/entities.js';
import { InvalidError, ConflictError } from '../domain/errors.js';
import { NAME_RE } from '../domain/entities.js';
import { NodeRoleState as S } from '../domain/states.js';
import type { JsonObject } from '../domain/json.js';
import { getNode, insertNode, requireNode, updateNode, bindHammer, type NodePatch } from '../store/nodes.js';
import { listNodeRoles } from '../store/node-roles.js';
import { SYSTEM_DEPLOYMENT_ID, requireDeployment } from '../store/deployments.js';
import { getAvailableHammer } from '../store/hammers.js';
import { listRoles } from '../store/roles.js';
import type { Ctx } from './context.js';
import { bindRole, effectiveJig } from './binding.js';
import { blockOrTodo, propose as proposeStates } from './states.js';
import { commitNodeRoles } from './commit.js';

export interface CreateNode {
  name: string;
  description?: string;
  admin?: boolean;
  system?: boolean;
  deployment?: number | string;
  alive?: boolean;
  available?: boolean;
  allocated?: boolean;
  bootenv?: string;
  discovery?: JsonObject;
  hint?: JsonObject;
  quirks?: string[];
  /** hammers to bind in addition to ssh: `local` for the admin host, `sim` for simulated nodes */
  hammers?: string[];
}

export function validateNodeName(name: string): string {
  const n = name.toLowerCase();
  if (n.length > 255 || !NAME_RE.node.test(n)) {
    throw new InvalidError(`node name '${name}' is not a fully qualified domain name with at least three labels (e.g. node1.example.com)`, { field: 'name' });
  }
  return n;
}

export async function createNode(ctx: Ctx, c: CreateNode): Promise<Node> {
  const name = validateNodeName(c.name);
  if (await getNode(ctx.tx, name)) throw new ConflictError(`node '${name}' already exists`, { field: 'name' });
  const dep = await requireDeployment(ctx.tx, c.deployment ?? SYSTEM_DEPLOYMENT_ID);
  const node = await insertNode(ctx.tx, { ...c, name, deployment_id: dep.id });
  if (!node.system) {
    for (const h of ['ssh', ...(c.hammers ?? [])]) {
      const avail = await getAvailableHammer(ctx.tx, h);
      if (!avail) {
        if (h === 'ssh') continue;
        throw new InvalidError(`hammer '${h}' is not registered by any barclamp`, { field: 'hammers' });
      }
      // extra hammers outrank ssh so the local/sim hammer does the work when bound
      const priority = h === 'ssh' ? avail.priority : avail.priority + 10;
      await bindHammer(ctx.tx, { node_id: node.id, available_hammer_id: avail.id, priority, type: avail.klass, name: avail.name, username: 'root' });
    }
  }
  ctx.emit('node.created', { id: node.id, name: node.name });
  if (node.admin) {
    for (const role of await ctx.memo('roles:all', () => listRoles(ctx.tx))) {
      if (role.bootstrap && (await effectiveJig(ctx, role))) await bindRole(ctx, role.id, node.id);
    }
  }
  return (await getNode(ctx.tx, node.id))!;
}

/** `commit!`: bind discovery roles (ordinary nodes), mark available, commit PROPOSED node-roles. */
export async function commitNode(ctx: Ctx, key: number | string): Promise<Node> {
  const node = await requireNode(ctx.tx, key);
  if (!node.system && !node.admin) {
    for (const role of await ctx.memo('roles:all', () => listRoles(ctx.tx))) {
      if (role.discovery && (await effectiveJig(ctx, role))) await bindRole(ctx, role.id, node.id);
    }
  }
  if (!node.available) await updateNode(ctx.tx, node.id, { available: true });
  const proposed = await listNodeRoles(ctx.tx, { nodeId: node.id, states: [S.PROPOSED] });
  await commitNodeRoles(ctx, proposed.map((n) => n.id));
  ctx.emit('node.committed', { id: node.id });
  ctx.wake = true;
  return (await getNode(ctx.tx, node.id))!;
}

export async function proposeNode(ctx: Ctx, key: number | string): Promise<Node> {
  const node = await requireNode(ctx.tx, key);
  const nrs = await listNodeRoles(ctx.tx, { nodeId: node.id });
  if (nrs.some((n) => n.state === S.TRANSITION)) throw new ConflictError(`node '${node.name}' has a run in flight; wait for it before proposing`);
  await proposeStates(ctx, nrs.map((n) => n.id));
  return (await getNode(ctx.tx, node.id))!;
}

/** `redeploy!`: every node-role back to PROPOSED with run_count 0, bootenv sledgehammer, then commit. */
export async function redeployNode(ctx: Ctx, key: number | string): Promise<Node> {
  const node = await proposeNode(ctx, key);
  await ctx.tx.updateTable('node_roles').set({ run_count: 0 }).where('node_id', '=', node.id).execute();
  await updateNode(ctx.tx, node.id, { bootenv: 'sledgehammer' });
  return commitNode(ctx, node.id);
}

/**
 * Updates a node. alive/available turning on wakes the annealer; alive turning off pauses the
 * node (or, with `resetOnNodeDeath`, resets its node-roles like the original).
 */
export async function updateNodeFields(ctx: Ctx, key: number | string, patch: NodePatch): Promise<Node> {
  const node = await requireNode(ctx.tx, key);
  if (patch.name !== undefined) patch.name = validateNodeName(patch.name);
  if (patch.deployment_id !== undefined) await requireDeployment(ctx.tx, patch.deployment_id);
  await updateNode(ctx.tx, node.id, patch);
  const after = (await getNode(ctx.tx, node.id))!;
  if (after.alive !== node.alive || after.available !== node.available) {
    ctx.emit('node.updated', { id: node.id, alive: after.alive, available: after.available });
    if (after.alive && after.available) ctx.wake = true;
    if (node.alive && !after.alive && ctx.opts.resetOnNodeDeath) {
      const nrs = await listNodeRoles(ctx.tx, { nodeId: node.id, states: [S.ACTIVE, S.TODO, S.BLOCKED, S.ERROR] });
      await blockOrTodo(ctx, nrs.map((n) => n.id));
    }
  }
  return after;
}
