/**
 * The annealer: a loop woken by events and by a tick. Each cycle is one transaction that records
 * finished runs (ACTIVE/ERROR, children unblocked) and claims the next runnable node-roles;
 * inline jigs (noop) finish inside that same transaction, other jigs run outside it, bounded by
 * a global concurrency limit, each with a timeout. Leases and a reaper make sure a run left in
 * flight by a crash is re-queued or marked ERROR with a reason — never lost, never run twice.
 */
import { hostname } from 'node:os';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { NodeRoleState as S } from '../domain/states.js';
import { coerceError, CrowbarError } from '../domain/errors.js';
import type { JsonObject } from '../domain/json.js';
import type { Role } from '../domain/entities.js';
import { inTx, type Ctx, type EngineCore } from '../engine/context.js';
import { activate, error as errorStates, blockOrTodo, unblockChildren, unblockStranded } from '../engine/states.js';
import { stageInputs } from '../engine/injection.js';
import { afterSuccess } from '../engine/outputs.js';
import { claimRunnable, finishInline, startRuns, type Claim } from '../store/claim.js';
import { briefs, requireNodeRole, updateNodeRole } from '../store/node-roles.js';
import { endRuns, renewLeases, setRunInputs, setRunReplayOf, takeReplay, type RunEnd } from '../store/runs.js';
import { listJigs } from '../store/jigs.js';
import { rolesByIds } from '../store/roles.js';
import { getBarclamp } from '../store/barclamps.js';
import { chunks } from '../store/db.js';
import type { JigRegistry } from '../jigs/registry.js';
import type { JigContext, JigDefinition, JigResult } from '../jigs/types.js';
import { JigFailure } from '../jigs/types.js';
import { isTransportFailure, type NodeHammer } from '../hammers/types.js';
import { updateNodeFields } from '../engine/nodes.js';
import { recoverStaleRuns, workerStarted, workerStopped } from './recovery.js';

export interface AnnealerOptions {
  /** at most this many non-inline runs at once, across all nodes (default 64) */
  concurrency: number;
  /** at most this many runs in flight per node (default 1) */
  perNode: number;
  /** inline (noop) claims per cycle (default 2000) */
  batch: number;
  /** the loop also wakes this often without an event (default 1000 ms) */
  tickMs: number;
  /** a run's lease; renewed every third of it while the run is alive (default 60 s) */
  leaseMs: number;
  /** how long stop() waits for in-flight runs before handing them back (default 10 s) */
  shutdownGraceMs: number;
  /** scratch space for runs on the admin host */
  workRoot: string;
  /** overrides every run timeout (seconds); for tests and benchmarks */
  timeoutOverrideSeconds?: number;
  worker?: string;
}

export interface HammerResolver {
  (nodeId: number): Promise<NodeHammer>;
}

type Outcome =
  | { kind: 'done'; wall?: JsonObject; log: string }
  | { kind: 'skipped'; log: string }
  | { kind: 'async'; log: string; deadline: string }
  | { kind: 'failed' | 'timeout'; log: string; error: string; exitStatus: number | null; unreachable?: boolean }
  | { kind: 'interrupted'; log: string; error: string };

interface Completion {
  claim: Claim;
  outcome: Outcome;
}

interface InFlight {
  claim: Claim;
  controller: AbortController;
  shutdown: boolean;
  done: Promise<void>;
}

export class Annealer {
  readonly worker: string;
  private readonly inflight = new Map<number, InFlight>();
  private completions: Completion[] = [];
  private sweepDue = true;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private pendingWake = false;
  private idleWaiters: Array<() => void> = [];
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly onWake = () => this.wake();
  private activeJigs = new Set<string>();
  private roleCache = new Map<number, Role & { barclampName: string; sourcePath: string | null }>();

