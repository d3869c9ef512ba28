/**
 * Groups (spec §1.14) and node membership (`node_groups`). A name is unique within its
 * category; looked up by name, the oldest group of that name wins.
 */
import type { Selectable } from 'kysely';
import type { Node } from '../domain/entities.js';
import { ConflictError, InvalidError, NotFoundError } from '../domain/errors.js';
import { now, type Tx } from './db.js';
import { keyAsId, toNode } from './rows.js';
import type { GroupTable } from './schema.js';
import { isUniqueViolation } from './users.js';

export interface Group {
  id: number;
  name: string;
  description: string;
  category: string;
  order: number;
  created_at: string;
  updated_at: string;
}

export const GROUP_CATEGORIES = ['ui', 'rack', 'tag', 'class'] as const;
export const GROUP_COLUMNS = ['id', 'name', 'description', 'category', 'order', 'created_at', 'updated_at'] as const;
const GROUP_NAME = /^[a-zA-Z][_a-zA-Z0-9]*$/;

const toGroup = (r: Selectable<GroupTable>): Group => ({ ...r });

export function validateGroupName(name: string): string {
  if (!GROUP_NAME.test(name) || name.length > 255) {
    throw new InvalidError(`'name' must start with a letter and contain only letters, digits and '_': ${JSON.stringify(name)}`, { field: 'name' });
  }
  return name;
}

export function validateGroupCategory(category: string): string {
  if (!(GROUP_CATEGORIES as readonly string[]).includes(category)) {
    throw new InvalidError(`'category' must be one of ${GROUP_CATEGORIES.join(', ')}, not ${JSON.stringify(category)}`, { field: 'category' });
  }
  return category;
}

export async function getGroup(tx: Tx, key: number | string): Promise<Group | undefined> {
  const q = tx.selectFrom('groups').selectAll();
  const id = keyAsId(key);
  const row = await (id !== null ? q.where('id', '=', id) : q.where('name', '=', String(key)).orderBy('id').limit(1)).executeTakeFirst();
  return row && toGroup(row);
}

export async function requireGroup(tx: Tx, key: number | string): Promise<Group> {
  const g = await getGroup(tx, key);
  if (!g) throw new NotFoundError('group', key);
  return g;
}

export async function listGroups(tx: Tx, filter: Partial<Record<(typeof GROUP_COLUMNS)[number], string | number | null>> = {}): Promise<Group[]> {
  let q = tx.selectFrom('groups').selectAll().orderBy('id');
  for (const [col, v] of Object.entries(filter)) {
    const c = col as (typeof GROUP_COLUMNS)[number];
    q = v === null ? q.where(c, 'is', null) : q.where(c, '=', v as never);
  }
  return (await q.execute()).map(toGroup);
}

export interface GroupFields {
  name?: string;
  description?: string;
  category?: string;
  order?: number;
}

const taken = (name: string, category: string) => new ConflictError(`group '${name}' already exists in category '${category}'`, { field: 'name' });

async function nameTaken(tx: Tx, name: string, category: string, exceptId?: number): Promise<boolean> {
  let q = tx.selectFrom('groups').select('id').where('name', '=', name).where('category', '=', category);
  if (exceptId !== undefined) q = q.where('id', '!=', exceptId);
  return (await q.executeTakeFirst()) !== undefined;
}

export async function insertGroup(tx: Tx, g: GroupFields & { name: string }): Promise<Group> {
  const name = validateGroupName(g.name);
  const category = validateGroupCategory(g.category ?? 'ui');
  if (await nameTaken(tx, name, category)) throw taken(name, category);
  const t = now();
  try {
    const row = await tx
      .insertInto('groups')
      .values({ name, description: g.description ?? '', category, order: g.order ?? 10000, created_at: t, updated_at: t })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toGroup(row);
  } catch (e) {
    if (isUniqueViolation(e)) throw taken(name, category);
    throw e;
  }
}

export async function updateGroup(tx: Tx, id: number, p: GroupFields): Promise<Group> {
  const g = await requireGroup(tx, id);
  const name = p.name === undefined ? g.name : validateGroupName(p.name);
  const category = p.category === undefined ? g.category : validateGroupCategory(p.category);
  if ((name !== g.name || category !== g.category) && (await nameTaken(tx, name, category, id))) throw taken(name, category);
  const set: Partial<Selectable<GroupTable>> = { updated_at: now() };
  if (p.name !== undefined) set.name = name;
  if (p.category !== undefined) set.category = category;
  if (p.description !== undefined) set.description = p.description;
  if (p.order !== undefined) set.order = p.order;
  try {
    await tx.updateTable('groups').set(set).where('id', '=', id).execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw taken(name, category);
    throw e;
  }
  return requireGroup(tx, id);
}

export async function deleteGroup(tx: Tx, id: number): Promise<void> {
  await tx.deleteFrom('node_groups').where('group_id', '=', id).execute();
  await tx.deleteFrom('groups').where('id', '=', id).execute();
}

/** The group's nodes (memberships of deleted nodes are not shown). */
export async function groupNodes(tx: Tx, groupId: number): Promise<Node[]> {
  const rows = await tx
    .selectFrom('node_groups')
    .innerJoin('nodes', 'nodes.id', 'node_groups.node_id')
    .selectAll('nodes')
    .where('node_groups.group_id', '=', groupId)
    .orderBy('nodes.id')
    .execute();
  return rows.map(toNode);
}

/** Adds a node to a group; adding it twice is not an error. */
export async function addNodeToGroup(tx: Tx, groupId: number, nodeId: number): Promise<void> {
  await tx.insertInto('node_groups').values({ group_id: groupId, node_id: nodeId }).onConflict((oc) => oc.columns(['node_id', 'group_id']).doNothing()).execute();
}

export async function removeNodeFromGroup(tx: Tx, groupId: number, nodeId: number): Promise<void> {
  await tx.deleteFrom('node_groups').where('group_id', '=', groupId).where('node_id', '=', nodeId).execute();
}
