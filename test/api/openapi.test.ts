import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Validator } from '@seriousme/openapi-schema-validator';
import { buildApp, routePlugins, type RoutePlugin } from '../../src/api/app.js';
import { describeRoute, openApiPath } from '../../src/api/openapi.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** `METHOD /path` for every route the router knows, from `printRoutes()`'s radix tree; HEAD left out. */
function routerRoutes(tree: string): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const at = line.search(/[^│├└─\s]/);
    if (at < 0) continue;
    const depth = Math.floor(at / 4);
    const m = /^(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(at))!;
    stack[depth] = m[1]!;
    stack.length = depth + 1;
    for (const method of (m[2] ?? '').split(', ').filter(Boolean)) if (method !== 'HEAD') out.add(`${method} ${stack.join('')}`);
  }
  return out;
}

/** `METHOD /path` for every operation of the document, `{param}` back to `:param`. */
function documentRoutes(doc: any): Set<string> {
  const out = new Set<string>();
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    for (const method of Object.keys(ops).filter((k) => METHODS.includes(k))) out.add(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`);
  }
  return out;
}

describe('OpenAPI document at /api/docs', () => {
  let api: TestApi;
  let doc: any;
  beforeAll(async () => {
    api = await startTestApi('sqlite', { anneal: false });
    const r = await api.call('GET', '/api/docs/openapi.json');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    doc = r.body;
  });
  afterAll(async () => api?.cleanup());

  it('validates against the OpenAPI 3.0 schema', async () => {
    const validator = new Validator();
    const res = await validator.validate(doc);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(validator.version).toBe('3.0');
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.info).toMatchObject({ title: 'OpenCrowbar API', version: '2.0' });
    expect(doc.servers).toEqual([{ url: '/' }]);
  });

  it('lists every route of the app with its methods, and nothing else (HEAD excluded)', async () => {
    const fromRouter = routerRoutes(api.app.printRoutes());
    const fromDoc = documentRoutes(doc);
    expect(fromRouter.size).toBeGreaterThan(150);
    expect([...fromRouter].filter((r) => !fromDoc.has(r))).toEqual([]);
    expect([...fromDoc].filter((r) => !fromRouter.has(r))).toEqual([]);
    expect([...fromDoc].filter((r) => r.startsWith('HEAD '))).toEqual([]);
    for (const r of fromDoc) {
      const [method, url] = r.split(' ') as [string, string];
      expect(api.app.hasRoute({ method: method as 'GET', url }), r).toBe(true);
    }
    // and matches what the onRoute hook collected
    expect(new Set(api.app.collectedRoutes.map((r) => `${r.method} ${r.url}`))).toEqual(fromDoc);
    for (const r of ['GET /api/v2/nodes', 'POST /api/v2/nodes', 'PUT /api/v2/nodes/:id/commit', 'GET /api/v2/node_roles/:id/why', 'GET /api/status/inventory',
      'GET /api/v2/events', 'POST /my/users/sign_in', 'GET /api/docs', 'GET /api/docs/openapi.json']) expect(fromDoc, r).toContain(r);
  });

  it('declares every path parameter: required strings, numeric id or natural key', () => {
    let seen = 0;
    for (const [path, ops] of Object.entries<any>(doc.paths)) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries<any>(ops)) {
        const declared = op.parameters.filter((p: any) => p.in === 'path');
        expect(declared.map((p: any) => p.name).sort(), `${method} ${path}`).toEqual([...names].sort());
        for (const p of declared) {
          expect(p).toMatchObject({ required: true, schema: { type: 'string' } });
          expect(p.description).toMatch(/numeric id or its natural key/);
          seen++;
        }
      }
    }
    expect(seen).toBeGreaterThan(50);
    const show = doc.paths['/api/v2/nodes/{id}/node_roles/{role}'].get;
    expect(show.parameters.find((p: any) => p.name === 'id').description).toMatch(/^the node:/);
    expect(show.parameters.find((p: any) => p.name === 'role').description).toMatch(/^the node role:/);
  });

  it('tags by resource, summarises every operation, and gives unique operation ids', () => {
    const ids = new Set<string>();
    for (const ops of Object.values<any>(doc.paths)) {
      for (const op of Object.values<any>(ops)) {
        expect(op.tags).toHaveLength(1);
        expect(doc.tags.map((t: any) => t.name)).toContain(op.tags[0]);
        expect(op.summary).toMatch(/^[A-Z]/);
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
      }
    }
    expect(doc.tags.map((t: any) => t.name)).toEqual(expect.arrayContaining(['nodes', 'node_roles', 'deployments', 'deployment_roles', 'status', 'session', 'docs', 'users']));
    expect(doc.paths['/api/v2/nodes'].get).toMatchObject({ tags: ['nodes'], summary: 'List nodes' });
    expect(doc.paths['/api/v2/nodes/{id}'].get.summary).toBe('Show a node');
    expect(doc.paths['/api/v2/nodes/{id}/commit'].put.summary).toBe('Commit a node');
    expect(doc.paths['/api/v2/nodes/{id}/node_roles'].get).toMatchObject({ tags: ['nodes'], summary: "List a node's node roles" });
    expect(doc.paths['/api/v2/node_roles/{id}/retry'].put).toMatchObject({ tags: ['node_roles'], summary: 'Retry a node role' });
    // a route's own config.summary wins
    expect(doc.paths['/api/docs'].get.summary).toBe('Browse the API documentation (HTML)');
  });

  it('types responses: vendor types where the path tells, error components, security', () => {
    const ok = (path: string, method: string) => Object.keys(doc.paths[path][method].responses['200'].content);
    expect(ok('/api/v2/nodes', 'get')).toEqual(['application/vnd.crowbar.node.list+json; version=2.0']);
    expect(ok('/api/v2/nodes/{id}', 'get')).toEqual(['application/vnd.crowbar.node.obj+json; version=2.0']);
    expect(ok('/api/v2/nodes', 'post')).toEqual(['application/vnd.crowbar.node.obj+json; version=2.0']);
    expect(ok('/api/v2/nodes/{id}', 'delete')).toEqual(['application/vnd.crowbar.node.empty+json; version=2.0']);
    expect(ok('/api/v2/deployments/{id}/node_roles', 'get')).toEqual(['application/vnd.crowbar.node_role.list+json; version=2.0']);
    expect(ok('/api/v2/users/{id}/tokens', 'get')).toEqual(['application/json']); // tokens are no top-level resource
    expect(ok('/api/v2/events', 'get')).toEqual(['text/event-stream']);

    const nodes = doc.paths['/api/v2/nodes/{id}'];
    expect(nodes.get.responses).toMatchObject({ 401: { $ref: '#/components/responses/Unauthorized' }, 404: { $ref: '#/components/responses/NotFound' } });
    expect(nodes.get.requestBody).toBeUndefined();
    for (const m of ['put', 'patch']) {
      expect(nodes[m].requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Object' });
      expect(nodes[m].responses).toMatchObject({ 409: { $ref: '#/components/responses/Conflict' }, 422: { $ref: '#/components/responses/Unprocessable' } });
    }
    const { responses, securitySchemes } = doc.components;
    expect(Object.keys(responses).sort()).toEqual(['Conflict', 'Forbidden', 'NotFound', 'Unauthorized', 'Unprocessable']);
    expect(responses.Unauthorized.headers['WWW-Authenticate'].description).toMatch(/^Digest realm="Crowbar"/);
    expect(Object.keys(responses.NotFound.content)).toEqual(['application/vnd.crowbar.error.error+json; version=2.0']);
    expect(securitySchemes).toMatchObject({
      digest: { type: 'http', scheme: 'digest' },
      basic: { type: 'http', scheme: 'basic' },
      bearer: { type: 'http', scheme: 'bearer' },
      session: { type: 'apiKey', in: 'cookie', name: '_crowbar_session' },
    });
    expect(doc.security).toEqual([{ digest: [] }, { basic: [] }, { bearer: [] }, { session: [] }]);
    // the public login form needs none and cannot answer 401 for want of it
    expect(doc.paths['/my/users/sign_in'].post.security).toEqual([]);
    expect(doc.paths['/my/users/sign_in'].post.responses['401']).toBeUndefined();
  });

  it('documents the content type the server really sends for every parameterless GET it types', async () => {
    let checked = 0;
    for (const [path, ops] of Object.entries<any>(doc.paths)) {
      const get = ops.get;
      if (!get || path.includes('{')) continue;
      const [type] = Object.keys(get.responses['200'].content) as [string];
      if (!type.startsWith('application/vnd.crowbar.')) continue;
      const r = await api.call('GET', path);
      expect(r.status, path).toBe(200);
      expect(r.type, path).toBe(type);
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('picks up routes registered later, with their config summary and description', async () => {
    const extra: RoutePlugin = (app) => {
      app.get('/api/v2/sims', { config: { summary: 'List simulated nodes', description: 'From a route file.' } }, async () => []);
      app.put('/api/v2/sims/:id/boot', async () => ({}));
    };
    const app = await buildApp({ engine: api.cb.engine, log: pino({ level: 'silent' }) }, [...routePlugins, extra]);
    try {
      const r = await app.inject({ method: 'GET', url: '/api/docs/openapi.json', headers: api.authHeaders });
      const d = r.json();
      expect(d.paths['/api/v2/sims'].get).toMatchObject({ tags: ['sims'], summary: 'List simulated nodes', description: 'From a route file.' });
      expect(d.paths['/api/v2/sims/{id}/boot'].put).toMatchObject({ summary: 'Boot a sim', parameters: [expect.objectContaining({ name: 'id', in: 'path' }), expect.anything()] });
      expect((await new Validator().validate(d)).valid).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('serves a self-contained browsable page that loads openapi.json', async () => {
    const r = await api.inject({ method: 'GET', url: '/api/docs' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.body).toContain('<!doctype html>');
    expect(r.body).toContain("'/openapi.json'");
    expect(r.body).toContain('href="docs/openapi.json"');
    // no external assets: nothing loaded from another origin
    expect(r.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(r.body).not.toMatch(/<script[^>]+src=/);
    expect(String(r.headers['content-security-policy'])).toMatch(/default-src 'none'.*connect-src 'self'/);
  });

  it('needs authentication for both endpoints: 401 with a Digest challenge', async () => {
    for (const url of ['/api/docs', '/api/docs/openapi.json']) {
      const r = await api.call('GET', url, undefined, { auth: false });
      expect(r.status, url).toBe(401);
      expect(String(r.headers['www-authenticate'])).toMatch(/^Digest realm="Crowbar"/);
      expect(r.type).toBe('application/vnd.crowbar.error.error+json; version=2.0');
    }
    expect((await api.call('GET', '/api/docs/openapi.json', undefined, { auth: { username: 'crowbar', password: 'wrong' } })).status).toBe(401);
  });
});

describe('openapi.ts path and summary derivation', () => {
  it('turns Fastify paths into OpenAPI templates', () => {
    expect(openApiPath('/api/v2/nodes/:id')).toEqual({ path: '/api/v2/nodes/{id}', params: [{ name: 'id' }] });
    expect(openApiPath('/x/:a(^\\d+)-:b/y')).toEqual({ path: '/x/{a}-{b}/y', params: [{ name: 'a', pattern: '^\\d+' }, { name: 'b' }] });
    expect(openApiPath('/files/*')).toEqual({ path: '/files/{wildcard}', params: [{ name: 'wildcard' }] });
    expect(openApiPath('/a::b')).toEqual({ path: '/a:b', params: [] });
  });

  it('derives readable summaries and vendor types from method and path', () => {
    const resources = new Set(['nodes', 'groups', 'users']);
    expect(describeRoute('GET', '/api/v2/nodes/sample', resources)).toMatchObject({ tag: 'nodes', contentType: 'application/vnd.crowbar.node.obj+json; version=2.0' });
    expect(describeRoute('POST', '/api/v2/groups/:id/nodes', resources)).toMatchObject({ tag: 'groups', summary: 'Add a node to a group' });
    expect(describeRoute('DELETE', '/api/v2/groups/:id/nodes/:node_id', resources).summary).toBe('Remove a node from a group');
    expect(describeRoute('PUT', '/api/v2/users/:id/reset_password', resources).summary).toBe('Reset password for a user');
    expect(describeRoute('GET', '/api/status/heartbeat', resources)).toMatchObject({ tag: 'status', summary: 'Status: show heartbeat', contentType: 'application/json' });
    expect(describeRoute('GET', '/api/v2/users/:id/tokens', resources).contentType).toBe('application/json');
  });
});
