/**
 * /api/v2/nodes (spec §9.2, §10, §11.2): list/show/sample/match, create with the Sledgehammer
 * shortcuts, PUT/PATCH, delete, the node actions (propose, commit, redeploy, debug, undebug),
 * power, and the nested node_roles, hammers and roles lists. A node is addressed by numeric id
 * or by name (lower-cased; dots allowed); `admin` names the admin node.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RoutePlugin } from '../app.js';
import { body, key, optBool, optString, ref, reqString, send, sendDeleted, sendList, sendObj, type Body } from '../wire.js';
import { hammerJson, nodeJson, roleJson } from '../serializers.js';
import { applyJsonPatch, matching, sampleOf } from './catalog.js';
import { nodeRolesOut } from './node-roles.js';
import type { Hammer, Node } from '../../domain/entities.js';
import { CrowbarError, InvalidError, NotFoundError } from '../../domain/errors.js';
import type { JsonObject } from '../../domain/json.js';
import type { Engine } from '../../engine/engine.js';
import type { NodeChange } from '../../engine/operations.js';
import type { HammerRegistry } from '../../hammers/index.js';
import type { NodeHammer, PowerAction } from '../../hammers/types.js';
import { findNodeRole, listNodeRoles } from '../../store/node-roles.js';
import { getNode, getNodeLiteByKey, listNodesShown, nodeHammers, requireNode } from '../../store/nodes.js';
import { requireRole, rolesByIds } from '../../store/roles.js';
import type { Tx } from '../../store/db.js';

type IdParams = { Params: { id: string } };

/** Fields PUT and PATCH may change (the original's permit list). */
const NODE_FIELDS = ['name', 'description', 'target_role_id', 'deployment_id', 'allocated', 'available', 'alive', 'bootenv'] as const;

const MAC_RE = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i;

/**
 * A node by id or name; `admin` is the (first available) admin node, as in the original.
 * `lite` leaves out the discovery blob (tens of KB of inventory JSON per node), which nodeJson
 * never shows: every /api/v2/nodes route asks for that.
 */
export async function findNode(db: Tx, raw: string, lite = false): Promise<Node> {
  const k = key(raw);
  const found = await (lite ? getNodeLiteByKey(db, k) : getNode(db, k));
  if (found) return found;
  if (raw === 'admin') {
    const admin = await db.selectFrom('nodes').select('id').where('admin', '=', 1).orderBy('available', 'desc').orderBy('id').executeTakeFirst();
    if (admin) return lite ? ((await getNodeLiteByKey(db, admin.id)) ?? requireNode(db, admin.id)) : requireNode(db, admin.id);
  }
  throw new NotFoundError('node', typeof k === 'string' ? k.toLowerCase() : k);
}

/**
 * The power actions a node offers: its hammers by priority, highest first; for each action the
 * first hammer offering it wins (spec §10). Hammers this server cannot drive offer nothing.
 */
export function powerTable(registry: HammerRegistry | undefined, node: Node, hammers: Hammer[]): Map<PowerAction, NodeHammer> {
  const table = new Map<PowerAction, NodeHammer>();
  for (const h of hammers) {
    const driver = driverFor(registry, node, h);
    for (const a of driver?.actions.power ?? []) if (!table.has(a)) table.set(a, driver!);
  }
  return table;
}

function driverFor(registry: HammerRegistry | undefined, node: Node, h: Hammer): NodeHammer | undefined {
  if (!registry?.has(h.name)) return undefined;
  try {
    return registry.get(h.name).create({ nodeId: node.id, nodeName: node.name, username: h.username, endpoint: h.endpoint, authenticator: h.authenticator });
  } catch {
    return undefined;
  }
}

function actionsOf(driver: NodeHammer | undefined): Record<string, string[]> {
  if (!driver) return {};
  return Object.fromEntries(Object.entries(driver.actions).map(([k, v]) => [k, [...(v as string[])]]));
}

/**
 * Reboots a node after debug/undebug/redeploy the way the original did (cycle, else reset, else
 * reboot), when one of its hammers can; a node no hammer can power is left alone. Best effort:
 * the node's change is already committed, so a failure is logged, not returned.
 */
async function rebootIfPossible(engine: Engine, registry: HammerRegistry | undefined, node: Node, log: Logger): Promise<void> {
  const table = powerTable(registry, node, await nodeHammers(engine.db, node.id));
  const action = (['cycle', 'reset', 'reboot'] as const).find((a) => table.has(a));
  if (!action) return;
  try {
    await table.get(action)!.power(action);
  } catch (e) {
    log.warn({ err: e, node: node.name, action }, 'power action after node change failed');
  }
}

