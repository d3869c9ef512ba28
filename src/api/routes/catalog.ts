/**
 * /api/v2 catalog routes (spec §11.2): barclamps (import over the API), jigs, roles (plus adding
 * a role to a deployment), available hammers and per-node hammers with `perform`.
 * Same pattern as deployments.ts: parse with wire.ts, act through the engine, answer with
 * serializers.ts. Every resource also has `GET …/sample` (column defaults minus id, *_id and
 * *_at) and `POST …/match` (equality filter on the object's keys; no key → empty list).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { stringify as toYaml } from 'yaml';
import type { ApiDeps, RoutePlugin } from '../app.js';
import { body, key, optBool, optInt, optObject, optString, ref, reqString, send, sendDeleted, sendList, sendObj, type Body } from '../wire.js';
import { availableHammerJson, barclampJson, hammerJson, jigJson, roleJson, underscore } from '../serializers.js';
import type { AvailableHammer, Hammer } from '../../domain/entities.js';
import { ROLE_FLAGS } from '../../domain/entities.js';
import { clone, isObject, type Json, type JsonObject } from '../../domain/json.js';
import { ConflictError, CrowbarError, InvalidError, NotFoundError, coerceError } from '../../domain/errors.js';
import { importBarclampYaml } from '../../engine/barclamp-import.js';
import { listBarclamps, requireBarclamp } from '../../store/barclamps.js';
import { keyAsId } from '../../store/rows.js';
import { listJigs, requireJig } from '../../store/jigs.js';
import { listRoles, requireRole } from '../../store/roles.js';
import { getAvailableHammer, listAvailableHammers } from '../../store/hammers.js';
import { requireDeployment, ensureDeploymentRole } from '../../store/deployments.js';
import { requireNode } from '../../store/nodes.js';
import { now, type Tx } from '../../store/db.js';
import { toHammer } from '../../store/rows.js';
import type { NodeHammer, PowerAction } from '../../hammers/types.js';

type IdParams = { Params: { id: string } };

/** 405 with the original's shape (`{message, status:405}`) for an operation the resource refuses. */
export function notSupported(what: string) {
  return async (_req: FastifyRequest, reply: FastifyReply) =>
    send(reply, 'error', 'error', { message: `${what} is not supported`, status: 405 }, 405);
}

/**
 * Importing a barclamp (it names the scripts jigs will run) and performing hammer actions (a
 * shell on a node, or on the admin host through the local hammer) take an admin user. Without
 * an authenticated user on the request (no auth plugin) nothing is refused here.
 */
function adminOnly(req: FastifyRequest, what: string): void {
  const user = (req as unknown as { user?: { username: string; is_admin: boolean } | null }).user;
  if (user && !user.is_admin) throw Object.assign(new Error(`only an admin may ${what}; '${user.username}' is not one`), { statusCode: 403 });
}

/** `sample`: an object's defaults without id, foreign keys and timestamps. */
export function sampleOf(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'id' && !k.endsWith('_id') && !k.endsWith('_at')));
}

/**
 * `match`: keeps the objects whose keys equal every body key the object has. Values are compared
 * as the original clients send them (strings for scalars, JSON text for arrays and objects).
 * Like the original, a body with no known key matches nothing.
 */
