/**
 * /api/v2/attribs (spec §4.2–§4.3, §11.2): the attrib catalog (list, show, sample, match) and
 * attrib values on a target — nodes, roles, node_roles, deployments, deployment_roles — under
 * `/api/v2/<targets>/:id/attribs`. Reads take `?bucket=` (default `all`); writes go to the
 * `user` bucket (or `note`) and are schema-validated by the engine; PATCH is an RFC 6902 patch
 * of the attrib's JSON that may only change `value`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RoutePlugin } from '../app.js';
import { body, key, send, sendList, sendObj, type Body } from '../wire.js';
import { attribJson } from '../serializers.js';
import { applyJsonPatch, matching, notSupported, sampleOf } from './catalog.js';
import type { Attrib } from '../../domain/entities.js';
import { isObject, type Json, type JsonObject } from '../../domain/json.js';
import { InvalidError, NotFoundError } from '../../domain/errors.js';
import { getAttribValue, type AttribTarget, type Bucket } from '../../engine/attribs.js';
import { listAttribs, requireAttrib } from '../../store/attribs.js';
import { requireNode } from '../../store/nodes.js';
import { requireRole } from '../../store/roles.js';
import { requireNodeRole } from '../../store/node-roles.js';
import { getDeploymentRole, getDeploymentRoleById, requireDeployment } from '../../store/deployments.js';
import { chunks, type Tx } from '../../store/db.js';
import { toAttrib } from '../../store/rows.js';

const T = 'attrib';
const BUCKETS: readonly Bucket[] = ['all', 'user', 'system', 'wall', 'note', 'hint', 'discovery', 'proposed', 'committed'];

/** Path segment → target kind. */
const TARGETS = {
  nodes: 'node',
  roles: 'role',
  node_roles: 'node_role',
  deployments: 'deployment',
  deployment_roles: 'deployment_role',
} as const;
type Kind = (typeof TARGETS)[keyof typeof TARGETS];

/** A target resolved to its row id, and for a deployment its id (reads go through its deployment-roles). */
interface Target {
  kind: Kind;
  id: number;
  /** `{node_id}` of a nested show: the node when the target is a node, else null */
  nodeId: number | null;
}

async function resolveTarget(tx: Tx, kind: Kind, raw: string): Promise<Target> {
  const k = key(raw);
  const numeric = (what: string) => {
    if (typeof k !== 'number') throw new NotFoundError(what, raw, `${what.replace('_', '-')}s are addressed by id`);
    return k;
  };
  switch (kind) {
    case 'node': {
      const id = (await requireNode(tx, k)).id;
      return { kind, id, nodeId: id };
    }
    case 'role':
      return { kind, id: (await requireRole(tx, k)).id, nodeId: null };
    case 'deployment':
      return { kind, id: (await requireDeployment(tx, k)).id, nodeId: null };
    case 'node_role':
      return { kind, id: (await requireNodeRole(tx, numeric('node_role'))).id, nodeId: null };
    case 'deployment_role': {
      const dr = await getDeploymentRoleById(tx, numeric('deployment_role'));
      if (!dr) throw new NotFoundError('deployment_role', raw);
      return { kind, id: dr.id, nodeId: null };
    }
  }
}

/** The attribs a target has: a node's own (role-less) attribs and those of its bound roles; a deployment's roles'; a role's. */
async function attribsOf(tx: Tx, t: Target): Promise<Attrib[]> {
  let roleIds: number[];
  switch (t.kind) {
    case 'node': {
      const bound = await tx.selectFrom('node_roles').select('role_id').distinct().where('node_id', '=', t.id).execute();
      roleIds = bound.map((b) => b.role_id);
      const own = await listAttribs(tx, { roleId: null });
      return [...own, ...(await attribsOfRoles(tx, roleIds))].sort((a, b) => a.id - b.id);
    }
    case 'deployment': {
      const drs = await tx.selectFrom('deployment_roles').select('role_id').where('deployment_id', '=', t.id).execute();
      return attribsOfRoles(tx, drs.map((d) => d.role_id));
    }
    case 'role':
      return listAttribs(tx, { roleId: t.id });
    case 'node_role':
      return listAttribs(tx, { roleId: (await requireNodeRole(tx, t.id)).role_id });
    case 'deployment_role':
      return listAttribs(tx, { roleId: (await getDeploymentRoleById(tx, t.id))!.role_id });
  }
}

async function attribsOfRoles(tx: Tx, roleIds: number[]): Promise<Attrib[]> {
  const out: Attrib[] = [];
  for (const part of chunks([...new Set(roleIds)])) {
    if (part.length === 0) continue;
    out.push(...(await tx.selectFrom('attribs').selectAll().where('role_id', 'in', part).execute()).map(toAttrib));
  }
  return out.sort((a, b) => a.id - b.id);
}

/**
 * The engine target for reading `attrib` on `t`. A deployment reads through its deployment-role
 * for the attrib's role and never creates one (reads write nothing).
 */
async function readTarget(tx: Tx, attrib: Attrib, t: Target): Promise<AttribTarget> {
  if (t.kind !== 'deployment') return { kind: t.kind, id: t.id };
  if (attrib.role_id === null) throw new InvalidError(`attrib '${attrib.name}' is node-level; read or write it on a node`, { attrib: attrib.name });
  const dr = await getDeploymentRole(tx, t.id, attrib.role_id);
  if (!dr) {
    const role = await requireRole(tx, attrib.role_id);
    throw new NotFoundError('deployment_role', `${role.name}@${t.id}`, `attrib '${attrib.name}' belongs to role '${role.name}', which is not in this deployment`);
  }
  return { kind: 'deployment_role', id: dr.id };
}

