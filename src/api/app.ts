/**
 * The HTTP application factory. This first cut serves the annealer's status endpoints; the
 * /api/v2 resources register here as Fastify plugins, one per resource.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import { NodeRoleState as S } from '../domain/states.js';

const started = Date.now();

export async function buildApp(engine: Engine, log: Logger): Promise<FastifyInstance> {
  // pino's Logger is wider than Fastify's base logger type; the instance itself is compatible
  const app = Fastify({ loggerInstance: log.child({ module: 'http' }) }) as unknown as FastifyInstance;
  const send = (reply: any, type: string, form: string, status: number, body: unknown) =>
    reply.code(status).type(`application/vnd.crowbar.${type}.${form}+json; version=2.0`).send(JSON.stringify(body));

  /** annealer status (spec §3.7): 409 failed / 202 working|scheduled / 200 finished */
  app.get('/api/v2/anneal', async (_req, reply) => {
    const rows = await engine.db
      .selectFrom('node_roles as nr')
      .innerJoin('deployments as d', 'd.id', 'nr.deployment_id')
      .select(['nr.state', (eb) => eb.fn.countAll<number>().as('n')])
      .where('d.state', '=', 1)
      .groupBy('nr.state')
      .execute();
    const has = (s: number) => rows.some((r) => r.state === s && Number(r.n) > 0);
    if (has(S.ERROR)) return send(reply, 'node_role', 'error', 409, { message: 'failed', status: 409 });
    if (has(S.TRANSITION)) return send(reply, 'node_role', 'result', 202, { message: 'working' });
    if (has(S.TODO)) return send(reply, 'node_role', 'result', 202, { message: 'scheduled' });
    return send(reply, 'node_role', 'result', 200, { message: 'finished' });
  });

  app.get('/api/status/heartbeat', async (_req, reply) => {
    const rows = await engine.db.selectFrom('node_roles').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('state').execute();
    const count = (s: number) => Number(rows.find((r) => r.state === s)?.n ?? 0);
    const total = rows.reduce((a, r) => a + Number(r.n), 0);
    return send(reply, 'heartbeat', 'obj', 200, {
      active: count(S.ACTIVE),
      todo: total - count(S.ERROR) - count(S.ACTIVE),
      error: count(S.ERROR),
      elapsed: Math.round((Date.now() - started) / 1000),
    });
  });
  return app;
}