export function matching<T extends Record<string, unknown>>(objs: T[], b: Body): T[] {
  const known = objs.length ? Object.keys(objs[0]!) : [];
  const filters = Object.entries(b).filter(([k]) => known.includes(k));
  if (filters.length === 0) return [];
  const norm = (v: unknown) => (v === null || v === undefined ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return objs.filter((o) => filters.every(([k, v]) => norm(o[k]) === (typeof v === 'string' ? v : norm(v))));
}

// RFC 6902 ////////////////////////////////////////////////////////////////////////////////////////

type PatchOp = 'add' | 'replace' | 'remove' | 'test';

function pointer(path: unknown): string[] {
  if (typeof path !== 'string' || (path !== '' && !path.startsWith('/'))) throw new InvalidError(`JSON Patch path ${JSON.stringify(path)} is not a JSON pointer`);
  return path === '' ? [] : path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * Applies an RFC 6902 patch (operations add, replace, remove, test — those `ops` allows) to a
 * copy of `doc`. `paths`, when given, limits the paths an operation may touch (a path or
 * anything below it). Any other operation, or a path that does not resolve, is a 422.
 */
export function applyJsonPatch(doc: JsonObject, patch: unknown, opts: { ops: readonly PatchOp[]; paths?: readonly string[] }): JsonObject {
  if (!Array.isArray(patch)) throw new InvalidError('PATCH takes an RFC 6902 JSON Patch: an array of operations');
  const root: { v: Json } = { v: clone(doc) };
  for (const [i, raw] of patch.entries()) {
    if (!isObject(raw as Json)) throw new InvalidError(`JSON Patch operation ${i} must be an object`);
    const op = (raw as JsonObject)['op'];
    if (typeof op !== 'string' || !(opts.ops as readonly string[]).includes(op)) {
      throw new InvalidError(`JSON Patch operation ${JSON.stringify(op)} is not supported here (supported: ${opts.ops.join(', ')})`, { op: op ?? null });
    }
    const path = (raw as JsonObject)['path'];
    const parts = pointer(path);
    if (opts.paths && !opts.paths.some((p) => path === p || String(path).startsWith(`${p}/`))) {
      throw new InvalidError(`JSON Patch path ${JSON.stringify(path)} cannot be changed (changeable: ${opts.paths.join(', ')})`, { path: path ?? null });
    }
    const value = (raw as JsonObject)['value'];
    if ((op === 'add' || op === 'replace' || op === 'test') && value === undefined) throw new InvalidError(`JSON Patch ${op} at ${String(path)} needs a value`);
    if (parts.length === 0) {
      if (op === 'test') {
        if (JSON.stringify(root.v) !== JSON.stringify(value)) throw new InvalidError(`JSON Patch test failed at ${String(path)}`);
        continue;
      }
      if (op === 'remove') throw new InvalidError('JSON Patch cannot remove the whole document');
      root.v = clone(value!);
      continue;
    }
    let parent: Json = root.v;
    for (const p of parts.slice(0, -1)) {
      const next: Json | undefined = Array.isArray(parent) ? parent[Number(p)] : isObject(parent) ? parent[p] : undefined;
      if (next === undefined) throw new InvalidError(`JSON Patch path ${String(path)} does not exist`);
      parent = next;
    }
    const last = parts[parts.length - 1]!;
    if (Array.isArray(parent)) {
      const idx = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(idx) || idx < 0 || idx > parent.length || (op !== 'add' && idx >= parent.length)) throw new InvalidError(`JSON Patch path ${String(path)} does not exist`);
      if (op === 'add') parent.splice(idx, 0, clone(value!));
      else if (op === 'replace') parent[idx] = clone(value!);
      else if (op === 'remove') parent.splice(idx, 1);
      else if (JSON.stringify(parent[idx]) !== JSON.stringify(value)) throw new InvalidError(`JSON Patch test failed at ${String(path)}`);
    } else if (isObject(parent)) {
      if (op !== 'add' && !(last in parent)) throw new InvalidError(`JSON Patch path ${String(path)} does not exist`);
      if (op === 'add' || op === 'replace') parent[last] = clone(value!);
      else if (op === 'remove') delete parent[last];
      else if (JSON.stringify(parent[last]) !== JSON.stringify(value)) throw new InvalidError(`JSON Patch test failed at ${String(path)}`);
    } else throw new InvalidError(`JSON Patch path ${String(path)} does not exist`);
  }
  if (!isObject(root.v)) throw new InvalidError('JSON Patch must leave an object');
  return root.v;
}

/** The fields a PATCH (RFC 6902 array against the object's JSON) or a PUT (plain object) may change. */
function changes(req: FastifyRequest, current: Record<string, unknown>, allowed: readonly string[]): Body {
  if (req.method === 'PATCH' && Array.isArray(req.body)) {
    const patched = applyJsonPatch(current as JsonObject, req.body, { ops: ['add', 'replace', 'remove', 'test'] });
    const out: Body = {};
    for (const k of new Set([...Object.keys(current), ...Object.keys(patched)])) {
      if (JSON.stringify(current[k]) === JSON.stringify(patched[k])) continue;
      if (!allowed.includes(k)) throw new InvalidError(`'${k}' cannot be changed (changeable: ${allowed.join(', ')})`, { field: k });
      out[k] = patched[k] ?? null;
    }
    return out;
  }
  return body(req);
}

export const catalogRoutes: RoutePlugin = (app, deps) => {
  barclampRoutes(app, deps);
  jigRoutes(app, deps);
  roleRoutes(app, deps);
  hammerRoutes(app, deps);
};

// Barclamps /////////////////////////////////////////////////////////////////////////////////////

const barclampRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'barclamp';

  app.get('/api/v2/barclamps', async (_req, reply) => sendList(reply, T, (await listBarclamps(engine.db)).map(barclampJson)));
  app.get('/api/v2/barclamps/sample', async (_req, reply) =>
    sendObj(reply, T, sampleOf({
      name: '', description: '', version: '0.0', source_url: null, source_path: null, commit: null, build_on: null,
      build_version: '0.0', cfg_data: null,
    })));
  app.post('/api/v2/barclamps/match', async (req, reply) => sendList(reply, T, matching((await listBarclamps(engine.db)).map(barclampJson), body(req))));
  app.get<IdParams>('/api/v2/barclamps/:id', async (req, reply) => sendObj(reply, T, barclampJson(await requireBarclamp(engine.db, key(req.params.id)))));

  /**
   * `{value: <document>}` imports (or re-imports) a barclamp, the document given as an object
   * or as YAML text. A refused document is a 422 naming file, line and reason; nothing of it
   * is written. An object is rendered as YAML first, so reported lines are lines of that rendering.
   */
  const importing = async (req: FastifyRequest, reply: FastifyReply) => {
    adminOnly(req, 'import barclamps');
    const b = body(req);
    const v = b['value'];
    let text: string;
    let file = optString(b, 'file');
    if (typeof v === 'string') {
      text = v;
      file ??= 'value';
    } else if (isObject(v as Json)) {
      text = toYaml(v, { aliasDuplicateObjects: false });
      file ??= 'value (as YAML)';
    } else {
      throw new InvalidError(v === undefined || v === null ? "'value' is required: the barclamp document (an object or YAML text)" : "'value' must be the barclamp document (an object or YAML text)", { field: 'value' });
    }
    const res = await importBarclampYaml(engine.db, text, { file, mode: engine.opts.dev ? 'development' : 'production' });
    engine.bus.emit('wake');
    return sendObj(reply, T, barclampJson(res.barclamp));
  };
  app.post('/api/v2/barclamps', importing);
  app.put('/api/v2/barclamps/:id', importing);
  app.delete('/api/v2/barclamps/:id', notSupported('deleting a barclamp'));
};