function engineTarget(t: Target): AttribTarget {
  return { kind: t.kind, id: t.id };
}

function bucketOf(raw: unknown, fallback: Bucket): Bucket {
  if (raw === undefined || raw === null || raw === '') return fallback;
  if (typeof raw === 'string' && (BUCKETS as readonly string[]).includes(raw)) return raw as Bucket;
  throw new InvalidError(`unknown bucket ${JSON.stringify(raw)} (buckets: ${BUCKETS.join(', ')})`, { field: 'bucket' });
}

/**
 * Scalars arrive as strings from the original clients (`{"value":"5"}`): coerce them to the
 * type the attrib's schema declares at its top level (int, float/number, bool).
 */
export function coerceToSchema(schema: Json | null, value: Json): Json {
  if (typeof value !== 'string' || !isObject(schema)) return value;
  const type = schema['type'];
  const s = value.trim();
  if (type === 'int' && /^-?\d+$/.test(s)) return Number(s);
  if ((type === 'float' || type === 'number') && s !== '' && Number.isFinite(Number(s))) return Number(s);
  if ((type === 'bool' || type === 'boolean') && (s === 'true' || s === 'false')) return s === 'true';
  return value;
}

// Routes //////////////////////////////////////////////////////////////////////////////////////////

type NestedParams = { Params: { id: string; attrib_id: string }; Querystring: { bucket?: string } };

export const attribsRoutes: RoutePlugin = (app, { engine }) => {
  // the catalog
  app.get('/api/v2/attribs', async (_req, reply) => sendList(reply, T, (await listAttribs(engine.db)).map((a) => attribJson(a))));
  app.get('/api/v2/attribs/sample', async (_req, reply) =>
    sendObj(reply, T, sampleOf({
      type: 'Attrib', name: '', description: '', writable: false, schema: null, order: 10000, map: '', ui_renderer: 'attribs/default', default: { value: null },
    })));
  app.post('/api/v2/attribs/match', async (req, reply) => sendList(reply, T, matching((await listAttribs(engine.db)).map((a) => attribJson(a)), body(req))));
  app.get<{ Params: { id: string } }>('/api/v2/attribs/:id', async (req, reply) => sendObj(reply, T, attribJson(await requireAttrib(engine.db, key(req.params.id)))));
  app.post('/api/v2/attribs', notSupported('creating an attrib (attribs come from barclamps)'));
  for (const m of ['put', 'patch', 'delete'] as const) {
    app[m]('/api/v2/attribs/:id', notSupported(`${m.toUpperCase()} /api/v2/attribs/:id (write an attrib's value on its node, role, node_role, deployment or deployment_role)`));
  }

  // values on a target
  for (const [segment, kind] of Object.entries(TARGETS) as Array<[keyof typeof TARGETS, Kind]>) {
    const base = `/api/v2/${segment}/:id/attribs`;

    app.get<NestedParams>(base, async (req, reply) => {
      const bucket = bucketOf(req.query.bucket, 'all');
      const db = engine.db;
      const t = await resolveTarget(db, kind, req.params.id);
      const list = await attribsOf(db, t);
      const out = [];
      for (const a of list) out.push(attribJson(a, await getAttribValue(db, a, await readTarget(db, a, t), bucket)));
      return sendList(reply, T, out);
    });

    app.get<NestedParams>(`${base}/:attrib_id`, async (req, reply) => {
      const bucket = bucketOf(req.query.bucket, 'all');
      const db = engine.db;
      const t = await resolveTarget(db, kind, req.params.id);
      const a = await requireAttrib(db, key(req.params.attrib_id));
      const value = await getAttribValue(db, a, await readTarget(db, a, t), bucket);
      // the original adds node_id on a nested show, so clients can refer back to the node
      return sendObj(reply, T, { ...attribJson(a, value), node_id: t.nodeId });
    });

    const write = async (req: FastifyRequest<NestedParams>, reply: FastifyReply) => {
      const t = await resolveTarget(engine.db, kind, req.params.id);
      const a = await requireAttrib(engine.db, key(req.params.attrib_id));
      let b: Body = {};
      let value: Json | undefined;
      if (req.method === 'PATCH') {
        if (!Array.isArray(req.body)) throw new InvalidError("PATCH takes an RFC 6902 JSON Patch array that changes '/value', e.g. [{\"op\":\"replace\",\"path\":\"/value\",\"value\":…}]");
        const current = attribJson(a, await getAttribValue(engine.db, a, await readTarget(engine.db, a, t), 'all')) as JsonObject;
        value = applyJsonPatch(current, req.body, { ops: ['add', 'replace'], paths: ['/value'] })['value'];
      } else {
        b = body(req);
        const nested = isObject((b['attrib'] ?? null) as Json) ? (b['attrib'] as JsonObject) : undefined;
        value = (b['value'] ?? nested?.['value']) as Json | undefined;
        if (value === undefined) throw new InvalidError("'value' is required", { field: 'value' });
      }
      const bucket = bucketOf(b['bucket'] ?? (req.query as { bucket?: string }).bucket, 'user');
      if (bucket !== 'user' && bucket !== 'note') {
        return send(reply, 'error', 'error', { message: `writing the '${bucket}' bucket over the API is not supported (use user or note)`, status: 405 }, 405);
      }
      const v = coerceToSchema(a.schema, value ?? null);
      await engine.setAttrib(a.id, engineTarget(t), v, bucket);
      return sendObj(reply, T, attribJson(a, v));
    };
    app.put<NestedParams>(`${base}/:attrib_id`, write);
    app.patch<NestedParams>(`${base}/:attrib_id`, write);
  }
};
