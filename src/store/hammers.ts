/**
 * Available hammers (spec §1.13): the catalog of ways to reach a node, registered by barclamp
 * import (`hammers[]`). Per-node hammer rows are not handled here.
 */
import type { AvailableHammer } from '../domain/entities.js';
import { now, type Tx } from './db.js';
import { toAvailableHammer } from './rows.js';
import { keyAsId } from './rows.js';

export async function listAvailableHammers(tx: Tx): Promise<AvailableHammer[]> {
  const rows = await tx.selectFrom('available_hammers').selectAll().orderBy('priority').orderBy('id').execute();
  return rows.map(toAvailableHammer);
}

export async function getAvailableHammer(tx: Tx, idOrName: number | string): Promise<AvailableHammer | undefined> {
  const id = keyAsId(idOrName);
  if (id !== null) {
    const row = await tx.selectFrom('available_hammers').selectAll().where('id', '=', id).executeTakeFirst();
    if (row || typeof idOrName === 'number') return row && toAvailableHammer(row);
  }
  const row = await tx.selectFrom('available_hammers').selectAll().where('name', '=', String(idOrName)).executeTakeFirst();
  return row && toAvailableHammer(row);
}

export interface AvailableHammerInput {
  name: string;
  klass: string;
  priority: number;
}

/** Find-or-create by name, then set class and priority. */
export async function upsertAvailableHammer(tx: Tx, input: AvailableHammerInput): Promise<AvailableHammer> {
  const stamp = now();
  const existing = await tx.selectFrom('available_hammers').select('id').where('name', '=', input.name).executeTakeFirst();
  if (existing) {
    await tx
      .updateTable('available_hammers')
      .set({ klass: input.klass, priority: input.priority, updated_at: stamp })
      .where('id', '=', existing.id)
      .execute();
  } else {
    await tx
      .insertInto('available_hammers')
      .values({ name: input.name, klass: input.klass, priority: input.priority, created_at: stamp, updated_at: stamp })
      .execute();
  }
  return (await getAvailableHammer(tx, input.name))!;
}