// Jigs //////////////////////////////////////////////////////////////////////////////////////////

const JIG_FIELDS = ['description', 'active', 'server', 'client_name', 'key'] as const;

const jigRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'jig';

  app.get('/api/v2/jigs', async (_req, reply) => sendList(reply, T, (await listJigs(engine.db)).map(jigJson)));
  app.get('/api/v2/jigs/sample', async (_req, reply) =>
    sendObj(reply, T, sampleOf({ name: '', description: '', order: 10000, type: 'Jig', active: false, client_role_name: null, server: null, client_name: null, key: null })));
  app.post('/api/v2/jigs/match', async (req, reply) => sendList(reply, T, matching((await listJigs(engine.db)).map(jigJson), body(req))));
  app.get<IdParams>('/api/v2/jigs/:id', async (req, reply) => sendObj(reply, T, jigJson(await requireJig(engine.db, key(req.params.id)))));

  for (const method of ['put', 'patch'] as const) {
    app[method]<IdParams>('/api/v2/jigs/:id', async (req, reply) => {
      const jig = await requireJig(engine.db, key(req.params.id));
      const b = changes(req, jigJson(jig), JIG_FIELDS);
      const patch: Record<string, string | number | null> = {};
      const active = optBool(b, 'active');
      if (active !== undefined) patch['active'] = active ? 1 : 0;
      for (const f of ['description', 'server', 'client_name', 'key'] as const) {
        if (!(f in b)) continue;
        const v = optString(b, f);
        if (f === 'description') {
          if (v !== undefined) patch[f] = v;
        } else patch[f] = v ?? null;
      }
      if (Object.keys(patch).length) {
        await engine.tx(async (ctx) => {
          await ctx.tx.updateTable('jigs').set({ ...patch, updated_at: now() }).where('id', '=', jig.id).execute();
          if (active !== undefined && active !== jig.active) ctx.wake = true;
        });
      }
      return sendObj(reply, T, jigJson(await requireJig(engine.db, jig.id)));
    });
  }
  app.post('/api/v2/jigs', notSupported('creating a jig (jigs come from barclamps)'));
  app.delete('/api/v2/jigs/:id', notSupported('deleting a jig'));
};

