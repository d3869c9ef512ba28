/**
 * The attrib aggregate (spec §1.6): named, typed paths into JSON data. Lookups, listings
 * (role-owned or node-level), and the upsert used by barclamp import. Reading and writing
 * attrib values lives in the engine, not here.
 */
import type { Attrib } from '../domain/entities.js';
import type { Json } from '../domain/json.js';
import { NotFoundError } from '../domain/errors.js';
import { chunks, now, toJson, type Tx } from './db.js';
import { bool, toAttrib } from './rows.js';
import { didYouMean } from './barclamps.js';
import { keyAsId } from './rows.js';

export async function getAttrib(tx: Tx, idOrName: number | string): Promise<Attrib | undefined> {
  const id = keyAsId(idOrName);
  if (id !== null) {
    const row = await tx.selectFrom('attribs').selectAll().where('id', '=', id).executeTakeFirst();
    if (row || typeof idOrName === 'number') return row && toAttrib(row);
  }
  const row = await tx.selectFrom('attribs').selectAll().where('name', '=', String(idOrName)).executeTakeFirst();
  return row && toAttrib(row);
}

export async function requireAttrib(tx: Tx, idOrName: number | string): Promise<Attrib> {
  const found = await getAttrib(tx, idOrName);
  if (found) return found;
  const names = await tx.selectFrom('attribs').select('name').execute();
  throw new NotFoundError('attrib', idOrName, didYouMean(idOrName, names.map((n) => n.name)));
}

export interface AttribFilter {
  /** a role id, or null for node-level attribs; absent = any */
  roleId?: number | null;
  barclampId?: number;
}

export async function listAttribs(tx: Tx, filter: AttribFilter = {}): Promise<Attrib[]> {
  let q = tx.selectFrom('attribs').selectAll();
  if (filter.roleId === null) q = q.where('role_id', 'is', null);
  else if (filter.roleId !== undefined) q = q.where('role_id', '=', filter.roleId);
  if (filter.barclampId !== undefined) q = q.where('barclamp_id', '=', filter.barclampId);
  const rows = await q.orderBy('id').execute();
  return rows.map(toAttrib);
}

/** Attribs that live on the node (discovery/hint): role_id null. */
export function nodeLevelAttribs(tx: Tx, barclampId?: number): Promise<Attrib[]> {
  return listAttribs(tx, barclampId === undefined ? { roleId: null } : { roleId: null, barclampId });
}

export async function attribsByNames(tx: Tx, names: readonly string[]): Promise<Map<string, Attrib>> {
  const out = new Map<string, Attrib>();
  for (const part of chunks([...new Set(names)])) {
    const rows = await tx.selectFrom('attribs').selectAll().where('name', 'in', part).execute();
    for (const r of rows) out.set(r.name, toAttrib(r));
  }
  return out;
}

export interface AttribInput {
  name: string;
  description: string;
  barclamp_id: number;
  role_id: number | null;
  type: string;
  map: string;
  /** present ⇒ writable */
  schema: Json | null;
  ui_renderer: string;
  default: Json;
}

/** Find-or-create by name (names are global), then set every imported field. */
export async function upsertAttrib(tx: Tx, input: AttribInput): Promise<Attrib> {
  const stamp = now();
  const fields = {
    description: input.description,
    barclamp_id: input.barclamp_id,
    role_id: input.role_id,
    type: input.type,
    map: input.map,
    schema: input.schema === null ? null : JSON.stringify(input.schema),
    writable: bool(input.schema !== null),
    ui_renderer: input.ui_renderer,
    default: toJson({ value: input.default }),
    updated_at: stamp,
  };
  const existing = await tx.selectFrom('attribs').select('id').where('name', '=', input.name).executeTakeFirst();
  if (existing) await tx.updateTable('attribs').set(fields).where('id', '=', existing.id).execute();
  else await tx.insertInto('attribs').values({ ...fields, name: input.name, order: 10000, created_at: stamp }).execute();
  return (await getAttrib(tx, input.name))!;
}
