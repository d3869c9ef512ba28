/**
 * The jig aggregate (spec §1.2): lookups, activation, and the upsert used by barclamp import.
 * Server credentials (server, client_name, key) are runtime state and never touched by import.
 */
import type { Jig } from '../domain/entities.js';
import { NotFoundError } from '../domain/errors.js';
import { now, type Tx } from './db.js';
import { bool, toJig } from './rows.js';
import { didYouMean } from './barclamps.js';
import { keyAsId } from './rows.js';

export async function getJig(tx: Tx, idOrName: number | string): Promise<Jig | undefined> {
  const id = keyAsId(idOrName);
  if (id !== null) {
    const row = await tx.selectFrom('jigs').selectAll().where('id', '=', id).executeTakeFirst();
    if (row || typeof idOrName === 'number') return row && toJig(row);
  }
  const row = await tx.selectFrom('jigs').selectAll().where('name', '=', String(idOrName)).executeTakeFirst();
  return row && toJig(row);
}

export async function requireJig(tx: Tx, idOrName: number | string): Promise<Jig> {
  const found = await getJig(tx, idOrName);
  if (found) return found;
  const names = await tx.selectFrom('jigs').select('name').execute();
  throw new NotFoundError('jig', idOrName, didYouMean(idOrName, names.map((n) => n.name)));
}

export async function listJigs(tx: Tx): Promise<Jig[]> {
  const rows = await tx.selectFrom('jigs').selectAll().orderBy('id').execute();
  return rows.map(toJig);
}

export async function setJigActive(tx: Tx, name: string, active: boolean): Promise<Jig> {
  const res = await tx
    .updateTable('jigs')
    .set({ active: bool(active), updated_at: now() })
    .where('name', '=', name)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) return requireJig(tx, name);
  return (await getJig(tx, name))!;
}

export interface JigInput {
  name: string;
  type: string;
  description: string;
  client_role_name: string | null;
  order: number;
  active: boolean;
  barclamp_id: number | null;
}

/** Find-or-create by name, then set the imported fields (credentials are left alone). */
export async function upsertJig(tx: Tx, input: JigInput): Promise<Jig> {
  const stamp = now();
  const fields = {
    type: input.type,
    description: input.description,
    client_role_name: input.client_role_name,
    order: input.order,
    active: bool(input.active),
    barclamp_id: input.barclamp_id,
    updated_at: stamp,
  };
  const existing = await tx.selectFrom('jigs').select('id').where('name', '=', input.name).executeTakeFirst();
  if (existing) await tx.updateTable('jigs').set(fields).where('id', '=', existing.id).execute();
  else await tx.insertInto('jigs').values({ ...fields, name: input.name, created_at: stamp }).execute();
  return (await getJig(tx, input.name))!;
}
