/**
 * Nodes: lookup by id or (case-insensitive) name, create, update of flags and JSON buckets,
 * and hammer bindings of a node.
 */
import type { Hammer, Node } from '../domain/entities.js';
import { NotFoundError } from '../domain/errors.js';
import type { JsonObject } from '../domain/json.js';
import { now, toJson, type Tx } from './db.js';
import { bool, keyAsId, toHammer, toNode, toNodeShown, NODE_SHOWN_COLUMNS, type NodeShown } from './rows.js';

export async function getNode(tx: Tx, key: number | string): Promise<Node | undefined> {
  const q = tx.selectFrom('nodes').selectAll();
  const id = keyAsId(key);
  const row = await (id !== null ? q.where('id', '=', id) : q.where('name', '=', String(key).toLowerCase())).executeTakeFirst();
  return row && toNode(row);
}

const NO_DISCOVERY = [
  'id', 'name', 'description', 'order', 'admin', 'system', 'target_role_id', 'deployment_id', 'hint', 'notes', 'quirks',
  'allocated', 'alive', 'available', 'bootenv', 'created_at', 'updated_at',
] as const;

/**
 * A node without its discovery blob (inventory runs to tens of kilobytes per node, and hot
 * paths such as staging and hammer lookup rarely need it): `discovery` is left empty.
 */
export function getNodeLite(tx: Tx, id: number): Promise<Node | undefined> {
  return getNodeLiteByKey(tx, id);
}

/** A node by id or name (lower-cased), without its discovery blob: what the API shows of a node. */
export async function getNodeLiteByKey(tx: Tx, key: number | string): Promise<Node | undefined> {
  const q = tx.selectFrom('nodes').select(NO_DISCOVERY);
  const id = keyAsId(key);
  const row = await (id !== null ? q.where('id', '=', id) : q.where('name', '=', String(key).toLowerCase())).executeTakeFirst();
  return row && toNode({ ...row, discovery: '{}' });
}

/** Every node as the API shows it (NODE_SHOWN_COLUMNS): no discovery blobs (~130 MB of JSON for 10,000 sim nodes). */
export async function listNodesShown(tx: Tx, filter: { deploymentId?: number } = {}): Promise<NodeShown[]> {
  let q = tx.selectFrom('nodes').select(NODE_SHOWN_COLUMNS).orderBy('id');
  if (filter.deploymentId !== undefined) q = q.where('deployment_id', '=', filter.deploymentId);
  return (await q.execute()).map(toNodeShown);
}

export async function nodeDiscovery(tx: Tx, id: number): Promise<JsonObject> {
  const row = await tx.selectFrom('nodes').select('discovery').where('id', '=', id).executeTakeFirst();
  return row ? (JSON.parse(row.discovery) as JsonObject) : {};
}

export async function requireNode(tx: Tx, key: number | string): Promise<Node> {
  const n = await getNode(tx, key);
  if (!n) throw new NotFoundError('node', key);
  return n;
}

export async function listNodes(tx: Tx, filter: { deploymentId?: number } = {}): Promise<Node[]> {
  let q = tx.selectFrom('nodes').selectAll().orderBy('id');
  if (filter.deploymentId !== undefined) q = q.where('deployment_id', '=', filter.deploymentId);
  return (await q.execute()).map(toNode);
}

export interface NewNode {
  name: string;
  description?: string;
  admin?: boolean;
  system?: boolean;
  deployment_id: number;
  alive?: boolean;
  available?: boolean;
  allocated?: boolean;
  bootenv?: string;
  discovery?: JsonObject;
  hint?: JsonObject;
  quirks?: string[];
  order?: number;
}

export async function insertNode(tx: Tx, n: NewNode): Promise<Node> {
  const t = now();
  const row = await tx
    .insertInto('nodes')
    .values({
      name: n.name.toLowerCase(),
      description: n.description ?? '',
      admin: bool(n.admin),
      system: bool(n.system),
      deployment_id: n.deployment_id,
      alive: bool(n.alive),
      available: bool(n.available),
      allocated: bool(n.allocated),
      bootenv: n.bootenv ?? 'sledgehammer',
      discovery: toJson(n.discovery ?? {}),
      hint: toJson(n.hint ?? {}),
      quirks: JSON.stringify(n.quirks ?? []),
      order: n.order ?? 10000,
      created_at: t,
      updated_at: t,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toNode(row);
}

export interface NodePatch {
  name?: string;
  description?: string;
  admin?: boolean;
  alive?: boolean;
  available?: boolean;
  allocated?: boolean;
  bootenv?: string;
  deployment_id?: number;
  target_role_id?: number | null;
  discovery?: JsonObject;
  hint?: JsonObject;
  notes?: JsonObject;
  quirks?: string[];
}

export async function updateNode(tx: Tx, id: number, p: NodePatch): Promise<void> {
  const set: Record<string, unknown> = { updated_at: now() };
  for (const k of ['admin', 'alive', 'available', 'allocated'] as const) if (p[k] !== undefined) set[k] = bool(p[k]);
  for (const k of ['description', 'bootenv', 'deployment_id', 'target_role_id'] as const) if (p[k] !== undefined) set[k] = p[k];
  if (p.name !== undefined) set.name = p.name.toLowerCase();
  for (const k of ['discovery', 'hint', 'notes'] as const) if (p[k] !== undefined) set[k] = toJson(p[k]);
  if (p.quirks !== undefined) set.quirks = JSON.stringify(p.quirks);
  await tx.updateTable('nodes').set(set).where('id', '=', id).execute();
}

export async function nodesByIds(tx: Tx, ids: number[]): Promise<Map<number, Node>> {
  const out = new Map<number, Node>();
  if (ids.length === 0) return out;
  for (const row of await tx.selectFrom('nodes').selectAll().where('id', 'in', ids).execute()) out.set(row.id, toNode(row));
  return out;
}

export async function nodeHammers(tx: Tx, nodeId: number): Promise<Hammer[]> {
  return (await tx.selectFrom('hammers').selectAll().where('node_id', '=', nodeId).orderBy('priority', 'desc').execute()).map(toHammer);
}

export async function bindHammer(
  tx: Tx,
  h: { node_id: number; available_hammer_id: number; priority: number; type: string; name: string; username: string; endpoint?: string | null },
): Promise<Hammer> {
  const existing = await tx.selectFrom('hammers').selectAll().where('node_id', '=', h.node_id).where('type', '=', h.type).executeTakeFirst();
  if (existing) return toHammer(existing);
  const t = now();
  const row = await tx
    .insertInto('hammers')
    .values({ ...h, endpoint: h.endpoint ?? null, authenticator: null, created_at: t, updated_at: t })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toHammer(row);
}