// Roles /////////////////////////////////////////////////////////////////////////////////////////

const roleRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'role';

  app.get('/api/v2/roles', async (_req, reply) => sendList(reply, T, (await listRoles(engine.db)).map(roleJson)));
  app.get('/api/v2/roles/sample', async (_req, reply) =>
    sendObj(reply, T, sampleOf({
      name: '', description: '', type: 'Role', jig_name: '', provides: [], conflicts: [],
      ...Object.fromEntries(ROLE_FLAGS.map((f) => [f, false])), cohort: 0,
    })));
  app.post('/api/v2/roles/match', async (req, reply) => sendList(reply, T, matching((await listRoles(engine.db)).map(roleJson), body(req))));
  app.get<IdParams>('/api/v2/roles/:id', async (req, reply) => sendObj(reply, T, roleJson(await requireRole(engine.db, key(req.params.id)))));

  for (const method of ['put', 'patch'] as const) {
    app[method]<IdParams>('/api/v2/roles/:id', async (req, reply) => {
      const role = await requireRole(engine.db, key(req.params.id));
      const b = changes(req, { ...roleJson(role), template: role.template }, ['description', 'template']);
      const description = optString(b, 'description');
      const template = optObject(b, 'template');
      await engine.tx(async (ctx) => {
        const set: Record<string, string> = {};
        if (description !== undefined) set['description'] = description;
        if (template !== undefined) set['template'] = JSON.stringify(template);
        if (Object.keys(set).length) await ctx.tx.updateTable('roles').set({ ...set, updated_at: now() }).where('id', '=', role.id).execute();
      });
      return sendObj(reply, T, roleJson(await requireRole(engine.db, role.id)));
    });
  }
  app.post('/api/v2/roles', notSupported('creating a role (roles come from barclamps; POST /api/v2/deployments/:id/roles adds one to a deployment)'));
  app.delete('/api/v2/roles/:id', notSupported('deleting a role'));

  /** Adds the role to the deployment (a deployment-role); answers with the role. */
  app.post<IdParams>('/api/v2/deployments/:id/roles', async (req, reply) => {
    const b = body(req);
    const r = ref(b, 'role');
    if (r === undefined) throw new InvalidError("'role' (or 'role_id') is required", { field: 'role' });
    const role = await engine.tx(async (ctx) => {
      const dep = await requireDeployment(ctx.tx, key(req.params.id));
      const role = await requireRole(ctx.tx, r);
      await ensureDeploymentRole(ctx.tx, dep.id, role.id);
      ctx.emit('deployment_role.created', { deployment_id: dep.id, role_id: role.id });
      return role;
    });
    return sendObj(reply, T, roleJson(role));
  });
};

// Hammers ///////////////////////////////////////////////////////////////////////////////////////

async function requireAvailableHammer(tx: Tx, k: number | string): Promise<AvailableHammer> {
  const found = await getAvailableHammer(tx, k);
  if (!found) throw new NotFoundError('available_hammer', k);
  return found;
}

async function requireHammer(tx: Tx, k: number | string): Promise<Hammer> {
  const id = keyAsId(k);
  const row = id === null ? undefined : await tx.selectFrom('hammers').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('hammer', k, id === null ? 'hammers are addressed by id' : undefined);
  return toHammer(row);
}

const RUN_TIMEOUT_MS = 120_000;

