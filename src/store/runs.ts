/**
 * Run history: one row per execution of a node-role by its jig, with inputs, provenance,
 * wall, log, exit status and timings. Rows in `running`/`async` are the in-flight set.
 */
import type { Run } from '../domain/entities.js';
import { NotFoundError } from '../domain/errors.js';
import { chunks, now, toJson, type Tx } from './db.js';
import { toRun } from './rows.js';

export async function getRun(tx: Tx, id: number): Promise<Run | undefined> {
  const row = await tx.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toRun(row);
}

export async function requireRun(tx: Tx, id: number): Promise<Run> {
  const r = await getRun(tx, id);
  if (!r) throw new NotFoundError('run', id);
  return r;
}

export async function listRuns(tx: Tx, f: { nodeRoleId?: number; nodeId?: number; statuses?: string[]; limit?: number } = {}): Promise<Run[]> {
  let q = tx.selectFrom('runs').selectAll().orderBy('id', 'desc');
  if (f.nodeRoleId !== undefined) q = q.where('node_role_id', '=', f.nodeRoleId);
  if (f.nodeId !== undefined) q = q.where('node_id', '=', f.nodeId);
  if (f.statuses) q = q.where('status', 'in', f.statuses);
  if (f.limit) q = q.limit(f.limit);
  return (await q.execute()).map(toRun);
}

export interface RunEnd {
  id: number;
  status: string;
  wall?: unknown;
  log?: string;
  exit_status?: number | null;
  error?: string | null;
}

/** Records the end of many runs; groups identical updates so a noop wave is a few statements. */
export async function endRuns(tx: Tx, ends: RunEnd[]): Promise<void> {
  const t = now();
  const simple = ends.filter((e) => e.wall === undefined && !e.log && e.error == null && e.exit_status == null);
  const byStatus = new Map<string, number[]>();
  for (const e of simple) byStatus.set(e.status, [...(byStatus.get(e.status) ?? []), e.id]);
  for (const [status, ids] of byStatus) {
    for (const c of chunks(ids)) {
      await tx.updateTable('runs').set({ status, ended_at: t, lease_until: null }).where('id', 'in', c).execute();
    }
  }
  for (const e of ends) {
    if (simple.includes(e)) continue;
    await tx
      .updateTable('runs')
      .set({
        status: e.status,
        ended_at: t,
        lease_until: null,
        wall: e.wall === undefined ? null : toJson(e.wall),
        log: e.log ?? '',
        exit_status: e.exit_status ?? null,
        error: e.error ?? null,
      })
      .where('id', '=', e.id)
      .execute();
  }
}

export async function setRunInputs(tx: Tx, id: number, inputs: unknown, provenance: unknown): Promise<void> {
  await tx.updateTable('runs').set({ inputs: toJson(inputs), provenance: toJson(provenance), started_at: now() }).where('id', '=', id).execute();
}

export async function renewLeases(tx: Tx, ids: number[], leaseUntil: string): Promise<void> {
  for (const c of chunks(ids)) await tx.updateTable('runs').set({ lease_until: leaseUntil }).where('id', 'in', c).where('status', '=', 'running').execute();
}

/**
 * If the node-role was asked to replay a run, returns that run's recorded inputs and provenance
 * and clears the request (so only the next run replays).
 */
export async function takeReplay(tx: Tx, nodeRoleId: number): Promise<{ runId: number; inputs: unknown; provenance: unknown } | undefined> {
  const nr = await tx.selectFrom('node_roles').select('replay_of').where('id', '=', nodeRoleId).executeTakeFirst();
  if (!nr?.replay_of) return undefined;
  await tx.updateTable('node_roles').set({ replay_of: null }).where('id', '=', nodeRoleId).execute();
  const run = await tx.selectFrom('runs').select(['id', 'inputs', 'provenance']).where('id', '=', nr.replay_of).executeTakeFirst();
  if (!run?.inputs) return undefined;
  return { runId: run.id, inputs: JSON.parse(run.inputs), provenance: run.provenance ? JSON.parse(run.provenance) : {} };
}

export async function setRunReplayOf(tx: Tx, id: number, replayOf: number): Promise<void> {
  await tx.updateTable('runs').set({ replay_of: replayOf }).where('id', '=', id).execute();
}
