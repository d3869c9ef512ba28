/**
 * The engine's unit of work: one database transaction plus what it changed. Every state change
 * made through a Ctx is recorded and written as one event row at commit, then published on the
 * in-process bus (SSE, CLI watchers, the annealer's wake-up) after the commit succeeds.
 */
import { EventEmitter } from 'node:events';
import type { DB, Tx, Capabilities } from '../store/db.js';
import { appendEvents } from '../store/events.js';
import { sql } from 'kysely';

/** The notification channel annealers listen on. Its name is not schema-qualified: a wake-up in another schema only costs one idle cycle. */
export const WAKE_CHANNEL = 'crowbar_wake';

export interface StateChange {
  id: number;
  node_id: number;
  from: number;
  to: number;
}

export interface BusEvent {
  id: number;
  type: string;
  payload: unknown;
}

/** Typed map of in-process events. */
export interface EngineEvents {
  /** a stored event (state changes, node/deployment changes), after commit */
  event: [BusEvent];
  /** something may have become runnable */
  wake: [];
  /** a chunk of a run's log as it happens (not stored until the run ends) */
  'run:log': [{ runId: number; nodeRoleId: number; text: string }];
}

export class EngineBus extends EventEmitter<EngineEvents> {
  constructor() {
    super();
    this.setMaxListeners(0);
  }
}

export interface EngineOptions {
  /** development mode: the test jig is active, roles on inactive jigs run on the test jig */
  dev: boolean;
  /** restore the original behaviour: one ERROR stops every run on its node */
  haltNodeOnError: boolean;
  /** restore the original behaviour: a node going not-alive resets all its node-roles */
  resetOnNodeDeath: boolean;
}

export const defaultEngineOptions: EngineOptions = { dev: false, haltNodeOnError: false, resetOnNodeDeath: false };

export class Ctx {
  readonly tx: Tx;
  readonly opts: EngineOptions;
  readonly changes: StateChange[] = [];
  readonly events: Array<{ type: string; payload: unknown }> = [];
  wake = false;
  private readonly memos = new Map<string, Promise<unknown>>();
  /**
   * Binding's view of node-roles created or read in this transaction, by node and by
   * (deployment, role); binding keeps it current, anything that deletes node-roles clears it.
   */
  readonly bindIndex = { byNode: new Map<number, import('../domain/entities.js').NodeRole[]>(), byDeploymentRole: new Map<string, import('../domain/entities.js').NodeRole | null>() };
  constructor(tx: Tx, opts: EngineOptions) {
    this.tx = tx;
    this.opts = opts;
  }

  recordChanges(changes: StateChange[]): void {
    for (const c of changes) if (c.from !== c.to) this.changes.push(c);
    if (changes.length) this.wake = true;
  }

  /**
   * Caches a catalog read (roles, requirements, jigs) for the rest of this transaction: binding
   * thousands of node-roles asks the same questions about the same few roles.
   */
  memo<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let hit = this.memos.get(key) as Promise<T> | undefined;
    if (!hit) {
      hit = fn();
      this.memos.set(key, hit);
    }
    return hit;
  }

  emit(type: string, payload: unknown): void {
    this.events.push({ type, payload });
  }
}

export interface EngineCore {
  db: DB;
  caps: Capabilities;
  opts: EngineOptions;
  bus: EngineBus;
}

/**
 * Runs `fn` in one transaction; writes the collected events with it and publishes them after
 * commit. A failure rolls everything back and publishes nothing.
 */
export async function inTx<T>(core: EngineCore, fn: (ctx: Ctx) => Promise<T>): Promise<T> {
  let published: BusEvent[] = [];
  let wake = false;
  const result = await core.db.transaction().execute(async (trx) => {
    const ctx = new Ctx(trx, core.opts);
    const r = await fn(ctx);
    const evs = [...ctx.events];
    if (ctx.changes.length) {
      evs.unshift({ type: 'node_roles', payload: { changes: ctx.changes.map((c) => [c.id, c.node_id, c.from, c.to]) } });
    }
    const ids = await appendEvents(trx, evs);
    // other processes' annealers (PostgreSQL scale-out) hear about it when this commits
    if (ctx.wake && core.caps.notify) await sql`NOTIFY ${sql.raw(WAKE_CHANNEL)}`.execute(trx);
    published = evs.map((e, i) => ({ id: ids[i]!, type: e.type, payload: e.payload }));
    wake = ctx.wake;
    return r;
  });
  for (const e of published) core.bus.emit('event', e);
  if (wake) core.bus.emit('wake');
  return result;
}
