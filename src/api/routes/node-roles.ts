/**
 * /api/v2/node_roles (spec §2, §5, §11.2): list/show/sample/match, bind (POST), data (PUT, and
 * PATCH as RFC 6902 on `data`), delete (§5.6), retry/propose/commit, and two additions that
 * change no existing shape: `GET …/:id/why` (why it is not ACTIVE) and `GET …/:id/runs` (its
 * run history, newest first). Node-roles have no natural key: they are addressed by id
 * (by node and role name under /api/v2/nodes/:node/node_roles/:role).
 */
import type { RoutePlugin } from '../app.js';
import { body, key, optObject, ref, send, sendDeleted, sendList, sendObj } from '../wire.js';
import { nodeRoleJson, runJson } from '../serializers.js';
import { applyJsonPatch, matching, sampleOf } from './catalog.js';
import type { NodeRole } from '../../domain/entities.js';
import { InvalidError, NotFoundError } from '../../domain/errors.js';
import { NodeRoleState as S } from '../../domain/states.js';
import { isObject, type JsonObject } from '../../domain/json.js';
import { chunks, type Tx } from '../../store/db.js';
import { listNodeRoles, requireNodeRole, type NodeRoleFilter } from '../../store/node-roles.js';
import { requireNode } from '../../store/nodes.js';
import { requireDeployment } from '../../store/deployments.js';
import { requireRole } from '../../store/roles.js';
import { listRuns } from '../../store/runs.js';

type IdParams = { Params: { id: string } };

/** Ids of the nodes (among `nodeIds`, or all) whose derived state is ERROR: some node-role of theirs is. */
export async function nodesInError(db: Tx, nodeIds?: number[]): Promise<Set<number>> {
  const out = new Set<number>();
  const q = db.selectFrom('node_roles').select('node_id').distinct().where('state', '=', S.ERROR);
  if (nodeIds === undefined) {
    for (const r of await q.execute()) out.add(r.node_id);
    return out;
  }
  for (const c of chunks([...new Set(nodeIds)])) {
    if (c.length) for (const r of await q.where('node_id', 'in', c).execute()) out.add(r.node_id);
  }
  return out;
}

/** Node-roles as wire objects, with `node_error` (spec §1.10). */
export async function nodeRolesOut(db: Tx, nrs: NodeRole[]) {
  const errs = await nodesInError(db, nrs.length > 5000 ? undefined : nrs.map((n) => n.node_id));
  return nrs.map((nr) => nodeRoleJson(nr, errs.has(nr.node_id)));
}

/** `:id` of a node-role: numeric only. */
function nodeRoleId(raw: string): number {
  const k = key(raw);
  if (typeof k !== 'number') {
    throw new NotFoundError('node_role', raw, 'node-roles are addressed by numeric id, or as /api/v2/nodes/<node>/node_roles/<role>');
  }
  return k;
}

function dataOf(b: Record<string, unknown>): JsonObject | undefined {
  return optObject(b, 'data') as JsonObject | undefined;
}

