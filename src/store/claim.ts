/**
 * The annealer's claim: pick runnable node-roles (TODO, deployment committed, node alive and
 * available, jig active, node below its concurrency limit), lowest cohort then id, move them to
 * TRANSITION and open a run row for each — in the caller's transaction. On PostgreSQL the
 * candidates (and their nodes) are locked with SKIP LOCKED so several annealers never claim
 * the same node-role; SQLite has a single writer and needs no locking clause.
 */
import { sql } from 'kysely';
import { NodeRoleState as S } from '../domain/states.js';
import { chunks, now, type Capabilities, type Tx } from './db.js';

export interface ClaimOptions {
  worker: string;
  /** claims for jigs that hold a slot (everything but inline jigs) */
  slots: number;
  /** claims for inline jigs (noop) in this batch */
  inlineLimit: number;
  inlineJigs: string[];
  perNode: number;
  /** jig names that may run; null = any (dev mode: the test jig stands in) */
  jigs: string[] | null;
  haltNodeOnError: boolean;
  /** maps a role's jig name to the jig that will run it (dev mode substitutes `test`) */
  effectiveJig(jigName: string): string;
}

export interface Claim {
  nodeRoleId: number;
  nodeId: number;
  roleId: number;
  deploymentId: number;
  jigName: string;
  runCount: number;
  cohort: number;
  destructive: boolean;
  /** set once the run row exists */
  runId: number;
}

/** Finds runnable node-roles and picks a batch within the budgets (locks them on PostgreSQL). */
export async function claimRunnable(tx: Tx, caps: Capabilities, o: ClaimOptions): Promise<Claim[]> {
  if (o.slots <= 0 && o.inlineLimit <= 0) return [];
  // no jig may run (PostgreSQL also refuses a NUL placeholder in an IN list)
  if (o.jigs && o.jigs.length === 0) return [];
  const scan = Math.max(o.slots, 0) + Math.max(o.inlineLimit, 0);
  let q = tx
    .selectFrom('node_roles as nr')
    .innerJoin('nodes as n', 'n.id', 'nr.node_id')
    .innerJoin('deployments as d', 'd.id', 'nr.deployment_id')
    .innerJoin('roles as r', 'r.id', 'nr.role_id')
    .select([
      'nr.id',
      'nr.node_id',
      'nr.role_id',
      'nr.deployment_id',
      'nr.run_count',
      'nr.cohort',
      'r.jig_name',
      'r.destructive',
      // with one run per node, a row that passes the filter below has nothing in flight on its
      // node: counting again per row would cost an index probe for nothing
      o.perNode === 1
        ? sql<number>`0`.as('busy')
        : (eb) =>
            eb
              .selectFrom('node_roles as t')
              .select((e) => e.fn.countAll<number>().as('c'))
              .whereRef('t.node_id', '=', 'nr.node_id')
              .where('t.state', '=', S.TRANSITION)
              .as('busy'),
    ])
    .where('nr.state', '=', S.TODO)
    .where('nr.available', '=', 1)
    .where('d.state', '=', 1)
    .where('n.alive', '=', 1)
    .where('n.available', '=', 1)
    .where(
      (eb) =>
        eb
          .selectFrom('node_roles as t')
          .select((e) => e.fn.countAll<number>().as('c'))
          .whereRef('t.node_id', '=', 'nr.node_id')
          .where('t.state', '=', S.TRANSITION),
      '<',
      o.perNode,
    )
    .orderBy('nr.cohort')
    .orderBy('nr.id')
    // a small margin over the budget leaves room for rows the per-node pass below skips
    .limit(scan + 256);
  if (o.jigs) q = q.where('r.jig_name', 'in', o.jigs);
  if (o.haltNodeOnError) {
    q = q.where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('node_roles as e').select('e.id').whereRef('e.node_id', '=', 'nr.node_id').where('e.state', '=', S.ERROR))),
    );
  }
  const rows = await q.execute();

  // one pass in (cohort, id) order: respect per-node limits and the two budgets
  const pick = (candidates: typeof rows, busy: (nodeId: number, snapshot: number) => number) => {
    const perNode = new Map<number, number>();
    const inline = new Set(o.inlineJigs);
    let slots = o.slots;
    let inl = o.inlineLimit;
    const out: typeof rows = [];
    for (const r of candidates) {
      const used = perNode.get(r.node_id) ?? busy(r.node_id, Number(r.busy));
      if (used >= o.perNode) continue;
      if (inline.has(o.effectiveJig(r.jig_name))) {
        if (inl <= 0) continue;
        inl--;
      } else {
        if (slots <= 0) continue;
        slots--;
      }
      perNode.set(r.node_id, used + 1);
      out.push(r);
    }
    return out;
  };
  let picked = pick(rows, (_n, snapshot) => snapshot);

  if (caps.skipLocked && picked.length) {
    // Lock only what we mean to claim (and its nodes): another annealer skips these rows and
    // claims the rest of the window instead of waiting or finding nothing.
    const locked = new Set<number>();
    for (const c of chunks(picked.map((p) => p.id))) {
      const got = await tx
        .selectFrom('node_roles as nr')
        .innerJoin('nodes as n', 'n.id', 'nr.node_id')
        .select('nr.id')
        .where('nr.id', 'in', c)
        .where('nr.state', '=', S.TODO)
        .modifyEnd(sql`for update of nr, n skip locked`)
        .execute();
      for (const g of got) locked.add(g.id);
    }
    // The window's `busy` came from a snapshot that may predate another annealer's committed
    // claim on the same node; now that we hold the node locks, a new statement sees them all.
    const busyNow = new Map<number, number>();
    const lockedRows = picked.filter((p) => locked.has(p.id));
    for (const c of chunks([...new Set(lockedRows.map((r) => r.node_id))])) {
      const counts = await tx
        .selectFrom('node_roles')
        .select(['node_id', (e) => e.fn.countAll<number>().as('c')])
        .where('node_id', 'in', c)
        .where('state', '=', S.TRANSITION)
        .groupBy('node_id')
        .execute();
      for (const r of counts) busyNow.set(r.node_id, Number(r.c));
    }
    picked = pick(lockedRows, (nodeId) => busyNow.get(nodeId) ?? 0);
  }
  return picked.map((p) => ({
    nodeRoleId: p.id,
    nodeId: p.node_id,
    roleId: p.role_id,
    deploymentId: p.deployment_id,
    jigName: o.effectiveJig(p.jig_name),
    runCount: p.run_count,
    cohort: p.cohort,
    destructive: p.destructive === 1,
    runId: 0,
  }));
}

