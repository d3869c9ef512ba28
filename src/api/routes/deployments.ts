/**
 * /api/v2/deployments: CRUD, propose/commit/recall, and the nested lists (spec §11.2).
 * The pattern every resource plugin follows: parse with wire.ts, act through the engine, answer
 * with serializers.ts.
 */
import type { RoutePlugin } from '../app.js';
import { body, key, optString, ref, reqString, send, sendDeleted, sendList, sendObj } from '../wire.js';
import { deploymentJson } from '../serializers.js';
import { computedState } from '../../engine/deployments.js';
import { listDeployments, requireDeployment } from '../../store/deployments.js';
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
};
