/**
 * The OpenAPI 3.0.3 document of this server, generated from the live route table: `collectRoutes`
 * adds an `onRoute` hook (buildApp calls it before registering anything) that records every route
 * as it is registered, and `openApiDocument` turns that record into the document served at
 * `GET /api/docs/openapi.json` (and browsed at `GET /api/docs`, routes/docs.ts). Nothing here
 * lists routes by hand: a new route appears in the document by being registered.
 *
 * What each operation gets, derived from the method and the path:
 * - the path with Fastify's `:param` (and `:param(regex)`) as `{param}`, each declared as a
 *   required string path parameter (a numeric id or a natural key such as a name); `*` as
 *   `{wildcard}`. HEAD routes (Fastify adds one per GET) are left out.
 * - a tag per resource: the first segment after `/api/v2/` (`nodes`, `node_roles`, …), `status`
 *   for `/api/status/…`, `docs` for `/api/docs…`, `session` for `/my/…`.
 * - a readable summary ("List nodes", "Show a node", "Commit a node", "List a node's node
 *   roles", …) and an operationId.
 * - a generic JSON object request body on POST, PUT and PATCH.
 * - a 200 response typed `application/vnd.crowbar.<type>.<form>+json; version=2.0` where the
 *   shape says it (list/show/create/update/delete/sample/match of a resource, nested lists and
 *   items), otherwise `application/json`; 401 (with the Digest challenge) on every authenticated
 *   route, 404 where the path addresses something, 403/409/422 on writes: shared components.
 * - security: Digest, Basic, bearer token or the `_crowbar_session` cookie; none on routes with
 *   `config: { public: true }`.
 *
 * Convention for route files: a route may describe itself in its Fastify route config, which
 * wins over the derived text:
 *
 *   app.put('/api/v2/nodes/:id/power', {
 *     config: { summary: 'Power a node on, off or cycle it', description: 'Takes `poweraction` …',
 *               contentType: 'application/vnd.crowbar.node.result+json; version=2.0' },
 *   }, handler);
 *
 * `summary` (one line), `description` (CommonMark) and `contentType` (the 200 response's media
 * type, for routes whose success type the path does not tell) are all optional.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { contentType as vendorType } from './wire.js';
import { SESSION_COOKIE } from './auth.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** OpenAPI: a one-line summary of the operation (default: derived from method and path) */
    summary?: string;
    /** OpenAPI: a longer CommonMark description of the operation */
    description?: string;
    /** OpenAPI: the media type of the 200 response, when the path does not tell it */
    contentType?: string;
  }
  interface FastifyInstance {
    /** every route registered since collectRoutes(app), HEAD excluded (openapi.ts) */
    collectedRoutes: CollectedRoute[];
  }
}

export interface CollectedRoute {
  method: string;
  /** the Fastify path, `:param` style */
  url: string;
  public: boolean;
  summary?: string;
  description?: string;
  contentType?: string;
  /** a JSON schema for the query string, when the route declared one */
  querystring?: JsonSchemaObject;
}

type JsonSchemaObject = { type?: string; properties?: Record<string, Record<string, unknown>>; required?: string[] };
type Obj = Record<string, unknown>;

export const OPENAPI_VERSION = '3.0.3';
export const API_TITLE = 'OpenCrowbar API';
export const API_VERSION = '2.0';

/**
 * Routes whose path misleads the derivation and whose route file does not (yet) say otherwise in
 * its config: `METHOD path` → what to use instead. Route config still wins.
 */
const OVERRIDES: Record<string, { summary?: string; contentType?: string; tag?: string }> = {
  'GET /api/v2/events': { summary: 'Stream state changes and run log lines (Server-Sent Events; resume with Last-Event-ID)', contentType: 'text/event-stream' },
  'GET /my/users/sign_in': { summary: 'The sign-in form (HTML)', contentType: 'text/html' },
  'POST /my/users/sign_in': { summary: 'Sign in (form or JSON `user[username]`, `user[password]`): starts a session cookie' },
  'DELETE /my/users/sign_out': { summary: 'Sign out: ends the session' },
  'GET /api/v2/digest': { summary: 'Check the credentials (a Digest or Basic success also starts a session)', tag: 'session' },
};

