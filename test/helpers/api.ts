/**
 * An HTTP app over a test Crowbar, driven with Fastify's inject (no socket). `call` returns the
 * status, the content type and the parsed JSON body.
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/api/app.js';
import { startTestCrowbar, type TestCrowbar } from './crowbar.js';
import type { TestDialect } from './stores.js';

export interface TestApi {
  cb: TestCrowbar;
  app: FastifyInstance;
  call(method: string, url: string, payload?: unknown, headers?: Record<string, string>): Promise<{ status: number; type: string; body: any; raw: string }>;
  cleanup(): Promise<void>;
}

export async function startTestApi(dialect: TestDialect, o: Parameters<typeof startTestCrowbar>[1] = {}): Promise<TestApi> {
  const cb = await startTestCrowbar(dialect, o);
  const app = await buildApp({ engine: cb.engine, log: pino({ level: 'silent' }), hammers: cb.hammers });
  return {
    cb,
    app,
    async call(method, url, payload, headers = {}) {
      const res = await app.inject({
        method: method as 'GET',
        url,
        headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        payload: payload === undefined ? undefined : JSON.stringify(payload),
      });
      let parsed: unknown = undefined;
      try {
        parsed = res.body ? JSON.parse(res.body) : undefined;
      } catch {
        parsed = res.body;
      }
      return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), body: parsed, raw: res.body };
    },
    async cleanup() {
      await app.close();
      await cb.cleanup();
    },
  };
}
