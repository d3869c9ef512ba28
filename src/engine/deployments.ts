/**
 * Deployment lifecycle (spec §1.7): create with its phantom node, commit (deployment-roles then
 * node-roles), propose/recall (pauses annealing without touching node-roles), destroy, and
 * the computed state the API reports.
 */
import type { Deployment } from '../domain/entities.js';
import { ConflictError, InvalidError } from '../domain/errors.js';
import { DeploymentState, NodeRoleState as S } from '../domain/states.js';
import {
  SYSTEM_DEPLOYMENT_ID, getDeployment, insertDeployment, listDeploymentRoles, requireDeployment, setDeploymentState,
} from '../store/deployments.js';
import { listNodeRoles } from '../store/node-roles.js';
import { getNode } from '../store/nodes.js';
import type { Ctx } from './context.js';
import { commitDeploymentRole, commitNodeRoles } from './commit.js';
import { createNode } from './nodes.js';
import { deleteNodeRole } from './binding.js';
import type { Tx } from '../store/db.js';

export function phantomName(deployment: string): string {
  return `${deployment}-phantom.internal.local`;
}

export async function createDeployment(
  ctx: Ctx,
  c: { name: string; description?: string; parent?: number | string | null; system?: boolean },
): Promise<Deployment> {
  if (!/^[a-zA-Z0-9][-_a-zA-Z0-9.]*$/.test(c.name)) {
    throw new InvalidError(`deployment name '${c.name}' must start with a letter or digit and use only letters, digits, '-', '_' and '.'`, { field: 'name' });
  }
  if (await getDeployment(ctx.tx, c.name)) throw new ConflictError(`deployment '${c.name}' already exists`, { field: 'name' });
  const parent = c.system ? null : (await requireDeployment(ctx.tx, c.parent ?? SYSTEM_DEPLOYMENT_ID)).id;
  const dep = await insertDeployment(ctx.tx, {
    name: c.name,
    description: c.description,
    system: c.system,
    parent_id: parent,
    state: c.system ? DeploymentState.COMMITTED : DeploymentState.PROPOSED,
  });
  await createNode(ctx, {
    name: phantomName(dep.name),
    description: `phantom node of deployment ${dep.name}`,
    system: true,
    alive: true,
    available: true,
    bootenv: 'local',
    deployment: dep.id,
  });
  ctx.emit('deployment.created', { id: dep.id, name: dep.name });
  return dep;
}

/** Commits every proposed deployment-role, then every PROPOSED node-role; the deployment becomes COMMITTED. */
export async function commitDeployment(ctx: Ctx, key: number | string): Promise<Deployment> {
  const dep = await requireDeployment(ctx.tx, key);
  for (const dr of await listDeploymentRoles(ctx.tx, dep.id)) if (dr.proposed_data !== null) await commitDeploymentRole(ctx, dr.id);
  const proposed = await listNodeRoles(ctx.tx, { deploymentId: dep.id, states: [S.PROPOSED] });
  await setDeploymentState(ctx.tx, dep.id, DeploymentState.COMMITTED);
  await commitNodeRoles(ctx, proposed.map((n) => n.id));
  ctx.emit('deployment.committed', { id: dep.id });
  ctx.wake = true;
  return (await getDeployment(ctx.tx, dep.id))!;
}

/** Propose (and recall): the annealer stops picking its node-roles; their states are untouched. */
export async function proposeDeployment(ctx: Ctx, key: number | string): Promise<Deployment> {
  const dep = await requireDeployment(ctx.tx, key);
  if (dep.system) throw new ConflictError(`the system deployment cannot be proposed`);
  await setDeploymentState(ctx.tx, dep.id, DeploymentState.PROPOSED);
  ctx.emit('deployment.proposed', { id: dep.id });
  return (await getDeployment(ctx.tx, dep.id))!;
}

export async function destroyDeployment(ctx: Ctx, key: number | string): Promise<void> {
  const dep = await requireDeployment(ctx.tx, key);
  if (dep.system) throw new ConflictError(`the system deployment cannot be deleted`);
  const kids = await ctx.tx.selectFrom('deployments').select('name').where('parent_id', '=', dep.id).execute();
  if (kids.length) throw new ConflictError(`deployment '${dep.name}' has child deployments (${kids.map((k) => k.name).join(', ')}); delete them first`);
  const nrs = await listNodeRoles(ctx.tx, { deploymentId: dep.id }, 'desc');
  for (const nr of nrs) if (await ctx.tx.selectFrom('node_roles').select('id').where('id', '=', nr.id).executeTakeFirst()) await deleteNodeRole(ctx, nr.id);
  await ctx.tx.deleteFrom('deployment_roles').where('deployment_id', '=', dep.id).execute();
  const phantom = await getNode(ctx.tx, phantomName(dep.name));
  if (phantom) {
    await ctx.tx.deleteFrom('hammers').where('node_id', '=', phantom.id).execute();
    await ctx.tx.deleteFrom('nodes').where('id', '=', phantom.id).execute();
  }
  await ctx.tx.updateTable('nodes').set({ deployment_id: dep.parent_id ?? SYSTEM_DEPLOYMENT_ID }).where('deployment_id', '=', dep.id).execute();
  await ctx.tx.deleteFrom('deployments').where('id', '=', dep.id).execute();
  ctx.emit('deployment.deleted', { id: dep.id });
}

/** The state the API reports: PROPOSED, else ACTIVE when all node-roles are, else ERROR if any is, else COMMITTED. */
export async function computedState(tx: Tx, dep: Deployment): Promise<number> {
  if (dep.state === DeploymentState.PROPOSED) return DeploymentState.PROPOSED;
  const rows = await tx
    .selectFrom('node_roles')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('deployment_id', '=', dep.id)
    .groupBy('state')
    .execute();
  const count = (s: number) => Number(rows.find((r) => r.state === s)?.n ?? 0);
  const total = rows.reduce((a, r) => a + Number(r.n), 0);
  if (count(S.ACTIVE) === total) return DeploymentState.ACTIVE;
  if (count(S.ERROR) > 0) return DeploymentState.ERROR;
  return DeploymentState.COMMITTED;
}
