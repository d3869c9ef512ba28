/**
 * /api/v2/deployments: CRUD, propose/commit/recall, and the nested lists (spec §11.2).
 * The pattern every resource plugin follows: parse with wire.ts, act through the engine, answer
 * with serializers.ts.
 */
import type { RoutePlugin } from '../app.js';
import { body, key, optString, ref, reqString, send, sendDeleted, sendList, sendObj } from '../wire.js';
import { deploymentJson, deploymentRoleJson, nodeJson, roleJson } from '../serializers.js';
import { computedState } from '../../engine/deployments.js';
import { listDeploymentRoles, listDeployments, requireDeployment } from '../../store/deployments.js';
import { childrenOf, listNodeRoles } from '../../store/node-roles.js';
import { listNodes, nodesByIds } from '../../store/nodes.js';
import { rolesByIds } from '../../store/roles.js';
import { InvalidError } from '../../domain/errors.js';
import { nodeRolesOut } from './node-roles.js';
import type { Deployment } from '../../domain/entities.js';
import type { Engine } from '../../engine/engine.js';

export async function deploymentOut(engine: Engine, d: Deployment) {
  return deploymentJson(d, await computedState(engine.db, d));
}

export const deploymentRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'deployment';
  const one = async (k: string) => requireDeployment(engine.db, key(k));

  app.get('/api/v2/deployments', async (_req, reply) => {
    const all = await listDeployments(engine.db);
    return sendList(reply, T, await Promise.all(all.map((d) => deploymentOut(engine, d))));
  });

  app.get<{ Params: { id: string } }>('/api/v2/deployments/:id', async (req, reply) => sendObj(reply, T, await deploymentOut(engine, await one(req.params.id))));

  app.post('/api/v2/deployments', async (req, reply) => {
    const b = body(req);
    const d = await engine.createDeployment({ name: reqString(b, 'name'), description: optString(b, 'description'), parent: ref(b, 'parent') });
    return sendObj(reply, T, await deploymentOut(engine, d));
  });

  for (const method of ['put', 'patch'] as const) {
    app[method]<{ Params: { id: string } }>('/api/v2/deployments/:id', async (req, reply) => {
      const d = await one(req.params.id);
      const b = body(req);
      const patch: Record<string, unknown> = {};
      const name = optString(b, 'name');
      const description = optString(b, 'description');
      if (name !== undefined) patch.name = name;
      if (description !== undefined) patch.description = description;
      if (Object.keys(patch).length) {
        await engine.tx(async (ctx) => {
          await ctx.tx.updateTable('deployments').set({ ...patch, updated_at: new Date().toISOString() }).where('id', '=', d.id).execute();
        });
      }
      return sendObj(reply, T, await deploymentOut(engine, await one(String(d.id))));
    });
  }

  app.delete<{ Params: { id: string } }>('/api/v2/deployments/:id', async (req, reply) => {
    const d = await one(req.params.id);
    await engine.destroyDeployment(d.id);
    return sendDeleted(reply, T, `deployment ${d.name}`);
  });

  app.put<{ Params: { id: string } }>('/api/v2/deployments/:id/commit', async (req, reply) =>
    sendObj(reply, T, await deploymentOut(engine, await engine.commitDeployment(key(req.params.id)))));
  for (const action of ['propose', 'recall']) {
    app.put<{ Params: { id: string } }>(`/api/v2/deployments/:id/${action}`, async (req, reply) =>
      sendObj(reply, T, await deploymentOut(engine, await engine.proposeDeployment(key(req.params.id)))));
  }

  app.get('/api/v2/deployments/sample', async (_req, reply) => send(reply, T, 'obj', { name: '', description: '', system: false, parent_id: null, state: 0 }));

  // nested lists (spec §11.2)
  app.get<{ Params: { id: string } }>('/api/v2/deployments/:id/node_roles', async (req, reply) => {
    const d = await one(req.params.id);
    return sendList(reply, 'node_role', await nodeRolesOut(engine.db, await listNodeRoles(engine.db, { deploymentId: d.id })));
  });
  app.get<{ Params: { id: string } }>('/api/v2/deployments/:id/deployment_roles', async (req, reply) => {
    const d = await one(req.params.id);
    return sendList(reply, 'deployment_role', (await listDeploymentRoles(engine.db, d.id)).map(deploymentRoleJson));
  });
  /** Roles with a deployment-role in the deployment. */
  app.get<{ Params: { id: string } }>('/api/v2/deployments/:id/roles', async (req, reply) => {
    const d = await one(req.params.id);
    const roles = await rolesByIds(engine.db, (await listDeploymentRoles(engine.db, d.id)).map((dr) => dr.role_id));
    return sendList(reply, 'role', [...roles.values()].sort((a, b) => a.cohort - b.cohort || a.name.localeCompare(b.name)).map(roleJson));
  });
  /** Nodes that belong to the deployment (their NRs may live in other deployments too). */
  app.get<{ Params: { id: string } }>('/api/v2/deployments/:id/nodes', async (req, reply) => {
    const d = await one(req.params.id);
    return sendList(reply, 'node', (await listNodes(engine.db, { deploymentId: d.id })).map(nodeJson));
  });

  /** The node-role graph: `[{id, name: "<node>: <role>", adjacencies: [{nodeTo: child, nodeFrom: it}]}]`. */
  app.get<{ Params: { id: string } }>('/api/v2/deployments/:id/graph', async (req, reply) => {
    const d = await one(req.params.id);
    const nrs = await listNodeRoles(engine.db, { deploymentId: d.id });
    const nodes = await nodesByIds(engine.db, [...new Set(nrs.map((n) => n.node_id))]);
    const roles = await rolesByIds(engine.db, nrs.map((n) => n.role_id));
    const kids = await childrenOf(engine.db, nrs.map((n) => n.id));
    return send(reply, T, 'array', nrs.map((nr) => ({
      id: nr.id,
      name: `${nodes.get(nr.node_id)?.name ?? nr.node_id}: ${roles.get(nr.role_id)?.name ?? nr.role_id}`,
      adjacencies: (kids.get(nr.id) ?? []).sort((a, b) => a.id - b.id).map((c) => ({ nodeTo: c.id, nodeFrom: nr.id })),
    })));
  });

  /**
   * What `PUT …/commit` would do, without doing it: the node-roles that would become TODO or
   * BLOCKED (and why) in annealer order with their staged inputs, and the deployment-role
   * attribs whose proposed value differs from the committed one. `?inputs=false` leaves the
   * inputs out (they are also left out past 500 node-roles).
   */
  app.get<{ Params: { id: string }; Querystring: { inputs?: string } }>('/api/v2/deployments/:id/plan', async (req, reply) => {
    const d = await one(req.params.id);
    const raw = req.query.inputs;
    if (raw !== undefined && !['true', 'false', '1', '0'].includes(raw)) throw new InvalidError(`'inputs' must be true or false`, { field: 'inputs' });
    const plan = await engine.planDeployment(d.id, { inputs: raw === undefined || raw === 'true' || raw === '1' });
    return send(reply, 'deployment_plan', 'obj', plan);
  });
};