/** Records every route registered on `app` (and its children) from now on. Call before registering routes. */
export function collectRoutes(app: FastifyInstance): CollectedRoute[] {
  const routes: CollectedRoute[] = [];
  app.decorate('collectedRoutes', routes);
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    const config = (r.config ?? {}) as Obj;
    const qs = (r.schema as Obj | undefined)?.querystring as JsonSchemaObject | undefined;
    for (const m of methods) {
      const method = String(m).toUpperCase();
      if (method === 'HEAD') continue;
      routes.push({
        method,
        url: r.url,
        public: config.public === true,
        ...(typeof config.summary === 'string' ? { summary: config.summary } : {}),
        ...(typeof config.description === 'string' ? { description: config.description } : {}),
        ...(typeof config.contentType === 'string' ? { contentType: config.contentType } : {}),
        ...(qs && typeof qs === 'object' && qs.properties ? { querystring: qs } : {}),
      });
    }
  });
  return routes;
}

// paths ///////////////////////////////////////////////////////////////////////////////////////

interface PathParam {
  name: string;
  pattern?: string;
}

/** `/api/v2/nodes/:id(^\\d+)` → `{ path: '/api/v2/nodes/{id}', params: [{ name: 'id', pattern }] }`. */
export function openApiPath(url: string): { path: string; params: PathParam[] } {
  const params: PathParam[] = [];
  let path = '';
  for (let i = 0; i < url.length; ) {
    const c = url[i]!;
    if (c === ':' && url[i + 1] === ':') {
      path += ':'; // `::` is a literal colon
      i += 2;
    } else if (c === ':') {
      let j = i + 1;
      while (j < url.length && /[A-Za-z0-9_]/.test(url[j]!)) j++;
      const name = url.slice(i + 1, j);
      let pattern: string | undefined;
      if (url[j] === '(') {
        let depth = 0;
        let k = j;
        for (; k < url.length; k++) {
          if (url[k] === '\\') k++;
          else if (url[k] === '(') depth++;
          else if (url[k] === ')' && --depth === 0) break;
        }
        pattern = url.slice(j + 1, k);
        j = k + 1;
      }
      params.push(pattern ? { name, pattern } : { name });
      path += `{${name}}`;
      i = j;
    } else if (c === '*') {
      params.push({ name: 'wildcard' });
      path += '{wildcard}';
      i++;
    } else {
      path += c;
      i++;
    }
  }
  return { path, params };
}

interface Shape {
  tag: string;
  /** readable words, already composed, without the leading verb */
  summary: string;
  /** media type of the 200 response */
  contentType: string;
}

const words = (s: string) => s.replace(/[_-]+/g, ' ').trim();
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const article = (s: string) => (/^[aeio]|^u(?!s|ni)/i.test(s) ? `an ${s}` : `a ${s}`);
const isParam = (seg: string) => seg.startsWith(':') || seg === '*';
const isPlural = (seg: string) => /[^s]s$/.test(seg) && !/(us|ss)$/.test(seg);
export function singular(seg: string): string {
  if (/ies$/.test(seg)) return seg.slice(0, -3) + 'y';
  if (/(ches|shes|sses|xes)$/.test(seg)) return seg.slice(0, -2);
  return isPlural(seg) ? seg.slice(0, -1) : seg;
}

/**
 * Tag, summary and 200 media type for `method url`, from the path alone. `resources` are the
 * top-level collections of the route table (`nodes`, `roles`, …): a nested list or item is typed
 * as one of those only if it is one (`/nodes/:id/roles` lists roles; `/users/:id/tokens` is not
 * a resource of its own and gets `application/json`). Without `resources` every plural is one.
 */
