/**
 * Annealer and fleet status: `GET /api/v2/anneal` (spec §3.7) and `/api/status/heartbeat`.
 */
import type { RoutePlugin } from '../app.js';
import { NodeRoleState as S } from '../../domain/states.js';
import { send } from '../wire.js';

const started = Date.now();

export const statusRoutes: RoutePlugin = (app, { engine }) => {
  /** 409 failed / 202 working|scheduled / 200 finished, over node-roles of committed deployments */
  app.get('/api/v2/anneal', async (_req, reply) => {
    const rows = await engine.db
      .selectFrom('node_roles as nr')
      .innerJoin('deployments as d', 'd.id', 'nr.deployment_id')
      .select(['nr.state', (eb) => eb.fn.countAll<number>().as('n')])
      .where('d.state', '=', 1)
      .groupBy('nr.state')
      .execute();
    const has = (s: number) => rows.some((r) => r.state === s && Number(r.n) > 0);
    if (has(S.ERROR)) return send(reply, 'node_role', 'error', { message: 'failed', status: 409 }, 409);
    if (has(S.TRANSITION)) return send(reply, 'node_role', 'result', { message: 'working' }, 202);
    if (has(S.TODO)) return send(reply, 'node_role', 'result', { message: 'scheduled' }, 202);
    return send(reply, 'node_role', 'result', { message: 'finished' });
  });

  app.get('/api/status/heartbeat', async (_req, reply) => {
    const rows = await engine.db.selectFrom('node_roles').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('state').execute();
    const count = (s: number) => Number(rows.find((r) => r.state === s)?.n ?? 0);
    const total = rows.reduce((a, r) => a + Number(r.n), 0);
    return send(reply, 'heartbeat', 'obj', {
      active: count(S.ACTIVE),
      todo: total - count(S.ERROR) - count(S.ACTIVE),
      error: count(S.ERROR),
      elapsed: Math.round((Date.now() - started) / 1000),
    });
  });
};