const hammerRoutes: RoutePlugin = (app, deps: ApiDeps) => {
  const { engine, hammers } = deps;
  const AT = 'available_hammer';

  // available hammers: the catalog of ways to reach a node
  app.get('/api/v2/available_hammers', async (_req, reply) => sendList(reply, AT, (await listAvailableHammers(engine.db)).map(availableHammerJson)));
  app.get('/api/v2/available_hammers/sample', async (_req, reply) => sendObj(reply, AT, sampleOf({ name: '', klass: '', priority: 0 })));
  app.post('/api/v2/available_hammers/match', async (req, reply) =>
    sendList(reply, AT, matching((await listAvailableHammers(engine.db)).map(availableHammerJson), body(req))));
  app.get<IdParams>('/api/v2/available_hammers/:id', async (req, reply) =>
    sendObj(reply, AT, availableHammerJson(await requireAvailableHammer(engine.db, key(req.params.id)))));
  app.post('/api/v2/available_hammers', async (req, reply) => {
    const b = body(req);
    const name = reqString(b, 'name');
    const klass = reqString(b, 'klass');
    const priority = optInt(b, 'priority') ?? 0;
    const created = await engine.tx(async (ctx) => {
      if (await getAvailableHammer(ctx.tx, name)) throw new ConflictError(`available hammer '${name}' already exists`, { field: 'name' });
      const t = now();
      await ctx.tx.insertInto('available_hammers').values({ name, klass, priority, created_at: t, updated_at: t }).execute();
      return requireAvailableHammer(ctx.tx, name);
    });
    return sendObj(reply, AT, availableHammerJson(created));
  });
  for (const method of ['put', 'patch'] as const) {
    app[method]<IdParams>('/api/v2/available_hammers/:id', async (req, reply) => {
      const ah = await requireAvailableHammer(engine.db, key(req.params.id));
      const b = changes(req, availableHammerJson(ah), ['name', 'klass', 'priority']);
      const set: Record<string, string | number> = {};
      const name = optString(b, 'name');
      const klass = optString(b, 'klass');
      const priority = optInt(b, 'priority');
      if (name !== undefined && name !== '') set['name'] = name;
      if (klass !== undefined && klass !== '') set['klass'] = klass;
      if (priority !== undefined) set['priority'] = priority;
      const updated = await engine.tx(async (ctx) => {
        if (set['name'] !== undefined && set['name'] !== ah.name && (await getAvailableHammer(ctx.tx, String(set['name'])))) {
          throw new ConflictError(`available hammer '${set['name']}' already exists`, { field: 'name' });
        }
        if (Object.keys(set).length) await ctx.tx.updateTable('available_hammers').set({ ...set, updated_at: now() }).where('id', '=', ah.id).execute();
        return requireAvailableHammer(ctx.tx, ah.id);
      });
      return sendObj(reply, AT, availableHammerJson(updated));
    });
  }
  app.delete<IdParams>('/api/v2/available_hammers/:id', async (req, reply) => {
    const ah = await engine.tx(async (ctx) => {
      const ah = await requireAvailableHammer(ctx.tx, key(req.params.id));
      const used = await ctx.tx.selectFrom('hammers').select('id').where('available_hammer_id', '=', ah.id).execute();
      if (used.length) throw new ConflictError(`available hammer '${ah.name}' is bound to ${used.length} node(s); delete those hammers first`, { hammers: used.map((u) => u.id) });
      await ctx.tx.deleteFrom('available_hammers').where('id', '=', ah.id).execute();
      return ah;
    });
    return sendDeleted(reply, AT, `available hammer ${ah.name}`);
  });

  // hammers: one per node and kind; the content type names the hammer class
  /** The node hammer this server would drive for `h`, or undefined when it has no such hammer. */
  const driverFor = (h: Hammer, nodeName: string): NodeHammer | undefined => {
    if (!hammers?.has(h.name)) return undefined;
    try {
      return hammers.get(h.name).create({ nodeId: h.node_id, nodeName, username: h.username, endpoint: h.endpoint, authenticator: h.authenticator });
    } catch {
      return undefined;
    }
  };
  const actionsOf = (driver: NodeHammer | undefined): Record<string, string[]> =>
    driver ? (Object.fromEntries(Object.entries(driver.actions).map(([k, v]) => [k, [...(v as string[])]])) as Record<string, string[]>) : {};
  const nodeNames = async (ids: number[]): Promise<Map<number, string>> => {
    if (ids.length === 0) return new Map();
    const rows = await engine.db.selectFrom('nodes').select(['id', 'name']).where('id', 'in', [...new Set(ids)]).execute();
    return new Map(rows.map((r) => [r.id, r.name]));
  };
  const out = async (h: Hammer) => hammerJson(h, actionsOf(driverFor(h, (await nodeNames([h.node_id])).get(h.node_id) ?? '')));
  const sendHammer = async (reply: FastifyReply, h: Hammer) => send(reply, underscore(h.type), 'obj', await out(h));
  const all = async () => {
    const rows = (await engine.db.selectFrom('hammers').selectAll().orderBy('id').execute()).map(toHammer);
    const names = await nodeNames(rows.map((h) => h.node_id));
    return rows.map((h) => hammerJson(h, actionsOf(driverFor(h, names.get(h.node_id) ?? ''))));
  };

  app.get('/api/v2/hammers', async (_req, reply) => sendList(reply, 'hammer', await all()));
  app.get('/api/v2/hammers/sample', async (_req, reply) =>
    sendObj(reply, 'hammer', sampleOf({ priority: 0, type: '', name: '', endpoint: null, username: 'root', actions: {} })));
  app.post('/api/v2/hammers/match', async (req, reply) => sendList(reply, 'hammer', matching(await all(), body(req))));
  app.get<IdParams>('/api/v2/hammers/:id', async (req, reply) => sendHammer(reply, await requireHammer(engine.db, key(req.params.id))));

  app.post('/api/v2/hammers', async (req, reply) => {
    const b = body(req);
    const nodeKey = ref(b, 'node');
    const availKey = ref(b, 'available_hammer');
    if (nodeKey === undefined) throw new InvalidError("'node_id' is required", { field: 'node_id' });
    if (availKey === undefined) throw new InvalidError("'available_hammer_id' is required", { field: 'available_hammer_id' });
    const username = reqString(b, 'username');
    const endpoint = optString(b, 'endpoint') ?? null;
    const authenticator = optString(b, 'authenticator') ?? null;
    const priority = optInt(b, 'priority');
    const h = await engine.tx(async (ctx) => {
      const node = await requireNode(ctx.tx, nodeKey);
      const ah = await requireAvailableHammer(ctx.tx, availKey);
      const dup = await ctx.tx.selectFrom('hammers').select('id').where('node_id', '=', node.id).where('type', '=', ah.klass).executeTakeFirst();
      if (dup) throw new ConflictError(`node '${node.name}' already has a ${ah.name} hammer (hammer ${dup.id})`, { hammer: dup.id });
      const t = now();
      const row = await ctx.tx
        .insertInto('hammers')
        .values({
          node_id: node.id, available_hammer_id: ah.id, priority: priority ?? ah.priority, type: ah.klass, name: ah.name,
          endpoint, username, authenticator, created_at: t, updated_at: t,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toHammer(row);
    });
    return sendHammer(reply, h);
  });

  for (const method of ['put', 'patch'] as const) {
    app[method]<IdParams>('/api/v2/hammers/:id', async (req, reply) => {
      const h = await requireHammer(engine.db, key(req.params.id));
      const current = { ...(await out(h)), authenticator: h.authenticator };
      const b = changes(req, current, ['priority', 'endpoint', 'username', 'authenticator']);
      const set: Record<string, string | number | null> = {};
      const priority = optInt(b, 'priority');
      if (priority !== undefined) set['priority'] = priority;
      const username = optString(b, 'username');
      if (username !== undefined && username !== '') set['username'] = username;
      for (const f of ['endpoint', 'authenticator'] as const) if (f in b) set[f] = optString(b, f) ?? null;
      if (Object.keys(set).length) {
        await engine.tx(async (ctx) => {
          await ctx.tx.updateTable('hammers').set({ ...set, updated_at: now() }).where('id', '=', h.id).execute();
        });
      }
      return sendHammer(reply, await requireHammer(engine.db, h.id));
    });
  }

  app.delete<IdParams>('/api/v2/hammers/:id', async (req, reply) => {
    const h = await engine.tx(async (ctx) => {
      const h = await requireHammer(ctx.tx, key(req.params.id));
      await ctx.tx.deleteFrom('hammers').where('id', '=', h.id).execute();
      return h;
    });
    return sendDeleted(reply, underscore(h.type), `hammer ${h.id}`);
  });

  /**
   * Forgets the host key pinned for this hammer's node (after a legitimate reinstall): the next
   * connection pins the key the node then offers. 409 for hammers that pin no keys.
   */
  app.delete<IdParams>('/api/v2/hammers/:id/host_key', async (req, reply) => {
    adminOnly(req, 'forget pinned host keys');
    const h = await requireHammer(engine.db, key(req.params.id));
    const node = await requireNode(engine.db, h.node_id);
    const driver = driverFor(h, node.name);
    if (!driver?.forgetHostKey) {
      throw new ConflictError(`the ${h.name} hammer of node '${node.name}' pins no host keys`, { hammer: h.id });
    }
    const { hostPort, fingerprint } = await driver.forgetHostKey();
    return send(reply, 'hammer_host_key', 'obj', { hammer_id: h.id, node: node.name, host: hostPort, forgotten: fingerprint });
  });

  /**
   * `{method, args[]}`: runs one of the hammer's actions on its node. A failing action is still
   * a 200 with `result_type: 'exception'`; a method the hammer does not offer is a 409.
   * `run` takes an argv, or one string which runs as a shell command line (as ssh did).
   */
  app.post<IdParams>('/api/v2/hammers/:id/perform', async (req, reply) => {
    adminOnly(req, 'perform hammer actions');
    const b = body(req);
    const h = await requireHammer(engine.db, key(req.params.id));
    const node = await requireNode(engine.db, h.node_id);
    const method = reqString(b, 'method');
    const rawArgs = b['args'] ?? [];
    const args: Json[] = Array.isArray(rawArgs) ? (rawArgs as Json[]) : [rawArgs as Json];
    const driver = driverFor(h, node.name);
    const actions = actionsOf(driver);
    const category = Object.entries(actions).find(([, methods]) => methods.includes(method))?.[0];
    if (!driver || category === undefined) {
      const offered = Object.values(actions).flat();
      throw new ConflictError(
        driver
          ? `'${method}' is not an action of the ${h.name} hammer of node '${node.name}' (actions: ${offered.join(', ') || 'none'})`
          : `this server cannot drive the ${h.name} hammer of node '${node.name}' (it has: ${hammers?.names().join(', ') || 'no hammers'})`,
        { method, hammer: h.id },
      );
    }
    const res: Record<string, unknown> = { node: node.name, name: h.name, id: h.id, method, args };
    try {
      res['results'] = await perform(driver, category, method, args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))));
      res['result_type'] = 'action';
    } catch (e) {
      res['results'] = coerceError(e).message;
      res['result_type'] = 'exception';
      if (!(e instanceof CrowbarError)) req.log.warn({ err: coerceError(e), hammer: h.id, method }, 'hammer action failed');
    }
    return send(reply, underscore(h.type), 'action', res);
  });
};

async function perform(driver: NodeHammer, category: string, method: string, args: string[]): Promise<unknown> {
  switch (category) {
    case 'power':
      return driver.power(method as PowerAction);
    case 'run': {
      if (args.length === 0) throw new InvalidError('run needs a command: args [<command line>] or [<argv0>, <arg>…]');
      const argv = args.length === 1 ? ['sh', '-c', args[0]!] : args;
      const r = await driver.run(argv, { signal: AbortSignal.timeout(RUN_TIMEOUT_MS) });
      return { stdout: r.stdout, stderr: r.stderr, status: r.code };
    }
    case 'xfer': {
      const [from, to] = args;
      if (from === undefined || to === undefined) throw new InvalidError(`${method} needs args [<from>, <to>]`);
      if (method === 'copy_to') await driver.copyTo(from, to);
      else await driver.copyFrom(from, to);
      return { from, to };
    }
    default:
      throw new CrowbarError('NOT_SUPPORTED', `hammer action ${category}.${method} is not implemented by this server`);
  }
}