export function describeRoute(method: string, url: string, resources?: ReadonlySet<string>): Shape {
  const segs = url.split('/').filter(Boolean);
  let rest: string[];
  let tag: string;
  let prefix = '';
  if (segs[0] === 'api' && segs[1] === 'v2') {
    rest = segs.slice(2);
    tag = rest[0] && !isParam(rest[0]) ? rest[0] : 'api';
  } else if (segs[0] === 'api' && segs[1] === 'status') {
    rest = segs.slice(2);
    tag = 'status';
    prefix = 'Status: ';
  } else if (segs[0] === 'api' && segs[1] === 'docs') {
    return { tag: 'docs', summary: `${method} ${url}`, contentType: 'application/json' };
  } else if (segs[0] === 'my') {
    rest = segs.slice(1);
    tag = 'session';
  } else {
    rest = segs[0] === 'api' ? segs.slice(1) : segs;
    tag = rest[0] && !isParam(rest[0]) ? rest[0] : 'other';
  }
  const s = phrase(method, rest, resources);
  return {
    tag,
    summary: prefix ? prefix + s.summary.charAt(0).toLowerCase() + s.summary.slice(1) : s.summary,
    contentType: prefix ? 'application/json' : s.contentType,
  };
}

const JSON_TYPE = 'application/json';

function phrase(method: string, segs: string[], resources?: ReadonlySet<string>): { summary: string; contentType: string } {
  if (segs.length === 0) return { summary: `${method} /`, contentType: JSON_TYPE };
  // walk (collection, param) pairs; `owners` are the items above the target
  const owners: string[] = [];
  let i = 0;
  while (i + 2 < segs.length && !isParam(segs[i]!) && isParam(segs[i + 1]!)) {
    owners.push(singular(segs[i]!));
    i += 2;
  }
  const tail = segs.slice(i);
  const owned = (thing: string) => (owners.length ? `${article(words(owners[owners.length - 1]!))}'s ${thing}` : thing);
  const ownedItem = (thing: string) => (owners.length ? owned(thing) : article(thing));
  const nested = owners.length > 0;
  const known = (seg: string) => !nested || !resources || resources.has(seg);
  const vt = (type: string, form: Parameters<typeof vendorType>[1]) => vendorType(type, form);

  // <collection>/<param>: an item
  if (tail.length === 2 && !isParam(tail[0]!) && isParam(tail[1]!)) {
    const type = singular(tail[0]!);
    const thing = words(type);
    switch (method) {
      case 'GET': return { summary: `Show ${ownedItem(thing)}`, contentType: known(tail[0]!) ? vt(type, 'obj') : JSON_TYPE };
      case 'PUT': return { summary: `Update ${ownedItem(thing)}`, contentType: nested ? JSON_TYPE : vt(type, 'obj') };
      case 'PATCH': return { summary: `Patch ${ownedItem(thing)}`, contentType: nested ? JSON_TYPE : vt(type, 'obj') };
      case 'DELETE': return nested
        ? { summary: `Remove ${article(thing)} from ${article(words(owners[owners.length - 1]!))}`, contentType: JSON_TYPE }
        : { summary: `Delete ${article(thing)}`, contentType: vt(type, 'empty') };
      default: return { summary: `${cap(method.toLowerCase())} ${ownedItem(thing)}`, contentType: JSON_TYPE };
    }
  }
  // <collection>: the collection itself
  if (tail.length === 1 && !isParam(tail[0]!) && (isPlural(tail[0]!) || !nested)) {
    const seg = tail[0]!;
    if (!isPlural(seg)) {
      // a top-level singleton such as /api/v2/anneal or /api/status/heartbeat
      const verb = method === 'GET' ? 'Show' : cap(method.toLowerCase());
      return { summary: `${verb} ${words(seg)}`, contentType: JSON_TYPE };
    }
    const type = singular(seg);
    const thing = words(type);
    switch (method) {
      case 'GET': return { summary: `List ${owned(words(seg))}`, contentType: known(seg) ? vt(type, 'list') : JSON_TYPE };
      case 'POST': return nested
        ? { summary: `Add ${article(thing)} to ${article(words(owners[owners.length - 1]!))}`, contentType: JSON_TYPE }
        : { summary: `Create ${article(thing)}`, contentType: vt(type, 'obj') };
      case 'DELETE': return nested
        ? { summary: `Remove ${words(seg)} from ${article(words(owners[owners.length - 1]!))}`, contentType: JSON_TYPE }
        : { summary: `Delete ${words(seg)}`, contentType: JSON_TYPE };
      default: return { summary: `${cap(method.toLowerCase())} ${owned(words(seg))}`, contentType: JSON_TYPE };
    }
  }
  // <collection>/sample, <collection>/match, <collection>/<action> (no id)
  if (tail.length === 2 && !isParam(tail[0]!) && !isParam(tail[1]!) && !nested) {
    const [coll, action] = tail as [string, string];
    const type = singular(coll);
    if (action === 'sample') return { summary: `Sample ${words(type)} (the fields of a new one)`, contentType: vt(type, 'obj') };
    if (action === 'match') return { summary: `Find ${words(coll)} matching the given field values`, contentType: vt(type, 'list') };
    return { summary: `${cap(words(action))} (${words(coll)})`, contentType: JSON_TYPE };
  }
  // <owner>/<param>/<action>: an action on an item
  if (tail.length === 1 && nested && !isParam(tail[0]!)) {
    const action = words(tail[0]!);
    const owner = article(words(owners[owners.length - 1]!));
    switch (method) {
      case 'GET': return { summary: `Show ${owned(action)}`, contentType: JSON_TYPE };
      case 'DELETE': return { summary: `Undo ${action} for ${owner}`, contentType: JSON_TYPE };
      default: return { summary: action.includes(' ') ? `${cap(action)} for ${owner}` : `${cap(action)} ${owner}`, contentType: JSON_TYPE };
    }
  }
  return { summary: `${method} /${segs.join('/')}`, contentType: JSON_TYPE };
}

