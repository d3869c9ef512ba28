/**
 * The append-only event log. Each row's id is the SSE event id; a batch of node-role state
 * changes is one row, so a 10,000-node wave costs one insert, not ten thousand.
 */
import { fromJson, now, toJson, type Tx } from './db.js';

export interface StoredEvent {
  id: number;
  type: string;
  payload: unknown;
  created_at: string;
}

export async function appendEvents(tx: Tx, events: Array<{ type: string; payload: unknown }>): Promise<number[]> {
  if (events.length === 0) return [];
  const t = now();
  const rows = await tx
    .insertInto('events')
    .values(events.map((e) => ({ type: e.type, payload: toJson(e.payload), created_at: t })))
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

export async function eventsAfter(tx: Tx, afterId: number, limit = 1000): Promise<StoredEvent[]> {
  const rows = await tx.selectFrom('events').selectAll().where('id', '>', afterId).orderBy('id').limit(limit).execute();
  return rows.map((r) => ({ ...r, payload: fromJson(r.payload, null) }));
}

export async function lastEventId(tx: Tx): Promise<number> {
  const row = await tx.selectFrom('events').select((eb) => eb.fn.max('id').as('max')).executeTakeFirst();
  return Number(row?.max ?? 0);
}
