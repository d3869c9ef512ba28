/**
 * The HTTP application factory: Fastify with the /api/v2 wire rules (wire.ts), one plugin per
 * resource under routes/, and a single error handler that maps engine errors to the original's
 * status codes and error shapes. Knows nothing of storage beyond the engine facade.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import type { HammerRegistry } from '../hammers/index.js';
import { coerceError } from '../domain/errors.js';
import { errorBody, send, statusFor } from './wire.js';
import { registerAuth } from './auth.js';
import { collectRoutes } from './openapi.js';
import { statusRoutes } from './routes/status.js';
import { deploymentRoutes } from './routes/deployments.js';
import { catalogRoutes } from './routes/catalog.js';
import { attribsRoutes } from './routes/attribs.js';
import { nodesRoutes } from './routes/nodes.js';
import { nodeRolesRoutes } from './routes/node-roles.js';
import { runsRoutes } from './routes/runs.js';
import { eventsRoutes } from './routes/events.js';
import { usersRoutes } from './routes/users.js';
import { groupsRoutes } from './routes/groups.js';
import { deploymentRoleRoutes } from './routes/deployment-roles.js';
import { simRoutes } from './routes/sim.js';
import { docsRoutes } from './routes/docs.js';

export interface ApiDeps {
  engine: Engine;
  log: Logger;
  /** hammers this server can drive (hammer `actions` and `perform`); without it hammers offer no actions */
  hammers?: HammerRegistry;
}

export type RoutePlugin = (app: FastifyInstance, deps: ApiDeps) => void | Promise<void>;

/** Every resource plugin, in registration order. */
export const routePlugins: RoutePlugin[] = [
  statusRoutes,
  deploymentRoutes,
  catalogRoutes,
  attribsRoutes,
  nodesRoutes,
  nodeRolesRoutes,
  deploymentRoleRoutes,
  runsRoutes,
  eventsRoutes,
  usersRoutes,
  groupsRoutes,
  simRoutes,
  docsRoutes,
];

export async function buildApp(deps: ApiDeps, plugins: RoutePlugin[] = routePlugins): Promise<FastifyInstance> {
  // pino's Logger is wider than Fastify's base logger type; the instance itself is compatible
  const app = Fastify({ loggerInstance: deps.log.child({ module: 'http' }), logController: new LogController({ disableRequestLogging: true }) }) as unknown as FastifyInstance;

  // bodies: JSON (compact or not), tolerant of an empty body on PUT/POST
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    const s = String(text).trim();
    if (s === '') return done(null, {});
    try {
      done(null, JSON.parse(s));
    } catch (e) {
      const err = new Error(`the request body is not valid JSON: ${(e as Error).message}`) as Error & { statusCode: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });

  app.setErrorHandler((e, req, reply) => {
    const status = statusFor(e);
    if (status >= 500) req.log.error({ err: coerceError(e) }, 'request failed');
    return send(reply, 'error', 'error', errorBody(e, status), status);
  });
  app.setNotFoundHandler((req, reply) => send(reply, 'error', 'error', { status: 404, message: `no route for ${req.method} ${req.url}` }, 404));

  collectRoutes(app); // every route from here on, for the OpenAPI document (openapi.ts)
  await registerAuth(app, deps);
  for (const plugin of plugins) await plugin(app, deps);
  return app;
}
