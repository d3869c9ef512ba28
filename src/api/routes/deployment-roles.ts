/**
 * /api/v2/deployment_roles (spec §1.8, §11.2): list (`?deployment=`), show by id or — with
 * `?deployment=<name>` — by role, create, PUT `{data}` (the deployment-role becomes proposed),
 * PATCH refused (405, as the original refused it), delete (refused while node-roles use it),
 * propose/commit, and the nested roles and nodes. Without `?deployment=`, a non-numeric `:id`
 * is a role in the system deployment.
 */
import type { RoutePlugin } from '../app.js';
import { body, key, optObject, ref, send, sendDeleted, sendList, sendObj } from '../wire.js';
import { deploymentRoleJson, nodeJson, roleJson } from '../serializers.js';
import { matching, sampleOf } from './catalog.js';
import type { DeploymentRole } from '../../domain/entities.js';
import { InvalidError, NotFoundError } from '../../domain/errors.js';
import type { JsonObject } from '../../domain/json.js';
import type { Tx } from '../../store/db.js';
import {
  SYSTEM_DEPLOYMENT_ID, getDeploymentRole, getDeploymentRoleById, listDeploymentRoles, requireDeployment,
} from '../../store/deployments.js';
import { nodesByIds } from '../../store/nodes.js';
import { requireRole } from '../../store/roles.js';
import { listNodeRoles } from '../../store/node-roles.js';

type IdParams = { Params: { id: string }; Querystring: { deployment?: string } };

/** A deployment-role by id, or by role (id or name) in `deployment` (default: system when the key is a name). */
export async function findDeploymentRole(db: Tx, raw: string, deployment?: string): Promise<DeploymentRole> {
  const k = key(raw);
  if (deployment === undefined && typeof k === 'number') {
    const dr = await getDeploymentRoleById(db, k);
    if (!dr) throw new NotFoundError('deployment_role', k);
    return dr;
  }
  const dep = await requireDeployment(db, deployment === undefined ? SYSTEM_DEPLOYMENT_ID : key(deployment));
  const role = await requireRole(db, k);
  const dr = await getDeploymentRole(db, dep.id, role.id);
  if (!dr) throw new NotFoundError('deployment_role', `${role.name}@${dep.name}`, `role '${role.name}' has no deployment-role in deployment '${dep.name}'`);
  return dr;
}

function dataOf(b: Record<string, unknown>): JsonObject | undefined {
  return optObject(b, 'data') as JsonObject | undefined;
}

export const deploymentRoleRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'deployment_role';
  const one = (req: { params: { id: string }; query: { deployment?: string } }) => findDeploymentRole(engine.db, req.params.id, req.query.deployment);

  app.get<{ Querystring: { deployment?: string; deployment_id?: string; role?: string; role_id?: string } }>('/api/v2/deployment_roles', async (req, reply) => {
    const dk = req.query.deployment ?? req.query.deployment_id;
    const rk = req.query.role ?? req.query.role_id;
    let list = await listDeploymentRoles(engine.db, dk === undefined ? undefined : (await requireDeployment(engine.db, key(dk))).id);
    if (rk !== undefined) {
      const role = await requireRole(engine.db, key(rk));
      list = list.filter((d) => d.role_id === role.id);
    }
    return sendList(reply, T, list.map(deploymentRoleJson));
  });

  app.get('/api/v2/deployment_roles/sample', async (_req, reply) => sendObj(reply, T, sampleOf({ deployment_id: null, role_id: null })));
  app.post('/api/v2/deployment_roles/match', async (req, reply) =>
    sendList(reply, T, matching((await listDeploymentRoles(engine.db)).map(deploymentRoleJson), body(req))));

  app.get<IdParams>('/api/v2/deployment_roles/:id', async (req, reply) => sendObj(reply, T, deploymentRoleJson(await one(req))));

  /** `{role|role_id, deployment|deployment_id, data?}`; with data it starts proposed. */
  app.post('/api/v2/deployment_roles', async (req, reply) => {
    const b = body(req);
    const role = ref(b, 'role');
    if (role === undefined) throw new InvalidError(`'role' (or 'role_id') is required`, { field: 'role' });
    const deployment = ref(b, 'deployment');
    if (deployment === undefined) throw new InvalidError(`'deployment' (or 'deployment_id') is required`, { field: 'deployment' });
    return sendObj(reply, T, deploymentRoleJson(await engine.createDeploymentRole(role, deployment, dataOf(b))));
  });

  app.put<IdParams>('/api/v2/deployment_roles/:id', async (req, reply) => {
    const dr = await one(req);
    const data = dataOf(body(req));
    if (data === undefined) throw new InvalidError(`'data' is required`, { field: 'data' });
    return sendObj(reply, T, deploymentRoleJson(await engine.setDeploymentRoleData(dr.id, data)));
  });

  app.patch<IdParams>('/api/v2/deployment_roles/:id', async (req, reply) => {
    await one(req);
    return send(reply, 'error', 'error', { message: 'deployment-roles cannot be PATCHed; PUT {"data": …} instead', status: 405 }, 405);
  });

  app.delete<IdParams>('/api/v2/deployment_roles/:id', async (req, reply) => {
    const dr = await one(req);
    await engine.deleteDeploymentRole(dr.id);
    return sendDeleted(reply, T, `deployment_role ${dr.id}`);
  });

  app.put<IdParams>('/api/v2/deployment_roles/:id/propose', async (req, reply) => {
    const dr = await one(req);
    await engine.proposeDeploymentRole(dr.id);
    return sendObj(reply, T, deploymentRoleJson((await getDeploymentRoleById(engine.db, dr.id))!));
  });
  app.put<IdParams>('/api/v2/deployment_roles/:id/commit', async (req, reply) => {
    const dr = await one(req);
    await engine.commitDeploymentRole(dr.id);
    return sendObj(reply, T, deploymentRoleJson((await getDeploymentRoleById(engine.db, dr.id))!));
  });

  app.get<IdParams>('/api/v2/deployment_roles/:id/roles', async (req, reply) => {
    const dr = await one(req);
    return sendList(reply, 'role', [roleJson(await requireRole(engine.db, dr.role_id))]);
  });
  /** Nodes the role is bound to in the deployment. */
  app.get<IdParams>('/api/v2/deployment_roles/:id/nodes', async (req, reply) => {
    const dr = await one(req);
    const nrs = await listNodeRoles(engine.db, { deploymentId: dr.deployment_id, roleId: dr.role_id });
    const nodes = await nodesByIds(engine.db, [...new Set(nrs.map((n) => n.node_id))]);
    return sendList(reply, 'node', [...nodes.values()].sort((a, b) => a.id - b.id).map(nodeJson));
  });
};
