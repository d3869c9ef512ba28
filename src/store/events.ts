/**
 * The append-only event log. Each row's id is the SSE event id; a batch of node-role state
 * changes is one row, so a 10,000-node wave costs one insert, not ten thousand.
 */
import { PostgresAdapter } from 'kysely';
import { fromJson, now, sql, toJson, type Tx } from './db.js';

export interface StoredEvent {
  id: number;
  type: string;
  payload: unknown;
  created_at: string;
}

/** PostgreSQL advisory lock key ordering event appends by commit ("CRBE") */
const EVENTS_LOCK_KEY = 0x43524245;

/**
 * Appends events; call it last in the transaction. With several writers (PostgreSQL), ids come
 * from a sequence when the insert runs, so a transaction could take id 7, another take 8 and
 * commit first, and a reader already past 8 would never see 7. A transaction-scoped lock taken
 * before the insert and held to commit hands out ids in commit order.
 */
export async function appendEvents(tx: Tx, events: Array<{ type: string; payload: unknown }>): Promise<number[]> {
  if (events.length === 0) return [];
  if (tx.getExecutor().adapter instanceof PostgresAdapter) await sql`SELECT pg_advisory_xact_lock(${EVENTS_LOCK_KEY})`.execute(tx);
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
