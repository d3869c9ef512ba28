/**
 * Reading and writing attribs on their targets (spec §4.2–§4.3): nodes (hint/discovery),
 * roles (template), deployment-roles (wall/proposed data), node-roles (sysdata/proposed/wall).
 * User writes must be writable and pass the attrib's schema; changed values poke consumers.
 */
import type { Attrib } from '../domain/entities.js';
import { ConflictError, InvalidError, NotFoundError } from '../domain/errors.js';
import { NodeRoleState as S } from '../domain/states.js';
import { deepMerge, getPath, mergeAll, wrapPath, type Json, type JsonObject } from '../domain/json.js';
import { getDeploymentRole, getDeploymentRoleById, requireDeployment, updateDeploymentRole, ensureDeploymentRole } from '../store/deployments.js';
import { requireNode, updateNode } from '../store/nodes.js';
import { findNodeRole, listNodeRoles, requireNodeRole, updateNodeRole } from '../store/node-roles.js';
import { requireRole, setRoleTemplate } from '../store/roles.js';
import type { Tx } from '../store/db.js';
import type { Ctx } from './context.js';
import { poke } from './states.js';
import { validateKwalify } from './kwalify.js';

export type AttribTarget =
  | { kind: 'node'; id: number | string }
  | { kind: 'role'; id: number | string }
  | { kind: 'deployment'; id: number | string }
  | { kind: 'deployment_role'; id: number }
  | { kind: 'node_role'; id: number };

export type Bucket = 'all' | 'user' | 'system' | 'wall' | 'note' | 'hint' | 'discovery' | 'proposed' | 'committed';

type Resolved =
  | { kind: 'node'; id: number }
  | { kind: 'role'; id: number }
  | { kind: 'deployment_role'; id: number }
  | { kind: 'node_role'; id: number };

async function resolve(tx: Tx, attrib: Attrib, t: AttribTarget): Promise<Resolved> {
  switch (t.kind) {
    case 'node': {
      const node = await requireNode(tx, t.id);
      if (attrib.role_id === null) return { kind: 'node', id: node.id };
      const nr = await findNodeRole(tx, attrib.role_id, node.id);
      if (!nr) throw new NotFoundError('node_role', `${attrib.name}@${node.name}`, `attrib '${attrib.name}' belongs to a role that is not bound to node '${node.name}'`);
      return { kind: 'node_role', id: nr.id };
    }
    case 'role':
      return { kind: 'role', id: (await requireRole(tx, t.id)).id };
    case 'deployment': {
      const dep = await requireDeployment(tx, t.id);
      if (attrib.role_id === null) throw new InvalidError(`attrib '${attrib.name}' is node-level; read or write it on a node`);
      return { kind: 'deployment_role', id: (await ensureDeploymentRole(tx, dep.id, attrib.role_id)).id };
    }
    default:
      return t;
  }
}

/** The attrib's value on a target from the bucket asked for; the default when absent. */
export async function getAttribValue(tx: Tx, attrib: Attrib, target: AttribTarget, bucket: Bucket = 'all'): Promise<Json> {
  const r = await resolve(tx, attrib, target);
  let blob: JsonObject;
  switch (r.kind) {
    case 'node': {
      const n = await requireNode(tx, r.id);
      blob = bucket === 'note' ? n.notes : bucket === 'discovery' ? n.discovery : bucket === 'all' ? deepMerge(n.discovery, n.hint) : n.hint;
      break;
    }
    case 'role': {
      const role = await requireRole(tx, r.id);
      blob = bucket === 'note' ? role.notes : role.template;
      break;
    }
    case 'deployment_role': {
      const dr = (await getDeploymentRoleById(tx, r.id))!;
      const role = await requireRole(tx, dr.role_id);
      const data = bucket === 'committed' ? dr.committed_data : dr.proposed_data ?? dr.committed_data;
      blob = bucket === 'note' ? dr.notes : bucket === 'wall' || bucket === 'system' ? dr.wall : mergeAll(role.template, dr.wall, data);
      break;
    }
    case 'node_role': {
      const nr = await requireNodeRole(tx, r.id);
      const role = await requireRole(tx, nr.role_id);
      const dr = await getDeploymentRole(tx, nr.deployment_id, nr.role_id);
      const data = bucket === 'committed' || nr.state !== S.PROPOSED ? nr.committed_data : nr.proposed_data;
      if (bucket === 'note') blob = nr.notes;
      else if (bucket === 'wall' || bucket === 'discovery') blob = nr.wall;
      else if (bucket === 'system') blob = nr.sysdata;
      else if (bucket === 'user' || bucket === 'hint') blob = data;
      else blob = mergeAll(role.template, dr?.wall ?? {}, dr?.committed_data ?? {}, nr.wall, nr.sysdata, data);
      break;
    }
  }
  const v = getPath(blob, attrib.map);
  return v === undefined ? (attrib.default?.value ?? null) : v;
}

