/**
 * The barclamp aggregate (spec §1.1): lookups by id or name and the upsert used by import.
 * Also home of the two lookup helpers every catalog file shares: id-or-name keys and the
 * "did you mean" suggestion for a name that is not found.
 */
import type { Barclamp } from '../domain/entities.js';
import type { JsonObject } from '../domain/json.js';
import { NotFoundError } from '../domain/errors.js';
import { now, toJson, type Tx } from './db.js';
import { keyAsId, toBarclamp } from './rows.js';

/** The candidate closest to `name` (edit distance), or undefined when nothing is close. */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(2, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** Hint text for NotFoundError: `did you mean 'x'?` or undefined. */
export function didYouMean(name: string | number, candidates: Iterable<string>): string | undefined {
  if (typeof name === 'number') return undefined;
  const c = closestName(name, candidates);
  return c === undefined ? undefined : `did you mean '${c}'?`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

export async function getBarclamp(tx: Tx, idOrName: number | string): Promise<Barclamp | undefined> {
  const id = keyAsId(idOrName);
  if (id !== null) {
    const row = await tx.selectFrom('barclamps').selectAll().where('id', '=', id).executeTakeFirst();
    if (row || typeof idOrName === 'number') return row && toBarclamp(row);
  }
  const row = await tx.selectFrom('barclamps').selectAll().where('name', '=', String(idOrName)).executeTakeFirst();
  return row && toBarclamp(row);
}

export async function requireBarclamp(tx: Tx, idOrName: number | string): Promise<Barclamp> {
  const found = await getBarclamp(tx, idOrName);
  if (found) return found;
  const names = await tx.selectFrom('barclamps').select('name').execute();
  throw new NotFoundError('barclamp', idOrName, didYouMean(idOrName, names.map((n) => n.name)));
}

export async function listBarclamps(tx: Tx): Promise<Barclamp[]> {
  const rows = await tx.selectFrom('barclamps').selectAll().orderBy('id').execute();
  return rows.map(toBarclamp);
}

export interface BarclampInput {
  name: string;
  description: string;
  /** parent barclamp id; null ⇒ a root barclamp, which points at itself */
  parentId: number | null;
  version: string;
  build_version: string;
  source_url: string | null;
  source_path: string | null;
  commit: string | null;
  build_on: string | null;
  cfg_data: JsonObject;
}

/** Find-or-create by name, then set every field from `input`. */
export async function upsertBarclamp(tx: Tx, input: BarclampInput): Promise<Barclamp> {
  const stamp = now();
  const fields = {
    description: input.description,
    version: input.version,
    build_version: input.build_version,
    source_url: input.source_url,
    source_path: input.source_path,
    commit: input.commit,
    build_on: input.build_on,
    cfg_data: toJson(input.cfg_data),
    updated_at: stamp,
  };
  const existing = await tx.selectFrom('barclamps').select('id').where('name', '=', input.name).executeTakeFirst();
  let id: number;
  if (existing) {
    id = existing.id;
    await tx.updateTable('barclamps').set(fields).where('id', '=', id).execute();
  } else {
    const row = await tx
      .insertInto('barclamps')
      .values({ ...fields, name: input.name, barclamp_id: input.parentId, created_at: stamp })
      .returning('id')
      .executeTakeFirstOrThrow();
    id = row.id;
  }
  await tx.updateTable('barclamps').set({ barclamp_id: input.parentId ?? id }).where('id', '=', id).execute();
  return (await getBarclamp(tx, id))!;
}
