/**
 * Annealer and fleet status: `GET /api/v2/anneal` (spec §3.7), `/api/status/heartbeat`, and the
 * aggregate views `/api/status/nodes(/:id)`, `/api/status/deployments(/:id)` and
 * `/api/status/inventory(/:id)` (an Ansible dynamic inventory).
 */
import { createHash, randomBytes } from 'node:crypto';
import { InvalidError, NotFoundError } from '../../domain/errors.js';
import { generateInventory } from '../../sim/inventory.js';
import type { RoutePlugin } from '../app.js';
import { NodeRoleState as S, stateName } from '../../domain/states.js';
import type { Attrib, Deployment, Node } from '../../domain/entities.js';
import { isObject } from '../../domain/json.js';
import { key, send } from '../wire.js';
import { computedState } from '../../engine/deployments.js';
import { nodeAttribValue } from '../../engine/injection.js';
import { listDeployments, requireDeployment } from '../../store/deployments.js';
import { listNodes, listNodesShown } from '../../store/nodes.js';
import { listNodeRoles } from '../../store/node-roles.js';
import { nodeLevelAttribs } from '../../store/roles.js';
import type { Tx } from '../../store/db.js';
import { findNode } from './nodes.js';

function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02; // locally administered, unicast
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':').toUpperCase();
}

const DEPLOYMENT_STATUS: Record<number, string> = { [-1]: 'error', 0: 'proposed', 1: 'committed', 2: 'active' };

/**
 * A node's derived state from its node-roles: ERROR if any is in error (so it agrees with
 * `node_error`), else PROPOSED, else TRANSITION, else TODO for any TODO or BLOCKED, else ACTIVE.
 */
export function nodeState(states: Iterable<number>): number {
  const has = new Set(states);
  for (const s of [S.ERROR, S.PROPOSED, S.TRANSITION]) if (has.has(s)) return s;
  return has.has(S.TODO) || has.has(S.BLOCKED) ? S.TODO : S.ACTIVE;
}

/** Node-role states per node (one grouped query). */
async function statesByNode(db: Tx, nodeId?: number): Promise<Map<number, number[]>> {
  let q = db.selectFrom('node_roles').select(['node_id', 'state']).distinct();
  if (nodeId !== undefined) q = q.where('node_id', '=', nodeId);
  const out = new Map<number, number[]>();
  for (const r of await q.execute()) out.set(r.node_id, [...(out.get(r.node_id) ?? []), r.state]);
  return out;
}

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

async function deploymentStatus(db: Tx, d: Deployment) {
  const nrs = await listNodeRoles(db, { deploymentId: d.id });
  const state = await computedState(db, d);
  const ids = nrs.map((n) => n.id).sort((a, b) => a - b);
  return {
    node_roles: Object.fromEntries(nrs.map((nr) => [nr.id, { status: stateName(nr.state), state: nr.state }])),
    id: d.id,
    state,
    md5: createHash('md5').update(ids.join(',')).digest('hex'),
    status: DEPLOYMENT_STATUS[state] ?? String(state),
  };
}