/** Writes an attrib value into the bucket of a target; validates user writes; pokes on change. */
export async function setAttribValue(ctx: Ctx, attrib: Attrib, target: AttribTarget, value: Json, bucket: Bucket = 'system'): Promise<void> {
  if (bucket === 'user') {
    if (!attrib.writable || attrib.schema === null) throw new ConflictError(`attrib '${attrib.name}' is read-only (it has no schema)`, { attrib: attrib.name });
    const errors = validateKwalify({ type: 'map', required: true, mapping: { [attrib.name]: attrib.schema } }, { [attrib.name]: value });
    if (errors.length) throw new InvalidError(`invalid value for attrib '${attrib.name}': ${errors.join('; ')}`, { attrib: attrib.name, errors });
  }
  const wrapped = wrapPath(attrib.map, value);
  const r = await resolve(ctx.tx, attrib, target);
  const before = await getAttribValue(ctx.tx, attrib, target, 'all');
  const changed = () => JSON.stringify(before) !== JSON.stringify(value);
  switch (r.kind) {
    case 'node': {
      const n = await requireNode(ctx.tx, r.id);
      if (bucket === 'note') await updateNode(ctx.tx, n.id, { notes: deepMerge(n.notes, wrapped) });
      else if (bucket === 'discovery') await updateNode(ctx.tx, n.id, { discovery: deepMerge(n.discovery, wrapped) });
      else await updateNode(ctx.tx, n.id, { hint: deepMerge(n.hint, wrapped) });
      if (bucket !== 'note' && changed()) await pokeWanting(ctx, attrib, n.id);
      return;
    }
    case 'role': {
      const role = await requireRole(ctx.tx, r.id);
      if (bucket === 'note') return void (await ctx.tx.updateTable('roles').set({ notes: JSON.stringify(deepMerge(role.notes, wrapped)) }).where('id', '=', role.id).execute());
      await setRoleTemplate(ctx.tx, role.id, deepMerge(role.template, wrapped));
      if (changed()) await poke(ctx, (await listNodeRoles(ctx.tx, { roleId: role.id })).map((n) => n.id));
      return;
    }
    case 'deployment_role': {
      const dr = (await getDeploymentRoleById(ctx.tx, r.id))!;
      if (bucket === 'note') return updateDeploymentRole(ctx.tx, dr.id, { notes: deepMerge(dr.notes, wrapped) });
      if (bucket === 'system' || bucket === 'wall') {
        await updateDeploymentRole(ctx.tx, dr.id, { wall: deepMerge(dr.wall, wrapped) });
        if (changed()) await poke(ctx, (await listNodeRoles(ctx.tx, { deploymentId: dr.deployment_id, roleId: dr.role_id })).map((n) => n.id));
        return;
      }
      await updateDeploymentRole(ctx.tx, dr.id, { proposed_data: deepMerge(dr.proposed_data ?? dr.committed_data, wrapped) });
      return;
    }
    case 'node_role': {
      const nr = await requireNodeRole(ctx.tx, r.id);
      if (bucket === 'note') return updateNodeRole(ctx.tx, nr.id, { notes: deepMerge(nr.notes, wrapped) });
      if (bucket === 'wall') return updateNodeRole(ctx.tx, nr.id, { wall: deepMerge(nr.wall, wrapped) });
      if (bucket === 'system') {
        await updateNodeRole(ctx.tx, nr.id, { sysdata: deepMerge(nr.sysdata, wrapped) });
        if (changed()) await poke(ctx, [nr.id]);
        return;
      }
      if (nr.state !== S.PROPOSED) {
        throw new ConflictError(`node-role ${nr.id} is not proposed; propose it (or its node) before changing its data`, { node_role: nr.id });
      }
      await updateNodeRole(ctx.tx, nr.id, { proposed_data: deepMerge(nr.proposed_data, wrapped) });
      return;
    }
  }
}

async function pokeWanting(ctx: Ctx, attrib: Attrib, nodeId: number): Promise<void> {
  const wanting = await ctx.tx.selectFrom('role_require_attribs').select('role_id').where('attrib_name', '=', attrib.name).execute();
  if (wanting.length === 0) return;
  const nrs = await listNodeRoles(ctx.tx, { nodeId, roleIds: wanting.map((w) => w.role_id) });
  await poke(ctx, nrs.map((n) => n.id));
}