// the document ////////////////////////////////////////////////////////////////////////////////

const ERROR_TYPE = vendorType('error', 'error');
const ref = (kind: string, name: string) => ({ $ref: `#/components/${kind}/${name}` });

function components(): Obj {
  const errorSchema = {
    type: 'object',
    required: ['message', 'status'],
    properties: {
      message: { type: 'string' },
      status: { type: 'integer' },
      details: { type: 'object', additionalProperties: true, description: 'machine-readable particulars, e.g. `field` naming the bad input' },
    },
  };
  const errorResponse = (description: string, extra: Obj = {}) => ({
    description,
    ...extra,
    content: { [ERROR_TYPE]: { schema: ref('schemas', 'Error') } },
  });
  return {
    schemas: {
      Error: errorSchema,
      Object: { type: 'object', additionalProperties: true, description: 'a JSON object; string scalars are coerced and unknown keys ignored' },
      Any: { description: 'any JSON value' },
    },
    parameters: {
      ReturnAttributes: {
        name: 'x-return-attributes',
        in: 'header',
        required: false,
        description: 'trims a 200 object (or each object of a list) to these keys: a JSON array such as `["id","name"]`, or a comma-separated list',
        schema: { type: 'string' },
      },
    },
    responses: {
      Unauthorized: errorResponse('not authenticated (or a locked user): a Digest challenge, which Basic, bearer-token and session clients may ignore', {
        headers: {
          'WWW-Authenticate': {
            description: 'Digest realm="Crowbar", qop="auth", algorithm=MD5, nonce="…", opaque="…" (stale=true when only the nonce expired)',
            schema: { type: 'string' },
          },
        },
      }),
      Forbidden: errorResponse('authenticated, but not allowed to do this'),
      NotFound: errorResponse('nothing by that id or name: `{status, message}`'),
      Conflict: errorResponse('the request conflicts with the current state'),
      Unprocessable: errorResponse('invalid input; `details.field` names the offending field'),
    },
    securitySchemes: {
      digest: { type: 'http', scheme: 'digest', description: 'HTTP Digest, realm `Crowbar`, MD5 or MD5-sess, qop=auth' },
      basic: { type: 'http', scheme: 'basic' },
      bearer: { type: 'http', scheme: 'bearer', description: 'an API token (`crowbar_…`) from `POST /api/v2/users/{id}/tokens`' },
      session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'the session cookie from `POST /my/users/sign_in`' },
    },
  };
}

