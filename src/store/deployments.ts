/**
 * Deployments and deployment-roles: lookup by id or name, create, state, and the data buckets
 * of a deployment-role (committed, proposed, wall).
 */
import type { Deployment, DeploymentRole } from '../domain/entities.js';
import { NotFoundError } from '../domain/errors.js';
import type { JsonObject } from '../domain/json.js';
import { now, toJson, type Tx } from './db.js';
import { keyAsId, toDeployment, toDeploymentRole, bool } from './rows.js';

export const SYSTEM_DEPLOYMENT_ID = 1;

export async function getDeployment(tx: Tx, key: number | string): Promise<Deployment | undefined> {
  const q = tx.selectFrom('deployments').selectAll();
  const id = keyAsId(key);
  const row = await (id !== null ? q.where('id', '=', id) : q.where('name', '=', String(key))).executeTakeFirst();
  return row && toDeployment(row);
}

export async function requireDeployment(tx: Tx, key: number | string): Promise<Deployment> {
  const d = await getDeployment(tx, key);
  if (!d) throw new NotFoundError('deployment', key);
  return d;
}

export async function listDeployments(tx: Tx): Promise<Deployment[]> {
  return (await tx.selectFrom('deployments').selectAll().orderBy('id').execute()).map(toDeployment);
}

export async function insertDeployment(
  tx: Tx,
  d: { name: string; description?: string; system?: boolean; parent_id: number | null; state: number },
): Promise<Deployment> {
  const t = now();
  const row = await tx
    .insertInto('deployments')
    .values({
      name: d.name,
      description: d.description ?? '',
      system: bool(d.system),
      parent_id: d.parent_id,
      state: d.state,
      created_at: t,
      updated_at: t,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toDeployment(row);
}

export async function setDeploymentState(tx: Tx, id: number, state: number): Promise<void> {
  await tx.updateTable('deployments').set({ state, updated_at: now() }).where('id', '=', id).execute();
}

/** The deployment and its ancestors, nearest first. */
export async function deploymentChain(tx: Tx, id: number): Promise<Deployment[]> {
  const out: Deployment[] = [];
  let cur: number | null = id;
  while (cur !== null && out.length < 64) {
    const d = await getDeployment(tx, cur);
    if (!d) break;
    out.push(d);
    cur = d.parent_id;
  }
  return out;
}

export async function getDeploymentRole(tx: Tx, deploymentId: number, roleId: number): Promise<DeploymentRole | undefined> {
  const row = await tx
    .selectFrom('deployment_roles')
    .selectAll()
    .where('deployment_id', '=', deploymentId)
    .where('role_id', '=', roleId)
    .executeTakeFirst();
  return row && toDeploymentRole(row);
}

export async function getDeploymentRoleById(tx: Tx, id: number): Promise<DeploymentRole | undefined> {
  const row = await tx.selectFrom('deployment_roles').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toDeploymentRole(row);
}

export async function ensureDeploymentRole(tx: Tx, deploymentId: number, roleId: number): Promise<DeploymentRole> {
  const existing = await getDeploymentRole(tx, deploymentId, roleId);
  if (existing) return existing;
  const t = now();
  const row = await tx
    .insertInto('deployment_roles')
    .values({ deployment_id: deploymentId, role_id: roleId, created_at: t, updated_at: t })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toDeploymentRole(row);
}

export async function listDeploymentRoles(tx: Tx, deploymentId?: number): Promise<DeploymentRole[]> {
  let q = tx.selectFrom('deployment_roles').selectAll().orderBy('id');
  if (deploymentId !== undefined) q = q.where('deployment_id', '=', deploymentId);
  return (await q.execute()).map(toDeploymentRole);
}

export async function updateDeploymentRole(
  tx: Tx,
  id: number,
  patch: { committed_data?: JsonObject; proposed_data?: JsonObject | null; wall?: JsonObject; notes?: JsonObject },
): Promise<void> {
  const set: Record<string, unknown> = { updated_at: now() };
  if (patch.committed_data !== undefined) set.committed_data = toJson(patch.committed_data);
  if (patch.proposed_data !== undefined) set.proposed_data = patch.proposed_data === null ? null : toJson(patch.proposed_data);
  if (patch.wall !== undefined) set.wall = toJson(patch.wall);
  if (patch.notes !== undefined) set.notes = toJson(patch.notes);
  await tx.updateTable('deployment_roles').set(set).where('id', '=', id).execute();
}