export const nodeRolesRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'node_role';
  const one = async (raw: string) => requireNodeRole(engine.db, nodeRoleId(raw));
  const out = async (nr: NodeRole) => (await nodeRolesOut(engine.db, [nr]))[0];

  /** `?node=`, `?deployment=`, `?role=` (ids or names) narrow the list; `?runlog=N` truncates run logs (not of ERROR ones) to N characters. */
  app.get<{ Querystring: Record<string, string | undefined> }>('/api/v2/node_roles', async (req, reply) => {
    const q = req.query;
    const f: NodeRoleFilter = {};
    if (q['node'] ?? q['node_id']) f.nodeId = (await requireNode(engine.db, key(String(q['node'] ?? q['node_id'])))).id;
    if (q['deployment'] ?? q['deployment_id']) f.deploymentId = (await requireDeployment(engine.db, key(String(q['deployment'] ?? q['deployment_id'])))).id;
    if (q['role'] ?? q['role_id']) f.roleId = (await requireRole(engine.db, key(String(q['role'] ?? q['role_id'])))).id;
    let list = await nodeRolesOut(engine.db, await listNodeRoles(engine.db, f));
    if (q['runlog'] !== undefined) {
      const n = q['runlog'] === '' ? 80 : Number(q['runlog']);
      if (!Number.isInteger(n) || n < 0) throw new InvalidError(`'runlog' must be a number of characters`, { field: 'runlog' });
      list = list.map((o) => (o.state === S.ERROR ? o : { ...o, runlog: o.runlog.slice(0, n) }));
    }
    return sendList(reply, T, list);
  });

  app.get('/api/v2/node_roles/sample', async (_req, reply) =>
    sendObj(reply, T, sampleOf({
      deployment_id: null, role_id: null, node_id: null, state: S.PROPOSED, cohort: 0, run_count: 0, status: null, runlog: '',
      available: true, order: 10000, node_error: false,
    })));

  app.post('/api/v2/node_roles/match', async (req, reply) =>
    sendList(reply, T, matching(await nodeRolesOut(engine.db, await listNodeRoles(engine.db)), body(req))));

  app.get<IdParams>('/api/v2/node_roles/:id', async (req, reply) => sendObj(reply, T, await out(await one(req.params.id))));

  /** Bind (spec §5.2): `{node|node_id, role|role_id, deployment|deployment_id?, data?}`; a refused binding is a 409 naming role, node and reason. */
  app.post('/api/v2/node_roles', async (req, reply) => {
    const b = body(req);
    const node = ref(b, 'node');
    if (node === undefined) throw new InvalidError(`'node' (or 'node_id') is required`, { field: 'node' });
    const role = ref(b, 'role');
    if (role === undefined) throw new InvalidError(`'role' (or 'role_id') is required`, { field: 'role' });
    const nr = await engine.bindWithData(role, node, ref(b, 'deployment'), dataOf(b));
    return sendObj(reply, T, await out(nr));
  });

  /** PUT `{data}` (only while PROPOSED); PATCH applies RFC 6902 operations under `/data`. */
  for (const method of ['put', 'patch'] as const) {
    app[method]<IdParams>('/api/v2/node_roles/:id', async (req, reply) => {
      const nr = await one(req.params.id);
      let data: JsonObject | undefined;
      if (method === 'patch' && Array.isArray(req.body)) {
        const current = nr.state === S.PROPOSED ? nr.proposed_data : nr.committed_data;
        const patched = applyJsonPatch({ data: current }, req.body, { ops: ['add', 'replace', 'remove', 'test'], paths: ['/data'] });
        if (!isObject(patched['data'])) throw new InvalidError(`'data' must stay a JSON object`, { field: 'data' });
        data = patched['data'];
      } else {
        data = dataOf(body(req));
      }
      const after = data === undefined ? nr : await engine.setNodeRoleData(nr.id, data);
      return sendObj(reply, T, await out(after));
    });
  }

  app.delete<IdParams>('/api/v2/node_roles/:id', async (req, reply) => {
    const nr = await one(req.params.id);
    await engine.deleteNodeRole(nr.id);
    return sendDeleted(reply, T, `node_role ${nr.id}`);
  });

  const actions: Record<string, (id: number) => Promise<NodeRole>> = {
    retry: (id) => engine.retryNodeRole(id),
    propose: (id) => engine.proposeNodeRole(id),
    commit: (id) => engine.commitNodeRole(id),
  };
  for (const [action, run] of Object.entries(actions)) {
    app.put<IdParams>(`/api/v2/node_roles/:id/${action}`, async (req, reply) => sendObj(reply, T, await out(await run((await one(req.params.id)).id))));
  }

  /** Why it is not ACTIVE: `{id, state, reasons: [{reason, …}]}` (empty reasons when ACTIVE). */
  app.get<IdParams>('/api/v2/node_roles/:id/why', async (req, reply) => {
    const nr = await one(req.params.id);
    const why = await engine.why(nr.id);
    return send(reply, 'node_role_why', 'obj', { id: nr.id, ...why });
  });

  /** Run history, newest first: inputs with provenance, wall, log, exit status, timings. `?limit=N`. */
  app.get<IdParams & { Querystring: { limit?: string } }>('/api/v2/node_roles/:id/runs', async (req, reply) => {
    const nr = await one(req.params.id);
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new InvalidError(`'limit' must be a positive integer`, { field: 'limit' });
    return sendList(reply, 'run', (await listRuns(engine.db, { nodeRoleId: nr.id, limit })).map(runJson));
  });
};