/** PATCH (RFC 6902 against the node's JSON) or PUT (plain object): the fields to change. */
function requestedChanges(req: FastifyRequest, current: Record<string, unknown>): Body {
  if (req.method !== 'PATCH' || !Array.isArray(req.body)) return body(req);
  const patched = applyJsonPatch(current as JsonObject, req.body, { ops: ['add', 'replace', 'remove', 'test'] });
  const out: Body = {};
  for (const k of new Set([...Object.keys(current), ...Object.keys(patched)])) {
    if (JSON.stringify(current[k]) === JSON.stringify(patched[k])) continue;
    if (!(NODE_FIELDS as readonly string[]).includes(k)) throw new InvalidError(`'${k}' cannot be changed (changeable: ${NODE_FIELDS.join(', ')})`, { field: k });
    out[k] = patched[k] ?? null;
  }
  return out;
}

/** Coerces a PUT/PATCH body into a node change; every field is checked before anything is written. */
function nodeChange(b: Body): NodeChange {
  const c: NodeChange = {};
  const name = optString(b, 'name');
  if (name !== undefined) c.name = name;
  const description = optString(b, 'description');
  if (description !== undefined) c.description = description;
  const bootenv = optString(b, 'bootenv');
  if (bootenv !== undefined) c.bootenv = bootenv;
  for (const f of ['allocated', 'available', 'alive'] as const) {
    const v = optBool(b, f);
    if (v !== undefined) c[f] = v;
  }
  const deployment = ref(b, 'deployment');
  if (deployment !== undefined) c.deployment = deployment;
  const old = ref(b, 'old_deployment');
  if (old !== undefined) c.oldDeployment = old;
  if ('target_role_id' in b || 'target_role' in b) {
    const t = b['target_role_id'] !== undefined ? b['target_role_id'] : b['target_role'];
    if (t === null || t === '' || t === 'null') c.target = null;
    else if (typeof t === 'number' || typeof t === 'string') c.target = typeof t === 'string' && /^\d+$/.test(t) ? Number(t) : t;
    else throw new InvalidError(`'target_role_id' must be a role id, a role name or null`, { field: 'target_role_id' });
  }
  return c;
}

