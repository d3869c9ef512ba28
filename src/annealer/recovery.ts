/**
 * Recovery of runs nobody is executing any more: a `running` run whose worker process is gone
 * (same host, pid dead) or whose lease expired is handed back — re-queued when its jig may run
 * again after a crash, else its node-role goes to ERROR with the reason. An `async` run past its
 * deadline is timed out into ERROR.
 */
import { hostname } from 'node:os';
import { NodeRoleState as S } from '../domain/states.js';
import { inTx, type EngineCore } from '../engine/context.js';
import { blockOrTodo, error as errorStates } from '../engine/states.js';
import { briefs } from '../store/node-roles.js';
import { endRuns } from '../store/runs.js';
import { rolesByIds } from '../store/roles.js';
import { now } from '../store/db.js';
import type { JigRegistry } from '../jigs/registry.js';

/** Worker ids of the annealers running in this process now (several may share one process). */
const liveHere = new Set<string>();

export function workerStarted(worker: string): void {
  liveHere.add(worker);
}

export function workerStopped(worker: string): void {
  liveHere.delete(worker);
}

function workerGone(worker: string | null, me: string): boolean {
  if (!worker || worker === me) return false;
  const [host, pid] = worker.split(':');
  if (host !== hostname()) return false;
  try {
    process.kill(Number(pid), 0);
    // our own pid but another annealer instance id: gone unless that annealer still runs here
    return Number(pid) === process.pid && !liveHere.has(worker);
  } catch {
    return true;
  }
}

export async function recoverStaleRuns(core: EngineCore, jigs: JigRegistry, me: string): Promise<number[]> {
  const t = now();
  const running = await core.db.selectFrom('runs').select(['id', 'node_role_id', 'worker', 'lease_until', 'jig', 'log']).where('status', '=', 'running').execute();
  const stale = running.filter((r) => r.worker !== me && (workerGone(r.worker, me) || (r.lease_until !== null && r.lease_until < t)));
  const expired = await core.db.selectFrom('runs').select(['id', 'node_role_id', 'log']).where('status', '=', 'async').where('deadline', '<', t).execute();
  if (stale.length === 0 && expired.length === 0) return [];
  await inTx(core, async (ctx) => {
    const nrs = new Map((await briefs(ctx.tx, [...stale, ...expired].map((r) => r.node_role_id))).map((b) => [b.id, b]));
    const roles = await rolesByIds(ctx.tx, [...new Set([...nrs.values()].map((b) => b.role_id))]);
    const requeue: number[] = [];
    for (const r of stale) {
      const nr = nrs.get(r.node_role_id);
      const reason = `run ${r.id} was interrupted: the annealer running it (${r.worker}) stopped before it finished`;
      await endRuns(ctx.tx, [{ id: r.id, status: 'interrupted', error: reason, log: r.log }]);
      if (!nr || nr.state !== S.TRANSITION) continue;
      const role = roles.get(nr.role_id);
      if (role?.destructive || jigs.get(r.jig)?.rerunAfterCrash === false) {
        await errorStates(ctx, [nr.id], `${reason}; it was not re-run because ${role?.destructive ? 'the role is destructive' : `the ${r.jig} jig cannot safely run twice`}: check the node, then retry`);
      } else {
        requeue.push(nr.id);
      }
    }
    if (requeue.length) await blockOrTodo(ctx, requeue);
    for (const r of expired) {
      const reason = `asynchronous run ${r.id} did not complete before its deadline`;
      await endRuns(ctx.tx, [{ id: r.id, status: 'timeout', error: reason, log: r.log }]);
      const nr = nrs.get(r.node_role_id);
      if (nr?.state === S.TRANSITION) await errorStates(ctx, [nr.id], `${r.log}\n${reason}`);
    }
  });
  return [...stale.map((r) => r.id), ...expired.map((r) => r.id)];
}