function operationId(method: string, path: string): string {
  const tail = path.replace(/^\/api\/v2\//, '/').replace(/\{([^}]+)\}/g, 'by_$1').replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '');
  return `${method.toLowerCase()}_${tail || 'root'}`;
}

/** The OpenAPI 3.0.3 document for `routes` (default: what collectRoutes recorded on `app`). */
export function openApiDocument(app: FastifyInstance, routes: CollectedRoute[] = app.collectedRoutes): Obj {
  if (!routes) throw new Error('openApiDocument: collectRoutes(app) was not called before the routes were registered');
  const paths: Record<string, Record<string, Obj>> = {};
  const tags: string[] = [];
  const ids = new Set<string>();
  const sorted = [...routes].sort((a, b) => a.url.localeCompare(b.url));
  const resources = new Set(routes.filter((r) => r.method === 'GET').map((r) => /^\/api\/v2\/([a-z_]+)$/.exec(r.url)?.[1]).filter((x): x is string => !!x));
  for (const r of sorted) {
    const { path, params } = openApiPath(r.url);
    const override = OVERRIDES[`${r.method} ${r.url}`] ?? {};
    const shape = { ...describeRoute(r.method, r.url, resources), ...override };
    if (!tags.includes(shape.tag)) tags.push(shape.tag);
    const method = r.method.toLowerCase();
    let id = operationId(r.method, path);
    for (let n = 2; ids.has(id); n++) id = `${operationId(r.method, path)}_${n}`;
    ids.add(id);

    const owners = r.url.split('/').filter(Boolean);
    const parameters: Obj[] = params.map((p) => {
      const at = owners.findIndex((s) => s === `:${p.name}` || s.startsWith(`:${p.name}(`));
      const before = at > 0 ? owners[at - 1]! : '';
      const what = before && !isParam(before) ? words(singular(before)) : p.name === 'wildcard' ? 'rest of the path' : words(p.name);
      return {
        name: p.name,
        in: 'path',
        required: true,
        description: p.name === 'wildcard' ? 'the rest of the path' : `the ${what}: its numeric id or its natural key (e.g. its name)`,
        schema: p.pattern ? { type: 'string', pattern: p.pattern } : { type: 'string' },
      };
    });
    for (const [name, schema] of Object.entries(r.querystring?.properties ?? {})) {
      parameters.push({ name, in: 'query', required: r.querystring?.required?.includes(name) ?? false, schema });
    }
    const isWrite = r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH';
    const type = r.contentType ?? shape.contentType;
    const responses: Obj = {
      200: {
        description: 'success',
        content: { [type]: { schema: type.includes('json') ? ref('schemas', 'Any') : { type: 'string' } } },
      },
    };
    if (!r.public) responses[401] = ref('responses', 'Unauthorized');
    if (isWrite || r.method === 'DELETE') responses[403] = ref('responses', 'Forbidden');
    if (params.length) responses[404] = ref('responses', 'NotFound');
    if (isWrite || r.method === 'DELETE') {
      responses[409] = ref('responses', 'Conflict');
      responses[422] = ref('responses', 'Unprocessable');
    }
    const op: Obj = {
      tags: [shape.tag],
      summary: r.summary ?? shape.summary,
      ...(r.description ? { description: r.description } : {}),
      operationId: id,
      parameters: [...parameters, ref('parameters', 'ReturnAttributes')],
      ...(isWrite
        ? { requestBody: { required: false, content: { 'application/json': { schema: ref('schemas', 'Object') } } } }
        : {}),
      responses,
      ...(r.public ? { security: [] } : {}),
    };
    (paths[path] ??= {})[method] = op;
  }
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: API_TITLE,
      version: API_VERSION,
      description:
        'The OpenCrowbar /api/v2 REST API, generated from the routes this server registered. Every success is a 200 with a '
        + 'compact JSON body typed `application/vnd.crowbar.<type>.<form>+json; version=2.0`; resources are addressed by '
        + 'numeric id or natural key. Authenticate with HTTP Digest (realm `Crowbar`), HTTP Basic, a bearer API token, or '
        + `the \`${SESSION_COOKIE}\` cookie from \`POST /my/users/sign_in\`.`,
    },
    servers: [{ url: '/' }],
    security: [{ digest: [] }, { basic: [] }, { bearer: [] }, { session: [] }],
    tags: tags.sort().map((name) => ({ name })),
    paths,
    components: components(),
  };
}