export const nodesRoutes: RoutePlugin = (app, { engine, hammers, log }) => {
  const T = 'node';
  const one = (raw: string) => findNode(engine.db, raw, true);
  const sendNode = (reply: FastifyReply, n: Node) => sendObj(reply, T, nodeJson(n));

  app.get('/api/v2/nodes', async (_req, reply) => sendList(reply, T, (await listNodesShown(engine.db)).map(nodeJson)));

  app.get('/api/v2/nodes/sample', async (_req, reply) =>
    sendObj(reply, T, sampleOf({
      name: '', description: '', admin: false, target_role_id: null, deployment_id: null, allocated: false, alive: false,
      available: false, bootenv: 'sledgehammer', quirks: [], system: false,
    })));

  app.post('/api/v2/nodes/match', async (req, reply) => sendList(reply, T, matching((await listNodesShown(engine.db)).map(nodeJson), body(req))));

  app.get<IdParams>('/api/v2/nodes/:id', async (req, reply) => sendNode(reply, await one(req.params.id)));

  /**
   * Create (spec §9.2). Shortcuts kept for Sledgehammer: `mac` becomes the hint `admin_macs`
   * ([mac]). `ip` is accepted and ignored until networks exist; the original set the hint
   * `<network>-v4addr` on the network containing it and bound that network's role.
   */
  app.post('/api/v2/nodes', async (req, reply) => {
    const b = body(req);
    const name = reqString(b, 'name');
    const mac = optString(b, 'mac');
    if (mac !== undefined && !MAC_RE.test(mac)) throw new InvalidError(`'mac' must be a MAC address like 52:54:00:12:34:56, not ${JSON.stringify(mac)}`, { field: 'mac' });
    const flags: Record<string, boolean> = {};
    for (const f of ['admin', 'system', 'alive', 'available', 'allocated'] as const) {
      const v = optBool(b, f);
      if (v !== undefined) flags[f] = v;
    }
    const node = await engine.createNode({
      name,
      description: optString(b, 'description'),
      deployment: ref(b, 'deployment'),
      bootenv: optString(b, 'bootenv'),
      ...flags,
      ...(mac ? { hint: { admin_macs: [mac.toLowerCase().replace(/-/g, ':')] } } : {}),
    });
    return sendNode(reply, node);
  });

  for (const method of ['put', 'patch'] as const) {
    app[method]<IdParams>('/api/v2/nodes/:id', async (req, reply) => {
      const node = await one(req.params.id);
      const change = nodeChange(requestedChanges(req, nodeJson(node)));
      return sendNode(reply, await engine.changeNode(node.id, change));
    });
  }

  app.delete<IdParams>('/api/v2/nodes/:id', async (req, reply) => {
    const node = await one(req.params.id);
    await engine.deleteNode(node.id);
    return sendDeleted(reply, T, `node ${node.name}`);
  });

  // node actions: each returns the node
  const actions: Record<string, (id: number) => Promise<Node>> = {
    propose: (id) => engine.proposeNode(id),
    commit: (id) => engine.commitNode(id),
    redeploy: (id) => engine.redeployNode(id),
    debug: (id) => engine.debugNode(id),
    undebug: (id) => engine.undebugNode(id),
  };
  for (const [action, run] of Object.entries(actions)) {
    app.put<IdParams>(`/api/v2/nodes/:id/${action}`, async (req, reply) => {
      const node = await run((await one(req.params.id)).id);
      if (action === 'redeploy' || action === 'debug' || action === 'undebug') await rebootIfPossible(engine, hammers, node, log);
      return sendNode(reply, node);
    });
  }

  // power (spec §10): the action names, and performing one
  app.get<IdParams>('/api/v2/nodes/:id/power', async (req, reply) => {
    const node = await one(req.params.id);
    return send(reply, T, 'array', [...powerTable(hammers, node, await nodeHammers(engine.db, node.id)).keys()]);
  });
  app.put<IdParams & { Querystring: { poweraction?: string } }>('/api/v2/nodes/:id/power', async (req, reply) => {
    const node = await one(req.params.id);
    const b = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Body) : {};
    const action = req.query.poweraction ?? optString(b, 'poweraction');
    if (action === undefined || action === '') throw new InvalidError(`'poweraction' is required (query or body)`, { field: 'poweraction' });
    const table = powerTable(hammers, node, await nodeHammers(engine.db, node.id));
    const driver = table.get(action as PowerAction);
    if (!driver) {
      const offered = [...table.keys()];
      return send(reply, 'error', 'error', {
        message: `node '${node.name}' cannot ${action}: ${offered.length ? `its hammers offer ${offered.join(', ')}` : 'none of its hammers offers power control'}`,
        status: 501,
      }, 501);
    }
    let result: string;
    try {
      result = await driver.power(action as PowerAction);
    } catch (e) {
      if (e instanceof CrowbarError) throw e;
      throw new CrowbarError('CONFLICT', `power ${action} on node '${node.name}' failed: ${(e as Error).message}`, { hammer: driver.name, action });
    }
    return send(reply, T, 'result', { id: node.id, action, result });
  });

  // nested lists
  app.get<IdParams>('/api/v2/nodes/:id/node_roles', async (req, reply) => {
    const node = await one(req.params.id);
    return sendList(reply, 'node_role', await nodeRolesOut(engine.db, await listNodeRoles(engine.db, { nodeId: node.id })));
  });
  app.get<{ Params: { id: string; role: string } }>('/api/v2/nodes/:id/node_roles/:role', async (req, reply) => {
    const node = await one(req.params.id);
    const role = await requireRole(engine.db, key(req.params.role));
    const nr = await findNodeRole(engine.db, role.id, node.id);
    if (!nr) throw new NotFoundError('node_role', `${role.name}@${node.name}`, `role '${role.name}' is not bound to node '${node.name}'`);
    return sendObj(reply, 'node_role', (await nodeRolesOut(engine.db, [nr]))[0]);
  });
  app.get<IdParams>('/api/v2/nodes/:id/hammers', async (req, reply) => {
    const node = await one(req.params.id);
    const list = await nodeHammers(engine.db, node.id);
    return sendList(reply, 'hammer', list.map((h) => hammerJson(h, actionsOf(driverFor(hammers, node, h)))));
  });
  app.get<IdParams>('/api/v2/nodes/:id/roles', async (req, reply) => {
    const node = await one(req.params.id);
    const nrs = await listNodeRoles(engine.db, { nodeId: node.id });
    const roles = await rolesByIds(engine.db, nrs.map((n) => n.role_id));
    return sendList(reply, 'role', [...roles.values()].sort((a, b) => a.cohort - b.cohort || a.name.localeCompare(b.name)).map(roleJson));
  });
};