/** Moves claimed node-roles to TRANSITION and opens a `running` run for each (sets `runId`). */
export async function startRuns(tx: Tx, claims: Claim[], worker: string, leaseUntil: string): Promise<void> {
  const t = now();
  for (const c of chunks(claims.map((p) => p.nodeRoleId))) {
    await tx.updateTable('node_roles').set({ state: S.TRANSITION, runlog: '', updated_at: t }).where('id', 'in', c).execute();
  }
  await insertRuns(tx, claims, { status: () => 'running', worker, lease_until: leaseUntil, created_at: t, started_at: t, ended_at: null });
}

/**
 * Claims whose jig is inline (noop) run and finish inside the claiming transaction: one update
 * takes them from TODO to ACTIVE (run_count + 1) and their runs are written already finished —
 * `skipped` for a destructive role that ran before, else `done`.
 */
export async function finishInline(tx: Tx, claims: Claim[], worker: string): Promise<void> {
  const t = now();
  for (const c of chunks(claims.map((p) => p.nodeRoleId))) {
    await tx
      .updateTable('node_roles')
      .set((eb) => ({ state: S.ACTIVE, run_count: eb('run_count', '+', 1), runlog: '', updated_at: t }))
      .where('id', 'in', c)
      .execute();
  }
  await insertRuns(tx, claims, {
    status: (c) => (c.destructive && c.runCount > 0 ? 'skipped' : 'done'),
    worker,
    lease_until: null,
    created_at: t,
    started_at: t,
    ended_at: t,
  });
}

async function insertRuns(
  tx: Tx,
  claims: Claim[],
  v: { status: (c: Claim) => string; worker: string; lease_until: string | null; created_at: string; started_at: string; ended_at: string | null },
): Promise<void> {
  for (const c of chunks(claims, 2000)) {
    const ids = await tx
      .insertInto('runs')
      .values(
        c.map((p) => ({
          node_role_id: p.nodeRoleId,
          node_id: p.nodeId,
          jig: p.jigName,
          status: v.status(p),
          worker: v.worker,
          lease_until: v.lease_until,
          log: '',
          created_at: v.created_at,
          started_at: v.started_at,
          ended_at: v.ended_at,
        })),
      )
      .returning(['id', 'node_role_id'])
      .execute();
    const byNr = new Map(ids.map((r) => [r.node_role_id, r.id]));
    for (const p of c) p.runId = byNr.get(p.nodeRoleId)!;
  }
}