  private readonly core: EngineCore;
  private readonly jigs: JigRegistry;
  private readonly hammerFor: HammerResolver;
  private unlisten: (() => Promise<void>) | undefined;
  /** set by the composition root when the store can deliver cross-process wake-ups */
  listen?: (onNotify: () => void) => Promise<() => Promise<void>>;
  private readonly opts: AnnealerOptions;
  private readonly log: Logger;

  constructor(core: EngineCore, jigs: JigRegistry, hammerFor: HammerResolver, opts: AnnealerOptions, log: Logger) {
    this.core = core;
    this.jigs = jigs;
    this.hammerFor = hammerFor;
    this.opts = opts;
    this.log = log;
    this.worker = opts.worker ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  }

  /** Recovers runs left in flight by a dead process, then starts the loop. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await mkdir(this.opts.workRoot, { recursive: true });
    workerStarted(this.worker);
    const recovered = await recoverStaleRuns(this.core, this.jigs, this.worker);
    if (recovered.length) this.log.warn({ recovered }, `recovered ${recovered.length} run(s) left in flight by a stopped annealer`);
    this.core.bus.on('wake', this.onWake);
    if (this.listen) this.unlisten = await this.listen(() => this.wake());
    this.leaseTimer = setInterval(() => void this.renew(), Math.max(1000, this.opts.leaseMs / 3));
    this.leaseTimer.unref();
    this.loopDone = this.loop();
  }

  /**
   * Stops claiming, waits up to the grace period for in-flight runs, then aborts the rest and
   * hands them back (re-queued, or ERROR for destructive roles).
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.core.bus.off('wake', this.onWake);
    this.wake();
    await this.loopDone;
    const deadline = Date.now() + this.opts.shutdownGraceMs;
    while (this.inflight.size && Date.now() < deadline) {
      await Promise.race([...[...this.inflight.values()].map((f) => f.done), new Promise((r) => setTimeout(r, 100))]);
    }
    for (const f of this.inflight.values()) {
      f.shutdown = true;
      f.controller.abort(new Error('the annealer is shutting down'));
    }
    await Promise.all([...this.inflight.values()].map((f) => f.done));
    while (this.completions.length) await this.cycle(false);
    clearInterval(this.leaseTimer);
    await this.unlisten?.();
    workerStopped(this.worker);
  }

  wake(): void {
    this.pendingWake = true;
    this.sweepDue = true;
    this.wakeUp?.();
  }

  /** Resolves once nothing is runnable and nothing is in flight (for tests, sim and bench). */
  settle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.wake();
    });
  }

  get inFlightCount(): number {
    return this.inflight.size;
  }

  private async loop(): Promise<void> {
    let ticks = 0;
    while (this.running) {
      let worked = false;
      try {
        this.pendingWake = false;
        worked = await this.cycle(true);
        if (++ticks % 20 === 0 && this.core.caps.concurrentWriters) await recoverStaleRuns(this.core, this.jigs, this.worker);
      } catch (e) {
        this.log.error({ err: coerceError(e) }, 'annealer cycle failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (worked || this.pendingWake) continue;
      if (await this.repairStranded()) continue;
      if (this.inflight.size === 0 && this.completions.length === 0) {
        for (const w of this.idleWaiters.splice(0)) w();
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.opts.tickMs);
        this.wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
        if (this.pendingWake) this.wakeUp();
      });
      this.wakeUp = undefined;
    }
  }

  /**
   * Once after each wake-up (a commit wakes us), on stores with several writers: moves to TODO
   * the node-roles a concurrent commit left BLOCKED behind parents this annealer activated
   * meanwhile (see unblockStranded). True when the loop should claim again before going idle:
   * it unblocked some, or a wake-up (or settle) arrived while it looked.
   */
  private async repairStranded(): Promise<boolean> {
    if (!this.sweepDue || !this.core.caps.concurrentWriters) return false;
    this.sweepDue = false;
    try {
      const n = await inTx(this.core, (ctx) => unblockStranded(ctx));
      if (n > 0) {
        this.log.info({ count: n }, 'unblocked node-roles whose parents were all active');
        return true;
      }
    } catch (e) {
      this.log.warn({ err: coerceError(e) }, 'checking for stranded blocked node-roles failed');
    }
    return this.pendingWake;
  }

  /** One transaction: record finished runs, then claim (and finish inline) the next batch. */
  private async cycle(claim: boolean): Promise<boolean> {
    const done = this.completions.splice(0);
    this.lastInline = 0;
    if (claim) this.activeJigs = new Set((await listJigs(this.core.db)).filter((j) => j.active).map((j) => j.name));
    let dispatch: Claim[] = [];
    try {
      dispatch = await inTx(this.core, async (ctx) => {
        if (done.length) await this.record(ctx, done);
        if (!claim) return [];
        const claims = await claimRunnable(ctx.tx, this.core.caps, {
          worker: this.worker,
          slots: this.opts.concurrency - this.inflight.size,
          inlineLimit: this.opts.batch,
          inlineJigs: this.jigs.names().filter((n) => this.jigs.get(n)!.inline),
          perNode: this.opts.perNode,
          jigs: this.core.opts.dev ? null : [...this.activeJigs],
          haltNodeOnError: this.core.opts.haltNodeOnError,
          effectiveJig: (name) => (this.activeJigs.has(name) || !this.core.opts.dev ? name : 'test'),
        });
        await this.loadRoles(ctx, claims);
        const inline = claims.filter((c) => this.jigs.get(c.jigName)?.inline);
        const slotted = claims.filter((c) => !this.jigs.get(c.jigName)?.inline);
        this.lastInline = inline.length;
        if (slotted.length) {
          await startRuns(ctx.tx, slotted, this.worker, new Date(Date.now() + this.opts.leaseMs).toISOString());
          ctx.recordChanges(slotted.map((c) => ({ id: c.nodeRoleId, node_id: c.nodeId, from: S.TODO, to: S.TRANSITION })));
        }
        if (inline.length) {
          await finishInline(ctx.tx, inline, this.worker);
          ctx.recordChanges(inline.flatMap((c) => [
            { id: c.nodeRoleId, node_id: c.nodeId, from: S.TODO, to: S.TRANSITION },
            { id: c.nodeRoleId, node_id: c.nodeId, from: S.TRANSITION, to: S.ACTIVE },
          ]));
          await unblockChildren(ctx, inline.map((c) => c.nodeRoleId));
        }
        return slotted;
      });
    } catch (e) {
      this.completions.unshift(...done);
      throw e;
    }
    for (const c of dispatch) this.dispatch(c);
    return done.length > 0 || dispatch.length > 0 || this.lastInline > 0;
  }

  private lastInline = 0;

  private async loadRoles(ctx: Ctx, claims: Claim[]): Promise<void> {
    const missing = [...new Set(claims.map((c) => c.roleId))].filter((id) => !this.roleCache.has(id));
    if (missing.length === 0) return;
    for (const [id, role] of await rolesByIds(ctx.tx, missing)) {
      const bc = await getBarclamp(ctx.tx, role.barclamp_id);
      this.roleCache.set(id, { ...role, barclampName: bc?.name ?? '', sourcePath: bc?.source_path ?? null });
    }
  }

  /** Writes finished runs and moves their node-roles on. */
  private async record(ctx: Ctx, all: Completion[]): Promise<void> {
    // A run whose lease expired may have been recovered (interrupted, re-queued) by another
    // annealer while this one was still working on it: its late result must not win.
    const live = new Set<number>();
    for (const c of chunks(all.map((d) => d.claim.runId))) {
      const rows = await ctx.tx.selectFrom('runs').select('id').where('id', 'in', c).where('status', '=', 'running').execute();
      for (const r of rows) live.add(r.id);
    }
    const done = all.filter((d) => live.has(d.claim.runId));
    if (done.length < all.length) {
      this.log.warn({ runs: all.filter((d) => !live.has(d.claim.runId)).map((d) => d.claim.runId) }, 'discarding results of runs that were recovered by another annealer after their lease expired');
    }
    const current = new Map((await briefs(ctx.tx, done.map((d) => d.claim.nodeRoleId))).map((b) => [b.id, b]));
    const ends: RunEnd[] = [];
    const succeeded: number[] = [];
    const requeue: number[] = [];
    for (const { claim, outcome } of done) {
      const nr = current.get(claim.nodeRoleId);
      const stillOurs = nr !== undefined && nr.state === S.TRANSITION;
      switch (outcome.kind) {
        case 'done':
        case 'skipped': {
          ends.push({ id: claim.runId, status: outcome.kind, wall: outcome.kind === 'done' ? outcome.wall ?? {} : undefined, log: outcome.log });
          if (!stillOurs) break;
          const wall = outcome.kind === 'done' ? outcome.wall : undefined;
          const previous = wall ? (await requireNodeRole(ctx.tx, claim.nodeRoleId)).wall : undefined;
          await updateNodeRole(ctx.tx, claim.nodeRoleId, { runlog: outcome.log, ...(wall ? { wall } : {}) });
          if (wall) await afterSuccess(ctx, claim.nodeRoleId, wall, previous);
          succeeded.push(claim.nodeRoleId);
          break;
        }
        case 'async':
          ends.push({ id: claim.runId, status: 'async', log: outcome.log });
          await ctx.tx.updateTable('runs').set({ deadline: outcome.deadline }).where('id', '=', claim.runId).execute();
          if (stillOurs) await updateNodeRole(ctx.tx, claim.nodeRoleId, { runlog: outcome.log });
          break;
        case 'interrupted': {
          ends.push({ id: claim.runId, status: 'interrupted', log: outcome.log, error: outcome.error });
          if (!stillOurs) break;
          const role = this.roleCache.get(claim.roleId);
          if (role?.destructive) await errorStates(ctx, [claim.nodeRoleId], `${outcome.log}\n${outcome.error}; the role is destructive, so it was not re-queued: check the node, then retry`);
          else requeue.push(claim.nodeRoleId);
          break;
        }
        default: {
          // an unreachable node is marked not alive: its other work pauses until it is back
          let error = outcome.error;
          if (outcome.kind === 'failed' && outcome.unreachable) {
            const node = await updateNodeFields(ctx, claim.nodeId, { alive: false });
            error += `\nnode ${node.name} is unreachable and was marked not alive; when it is back, set it alive (crowbar nodes update ${node.name} --alive true) and retry`;
          }
          ends.push({ id: claim.runId, status: outcome.kind, log: outcome.log, error, exit_status: outcome.exitStatus });
          if (stillOurs) await errorStates(ctx, [claim.nodeRoleId], `${outcome.log}${outcome.log.endsWith('\n') || !outcome.log ? '' : '\n'}${error}`);
        }
      }
    }
    await endRuns(ctx.tx, ends);
    await activate(ctx, succeeded);
    if (requeue.length) {
      await ctx.tx.updateTable('node_roles').set({ rerun: 0 }).where('id', 'in', requeue).execute();
      await blockOrTodo(ctx, requeue);
    }
  }

  private dispatch(claim: Claim): void {
    const controller = new AbortController();
    const entry: InFlight = { claim, controller, shutdown: false, done: Promise.resolve() };
    entry.done = this.execute(entry).then((outcome) => {
      this.inflight.delete(claim.runId);
      this.completions.push({ claim, outcome });
      // let completions that finish together share one cycle (one transaction)
      if (this.completions.length === 1) setTimeout(() => this.wake(), 2);
    });
    this.inflight.set(claim.runId, entry);
  }

  private async execute(entry: InFlight): Promise<Outcome> {
    const { claim, controller } = entry;
    const role = this.roleCache.get(claim.roleId)!;
    let log = '';
    const append = (text: string) => {
      log += text;
      this.core.bus.emit('run:log', { runId: claim.runId, nodeRoleId: claim.nodeRoleId, text });
    };
    if (role.destructive && claim.runCount > 0) {
      return { kind: 'skipped', log: `${role.name} is destructive and already ran ${claim.runCount} time(s); not running it again\n` };
    }
    const jig = this.jigs.get(claim.jigName);
    if (!jig) return { kind: 'failed', log, error: `no jig implementation named '${claim.jigName}' in this server`, exitStatus: null };
    const timeoutS = this.opts.timeoutOverrideSeconds ?? role.timeout ?? jig.timeoutSeconds;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${timeoutS} s`));
    }, timeoutS * 1000);
    let workDir: string | undefined;
    try {
      const replay = await takeReplay(this.core.db, claim.nodeRoleId);
      const staged = replay
        ? { inputs: replay.inputs as JsonObject, provenance: replay.provenance as Record<string, never> }
        : jig.stage === 'full' ? await stageInputs(this.core.db, claim.nodeRoleId) : { inputs: {}, provenance: {} };
      await setRunInputs(this.core.db, claim.runId, staged.inputs, staged.provenance);
      if (replay) {
        await setRunReplayOf(this.core.db, claim.runId, replay.runId);
        append(`replaying the recorded inputs of run ${replay.runId}\n`);
      }
      const nodeRow = await this.core.db.selectFrom('nodes').select(['id', 'name', 'admin', 'system', 'quirks']).where('id', '=', claim.nodeId).executeTakeFirstOrThrow();
      const hammer = await this.hammerFor(claim.nodeId);
      workDir = await mkdtemp(join(this.opts.workRoot, `run-${claim.runId}-`));
      const ctx: JigContext = {
        run: { id: claim.runId, attempt: claim.runCount + 1 },
        nodeRole: { id: claim.nodeRoleId, state: S.TRANSITION, runCount: claim.runCount },
        role: { id: role.id, name: role.name, jig: claim.jigName, barclamp: role.barclampName },
        node: { id: nodeRow.id, name: nodeRow.name, admin: nodeRow.admin === 1, system: nodeRow.system === 1, quirks: JSON.parse(nodeRow.quirks) },
        sourcePath: role.sourcePath,
        inputs: staged.inputs,
        hammer,
        log: append,
        signal: controller.signal,
        workDir,
      };
      const result = await abortable(jig, ctx, controller.signal);
      if (result.async) {
        return { kind: 'async', log, deadline: new Date(Date.now() + timeoutS * 1000).toISOString() };
      }
      return { kind: 'done', wall: result.wall, log };
    } catch (e) {
      if (entry.shutdown) return { kind: 'interrupted', log, error: 'the annealer shut down before the run finished' };
      if (timedOut) return { kind: 'timeout', log, error: `run ${claim.runId} timed out after ${timeoutS} s and was stopped`, exitStatus: null };
      const err = coerceError(e);
      const exit = err instanceof JigFailure ? err.exitStatus : null;
      const msg = err instanceof JigFailure || err instanceof CrowbarError ? err.message : `${err.name}: ${err.message}`;
      return { kind: 'failed', log, error: msg, exitStatus: exit, unreachable: isTransportFailure(err) };
    } finally {
      clearTimeout(timer);
      if (workDir) await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async renew(): Promise<void> {
    if (this.inflight.size === 0) return;
    try {
      await renewLeases(this.core.db, [...this.inflight.keys()], new Date(Date.now() + this.opts.leaseMs).toISOString());
    } catch (e) {
      this.log.warn({ err: coerceError(e) }, 'renewing run leases failed');
    }
  }
}

/** Runs the jig, but gives up 5 s after an abort even if the jig ignores its signal. */
async function abortable(jig: JigDefinition, ctx: JigContext, signal: AbortSignal): Promise<JigResult> {
  let onAbort: (() => void) | undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    onAbort = () => setTimeout(() => reject(signal.reason ?? new Error('aborted')), 5000).unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const r = await Promise.race([jig.run(ctx), gaveUp]);
    if (signal.aborted) throw signal.reason ?? new Error('aborted');
    return r;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