/** The inventory's host variables of a node; `number_of_drives` counts the block devices. */
function hostvars(node: Node, state: number, attribs: Map<string, Attrib>): Record<string, unknown> {
  const read = (name: string) => {
    const a = attribs.get(name);
    return a ? nodeAttribValue(node, a)?.value ?? null : null;
  };
  const drives = read('number_of_drives');
  return {
    alive: node.alive,
    available: node.available,
    state,
    os: read('os'),
    cpu_count: read('cpu_count'),
    memory: read('memory'),
    number_of_drives: isObject(drives) ? Object.keys(drives).length : Array.isArray(drives) ? drives.length : drives,
  };
}

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

  /** `{<node id>: {name, state, status, strStatus}}` for every node, or one (by id or name). */
  const nodesStatus = async (raw?: string) => {
    const nodes = raw === undefined ? await listNodesShown(engine.db) : [await findNode(engine.db, raw, true)];
    const states = await statesByNode(engine.db, raw === undefined ? undefined : nodes[0]!.id);
    return Object.fromEntries(nodes.map((n) => {
      const state = nodeState(states.get(n.id) ?? []);
      const strStatus = [n.alive ? 'Alive' : 'Dead', n.available ? 'Available' : 'Reserved', capitalized(stateName(state))].join('\n');
      return [n.id, { name: n.name, state, status: stateName(state), strStatus }];
    }));
  };
  app.get('/api/status/nodes', async (_req, reply) => send(reply, 'node', 'array', await nodesStatus()));
  app.get<{ Params: { id: string } }>('/api/status/nodes/:id', async (req, reply) => send(reply, 'node', 'array', await nodesStatus(req.params.id)));

  /** One deployment: `{node_roles: {<id>: {status, state}}, id, state, md5 (of the node-role ids), status}`; all: keyed by deployment id. */
  app.get('/api/status/deployments', async (_req, reply) => {
    const all = await listDeployments(engine.db);
    return send(reply, 'deployment', 'array', Object.fromEntries(await Promise.all(all.map(async (d) => [d.id, await deploymentStatus(engine.db, d)] as const))));
  });
  app.get<{ Params: { id: string } }>('/api/status/deployments/:id', async (req, reply) =>
    send(reply, 'deployment', 'obj', await deploymentStatus(engine.db, await requireDeployment(engine.db, key(req.params.id)))));

  /**
   * Ansible dynamic inventory: a group per deployment (`{hosts: [...]}`, hosts are node names)
   * and `_meta.hostvars` with alive, available, state, os, cpu_count, memory and
   * number_of_drives from the node-level attribs. Phantom (system) nodes are not hosts.
   * `/:id` limits it to one deployment; `?hostvar=<node>` answers that node's variables only
   * (what `ansible-inventory --host` asks for); `?hostvar=none` leaves `_meta` out.
   */
  const inventory = async (depKey: string | undefined, hostvar: string | undefined) => {
    const attribs = new Map((await nodeLevelAttribs(engine.db)).map((a) => [a.name, a]));
    if (hostvar !== undefined && hostvar !== 'none') {
      const node = await findNode(engine.db, hostvar);
      return hostvars(node, nodeState((await statesByNode(engine.db, node.id)).get(node.id) ?? []), attribs);
    }
    const deps = depKey === undefined ? await listDeployments(engine.db) : [await requireDeployment(engine.db, key(depKey))];
    const nodes = (await listNodes(engine.db)).filter((n) => !n.system && deps.some((d) => d.id === n.deployment_id));
    const states = await statesByNode(engine.db);
    const out: Record<string, unknown> = {};
    for (const d of deps) out[d.name] = { hosts: nodes.filter((n) => n.deployment_id === d.id).map((n) => n.name) };
    if (hostvar !== 'none') {
      out['_meta'] = { hostvars: Object.fromEntries(nodes.map((n) => [n.name, hostvars(n, nodeState(states.get(n.id) ?? []), attribs)])) };
    }
    return out;
  };
  app.get<{ Querystring: { hostvar?: string } }>('/api/status/inventory', async (req, reply) => send(reply, 'inventory', 'obj', await inventory(undefined, req.query.hostvar)));
  app.get<{ Params: { id: string }; Querystring: { hostvar?: string } }>('/api/status/inventory/:id', async (req, reply) =>
    send(reply, 'inventory', 'obj', await inventory(req.params.id, req.query.hostvar)));

  /** The run queue as counts: in flight (running), waiting on asynchronous work, runnable (TODO). */
  app.get('/api/status/queue', async (_req, reply) => {
    const runs = await engine.db.selectFrom('runs').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('status', 'in', ['running', 'async']).groupBy('status').execute();
    const todo = await engine.db.selectFrom('node_roles').select((eb) => eb.fn.countAll<number>().as('n')).where('state', '=', S.TODO).executeTakeFirst();
    const n = (st: string) => Number(runs.find((r) => r.status === st)?.n ?? 0);
    return send(reply, 'queue', 'obj', { running: n('running'), async: n('async'), todo: Number(todo?.n ?? 0) });
  });

  /**
   * Test data (development mode only, as the acceptance suite uses it): `PUT /api/test/nodes(/:id)
   * {"source":"node_discovery"}` loads an ohai-style inventory into the node's discovery — the
   * simulator's generated inventory for that node, with a fresh random MAC like the original.
   */
  const loadTestDiscovery = async (raw: string | undefined, body: unknown) => {
    if (!engine.opts.dev) throw new NotFoundError('route', '/api/test/nodes', 'test data can only be loaded in development mode (--dev)');
    const source = isObject(body) ? (body as Record<string, unknown>).source ?? 'node_discovery' : 'node_discovery';
    if (source !== 'node_discovery') throw new InvalidError(`unknown test data source '${String(source)}'; the only one is 'node_discovery'`, { field: 'source' });
    const nodes = raw === undefined ? (await listNodes(engine.db)).filter((n) => !n.system) : [await findNode(engine.db, raw)];
    for (const n of nodes) {
      const inv = generateInventory(n.id, n.name);
      const mac = randomMac();
      const ifaces = (inv.ohai as any)?.network?.interfaces ?? {};
      // the first NIC with a hardware address (the boot NIC), as the original's fixture had
      const first = Object.values(ifaces).find((i: any) => Object.values(i?.addresses ?? {}).some((a: any) => a.family === 'lladdr')) as any;
      if (first?.addresses) {
        for (const [addr, a] of Object.entries(first.addresses as Record<string, any>)) {
          if (a.family === 'lladdr') {
            delete first.addresses[addr];
            first.addresses[mac] = a;
          }
        }
      }
      await engine.updateNode(n.id, { discovery: inv });
    }
    return nodes.map((n) => n.id);
  };
  app.put('/api/test/nodes', async (req, reply) => send(reply, 'node', 'array', await loadTestDiscovery(undefined, req.body)));
  app.put<{ Params: { id: string } }>('/api/test/nodes/:id', async (req, reply) => send(reply, 'node', 'array', await loadTestDiscovery(req.params.id, req.body)));
};
