/**
 * Authentication for every route but the login form (being written; see issue 3).
 */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from './app.js';

export async function registerAuth(_app: FastifyInstance, _deps: ApiDeps): Promise<void> {}
