/**
 * An HTTP app over a test Crowbar, driven with Fastify's inject (no socket). `call` returns the
 * status, the content type and the parsed JSON body.
 *
 * Every route needs authentication, so `call` signs in by default with HTTP Basic as
 * `crowbar`/`crowbar` (an admin; the test Crowbar seeds it). To send other credentials pass
 * your own `authorization` (or `cookie`) header; to send none pass `{ auth: false }`, or
 * `{ auth: { username, password } }` for Basic as someone else, as the 4th argument:
 *
 *   api.call('GET', '/api/v2/nodes')                                  // as crowbar
 *   api.call('GET', '/api/v2/nodes', undefined, { 'x-return-attributes': '["id"]' })
 *   api.call('GET', '/api/v2/nodes', undefined, { auth: false })      // → 401
 *
 * For raw `app.inject` calls use `api.inject(opts)` (adds the same credentials) or spread
 * `api.authHeaders` into your headers.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/api/app.js';
import { startTestCrowbar, type TestCrowbar } from './crowbar.js';
import type { TestDialect } from './stores.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface CallOptions {
  /** false: no credentials; an object: Basic as that user (default: crowbar/crowbar) */
  auth?: false | Credentials;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  type: string;
  body: any;
  raw: string;
  headers: Record<string, unknown>;
}

export interface TestApi {
  cb: TestCrowbar;
  app: FastifyInstance;
  call(method: string, url: string, payload?: unknown, headersOrOptions?: Record<string, string> | CallOptions): Promise<CallResult>;
  /** `app.inject` with the default credentials added (unless the request carries its own) */
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
  /** `{ authorization: 'Basic …' }` for crowbar/crowbar */
  authHeaders: Record<string, string>;
  cleanup(): Promise<void>;
}

export const TEST_ADMIN: Credentials = { username: 'crowbar', password: 'crowbar' };

export function basicAuth(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

const hasCredentials = (h: Record<string, unknown>) => Object.keys(h).some((k) => ['authorization', 'cookie'].includes(k.toLowerCase()));

export async function startTestApi(dialect: TestDialect, o: Parameters<typeof startTestCrowbar>[1] = {}): Promise<TestApi> {
  // a non-dev test Crowbar would get a generated password: pin crowbar's to the dev one
  const cb = await startTestCrowbar(dialect, o.dev === false ? { ...o, config: { adminPassword: TEST_ADMIN.password, ...o.config } } : o);
  const app = await buildApp({ engine: cb.engine, log: pino({ level: 'silent' }), hammers: cb.hammers });
  const authHeaders = { authorization: basicAuth(TEST_ADMIN) };
  return {
    cb,
    app,
    authHeaders,
    async call(method, url, payload, headersOrOptions = {}) {
      const opts: CallOptions = 'auth' in headersOrOptions || 'headers' in headersOrOptions
        ? (headersOrOptions as CallOptions)
        : { headers: headersOrOptions as Record<string, string> };
      const own = opts.headers ?? {};
      const auth = opts.auth === false || hasCredentials(own) ? {} : { authorization: basicAuth(opts.auth ?? TEST_ADMIN) };
      const res = await app.inject({
        method: method as 'GET',
        url,
        headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...auth, ...own },
        payload: payload === undefined ? undefined : JSON.stringify(payload),
      });
      let parsed: unknown = undefined;
      try {
        parsed = res.body ? JSON.parse(res.body) : undefined;
      } catch {
        parsed = res.body;
      }
      return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), body: parsed, raw: res.body, headers: res.headers };
    },
    inject(opts) {
      const headers = (opts.headers ?? {}) as Record<string, string>;
      return app.inject({ ...opts, headers: hasCredentials(headers) ? headers : { ...authHeaders, ...headers } });
    },
    async cleanup() {
      await app.close();
      await cb.cleanup();
    },
  };
}
