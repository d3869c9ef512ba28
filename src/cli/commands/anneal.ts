/**
 * `crowbar anneal status` and `crowbar anneal watch`.
 *
 * The watcher follows `GET /api/v2/events` (Server-Sent Events, run log lines left out) on top
 * of one snapshot of the node-roles and deployments, so it shows every state change without
 * polling the lists:
 * - The stream is opened first, then the snapshot is read: once the stream's headers arrive the
 *   server has fixed its cursor, so no change can fall between the two. Changes the snapshot
 *   already shows are simply applied again.
 * - `node_roles` events move node-roles between states; anything structural (node-roles created
 *   or deleted, nodes deleted or moved, deployments created, deleted, committed or proposed)
 *   schedules a fresh snapshot.
 * - A dropped stream is reopened with `Last-Event-ID`, so nothing is missed or applied twice.
 * - Whether the anneal is over comes from `GET /api/v2/anneal` (polled each second and soon after
 *   changes): 200 finished → exit 0; 409 failed and nothing committed left TODO or in TRANSITION
 *   → exit 1; `--timeout` → exit 2. With `--deployment` only that deployment counts: it is over
 *   when none of its node-roles is TODO or in TRANSITION and none is BLOCKED while the anneal
 *   elsewhere is still working; exit 1 if any of them is in ERROR.
 * On a terminal it draws a progress bar; otherwise it prints a counts line when they change
 * (at most every 2 s). Each node-role that goes to ERROR is printed as it happens, with the
 * tail of its run log.
 */
import type { Command } from 'commander';
import { NodeRoleState as S } from '../../domain/states.js';
import type { CrowbarClient } from '../client.js';
import { nonNegative, positiveInt, run } from './context.js';
import { paint, printJson, stateLabel, tail, type Output } from './output.js';

type Obj = Record<string, any>;

export interface WatchOptions {
  /** follow only this deployment (name or id): its counts, its failures, its end */
  deployment?: string;
  /** give up after this many seconds (exit 2) */
  timeoutS?: number;
  /** run log lines printed with each failure */
  logLines?: number;
  /** draw a progress bar (default: stdout is a terminal) */
  tty?: boolean;
  /** seconds between plain progress lines (default 2) */
  intervalS?: number;
}

interface NrView {
  state: number;
  node_id: number;
  role_id: number;
  deployment_id: number | null;
}

const STATE_ORDER = [S.ACTIVE, S.TRANSITION, S.TODO, S.BLOCKED, S.PROPOSED, S.ERROR];
const STRUCTURAL = /^(node_role\.(created|deleted)|node\.(deleted|moved|created|committed)|deployment\.(created|deleted|committed|proposed))$/;
const UNREACHABLE_GIVE_UP_MS = 60_000;

export const EXIT = { CONVERGED: 0, FAILED: 1, TIMEOUT: 2 } as const;

/** Watches the anneal to its end; resolves with the exit code. */
export async function watchAnneal(client: CrowbarClient, out: Output, o: WatchOptions = {}): Promise<number> {
  return new Watcher(client, out, o).run();
}

class Watcher {
  private readonly nrs = new Map<number, NrView>();
  private readonly depCommitted = new Map<number, boolean>();
  private readonly nodeNames = new Map<number, string>();
  private readonly roleNames = new Map<number, string>();
  private readonly depNames = new Map<number, string>();
  private readonly reported = new Set<number>();
  private readonly pendingReports: Array<Promise<void>> = [];
  private readonly abort = new AbortController();
  private readonly t0 = Date.now();
  private readonly tty: boolean;
  private readonly logLines: number;
  private lastEventId: string | undefined;
  private scope: number | undefined;
  /** the first snapshot is in and the failures so far are printed: drawing may begin */
  private started = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncing: Promise<void> | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private barDrawn = false;
  private lastDraw = 0;
  private lastPlain = '';
  private lastPlainAt = 0;
  private finished: ((code: number) => void) | undefined;
  private done = false;
  private unreachableSince: number | undefined;
  private fatal: ((e: Error) => void) | undefined;

  private readonly client: CrowbarClient;
  private readonly out: Output;
  private readonly o: WatchOptions;

  constructor(client: CrowbarClient, out: Output, o: WatchOptions) {
    this.client = client;
    this.out = out;
    this.o = o;
    this.tty = o.tty ?? !!process.stdout.isTTY;
    this.logLines = o.logLines ?? 5;
  }

  async run(): Promise<number> {
    const result = new Promise<number>((res, rej) => {
      this.finished = res;
      this.fatal = rej;
    });
    if (this.o.deployment !== undefined) {
      this.scope = (await this.client.get<Obj>(`/api/v2/deployments/${encodeURIComponent(this.o.deployment)}`, { headers: { 'x-return-attributes': '["id"]' } })).id;
    }
    await this.connect(true);
    await this.resync();
    for (const [id, nr] of this.nrs) if (nr.state === S.ERROR && this.watched(nr)) this.report(id, 'already in error');
    await Promise.allSettled(this.pendingReports);
    this.started = true;
    this.draw(true);
    const poll = setInterval(() => void this.check(), 1000);
    const timeout = this.o.timeoutS !== undefined ? setTimeout(() => void this.finish(EXIT.TIMEOUT), this.o.timeoutS * 1000) : undefined;
    void this.check();
    try {
      return await result;
    } finally {
      clearInterval(poll);
      if (timeout) clearTimeout(timeout);
      clearTimeout(this.resyncTimer);
      clearTimeout(this.checkTimer);
      this.abort.abort();
    }
  }

  // the event stream ////////////////////////////////////////////////////////////////////

  /** Opens the stream (after `lastEventId` once one is known); reopens it whenever it drops. */
  private async connect(first = false): Promise<void> {
    let delay = 500;
    for (;;) {
      if (this.done) return;
      try {
        const { done } = await this.client.openEvents({
          lastEventId: this.lastEventId,
          query: { logs: false },
          signal: this.abort.signal,
          onEvent: (e) => this.onEvent(e.id, e.event, e.data),
          onComment: (c) => {
            const m = /^events after (\d+)/.exec(c);
            if (m && this.lastEventId === undefined) this.lastEventId = m[1];
          },
        });
        this.unreachableSince = undefined;
        done.then(
          () => this.dropped(),
          () => this.dropped(),
        );
        return;
      } catch (e) {
        if (this.done || (e as Error).name === 'AbortError') return;
        // a refused first connection (or credentials) is the user's to fix: say so now
        if (first) throw e;
        this.unreachable(e as Error);
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private dropped(): void {
    if (this.done) return;
    this.note('event stream dropped; reconnecting');
    void sleep(300).then(async () => {
      await this.connect();
      this.scheduleResync();
    });
  }

  private unreachable(e: Error): void {
    this.unreachableSince ??= Date.now();
    if (Date.now() - this.unreachableSince > UNREACHABLE_GIVE_UP_MS) {
      this.done = true;
      this.clearBar();
      this.fatal?.(new Error(`lost the connection for more than ${UNREACHABLE_GIVE_UP_MS / 1000} s: ${e.message}`));
    }
  }

  private onEvent(id: string | undefined, type: string, data: string): void {
    if (id !== undefined) this.lastEventId = id;
    if (this.done) return;
    let ev: Obj;
    try {
      ev = JSON.parse(data);
    } catch {
      return;
    }
    if (type === 'node_roles') {
      for (const [nrId, nodeId, , to] of (ev.payload?.changes ?? []) as Array<[number, number, number, number]>) {
        const nr = this.nrs.get(nrId);
        if (!nr) {
          // created since the snapshot: its role and deployment come with the next one
          this.nrs.set(nrId, { state: to, node_id: nodeId, role_id: -1, deployment_id: null });
          this.scheduleResync();
        } else nr.state = to;
        if (to === S.ERROR && (!nr || this.watched(nr))) this.report(nrId);
        else this.reported.delete(nrId);
      }
      this.draw();
      this.scheduleCheck();
    } else if (STRUCTURAL.test(type)) {
      const p = ev.payload ?? {};
      if (type === 'deployment.committed' && typeof p.id === 'number') this.depCommitted.set(p.id, true);
      if (type === 'deployment.proposed' && typeof p.id === 'number') this.depCommitted.set(p.id, false);
      this.scheduleResync();
      this.scheduleCheck();
    }
  }

  // the snapshot ////////////////////////////////////////////////////////////////////////

  private scheduleResync(): void {
    if (this.resyncTimer || this.done) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      void this.resync().catch((e) => this.unreachable(e as Error));
    }, 300);
  }

  private resync(): Promise<void> {
    this.resyncing ??= (async () => {
      try {
        const [nrs, deps, nodes, roles] = await Promise.all([
          this.client.get<Obj[]>('/api/v2/node_roles', { query: { runlog: 0 }, headers: { 'x-return-attributes': '["id","state","node_id","role_id","deployment_id"]' } }),
          this.client.get<Obj[]>('/api/v2/deployments', { headers: { 'x-return-attributes': '["id","name","state"]' } }),
          this.client.get<Obj[]>('/api/v2/nodes', { headers: { 'x-return-attributes': '["id","name"]' } }),
          this.roleNames.size ? Promise.resolve(undefined) : this.client.get<Obj[]>('/api/v2/roles', { headers: { 'x-return-attributes': '["id","name"]' } }),
        ]);
        this.nrs.clear();
        for (const n of nrs) this.nrs.set(n.id, { state: n.state, node_id: n.node_id, role_id: n.role_id, deployment_id: n.deployment_id });
        this.depCommitted.clear();
        for (const d of deps) {
          this.depCommitted.set(d.id, d.state !== 0);
          this.depNames.set(d.id, d.name);
        }
        for (const n of nodes) this.nodeNames.set(n.id, n.name);
        for (const r of roles ?? []) this.roleNames.set(r.id, r.name);
        this.draw();
      } finally {
        this.resyncing = undefined;
      }
    })();
    return this.resyncing;
  }

  /** in a committed deployment (and in the one watched, with --deployment); unknown yet counts as watched */
  private watched(nr: NrView): boolean {
    if (nr.deployment_id === null) return true;
    if (this.scope !== undefined && nr.deployment_id !== this.scope) return false;
    return this.depCommitted.get(nr.deployment_id) ?? true;
  }

  private counts(): Map<number, number> {
    const c = new Map<number, number>();
    for (const nr of this.nrs.values()) if (this.watched(nr)) c.set(nr.state, (c.get(nr.state) ?? 0) + 1);
    return c;
  }

  /** anything watched still TODO or in TRANSITION: per the snapshot, or (when `fresh`) per a new one */
  private async pending(fresh: boolean): Promise<boolean> {
    const busy = () => {
      const c = this.counts();
      return !!(c.get(S.TODO) || c.get(S.TRANSITION));
    };
    if (busy() || !fresh) return busy();
    await this.resync();
    return busy();
  }

  // finished? /////////////////////////////////////////////////////////////////////////////

  private scheduleCheck(): void {
    if (this.checkTimer || this.done) return;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = undefined;
      void this.check();
    }, 250);
  }

  private async check(): Promise<void> {
    if (this.checking || this.done) return;
    this.checking = true;
    try {
      const res = await this.client.call<Obj>('GET', '/api/v2/anneal', undefined, { accept: [202, 409] });
      this.unreachableSince = undefined;
      if (this.scope === undefined) {
        if (res.status === 200) {
          await this.resync();
          return this.finish(EXIT.CONVERGED);
        }
        // failed — but it is over only when nothing committed is left to run
        if (res.status === 409 && !(await this.pending(true))) return this.finish(EXIT.FAILED);
      } else if (!(await this.pending(true))) {
        // the deployment is done unless its blocked node-roles wait on work still going on elsewhere
        const c = this.counts();
        if (!c.get(S.BLOCKED) || res.status !== 202) return this.finish(c.get(S.ERROR) ? EXIT.FAILED : EXIT.CONVERGED);
      }
      this.draw();
    } catch (e) {
      this.unreachable(e as Error);
    } finally {
      this.checking = false;
    }
  }

  private async finish(code: number): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.abort.abort();
    await Promise.allSettled(this.pendingReports);
    this.clearBar();
    const secs = ((Date.now() - this.t0) / 1000).toFixed(1);
    const counts = this.countsText(this.counts(), false);
    const blocked = this.counts().get(S.BLOCKED) ?? 0;
    if (code === EXIT.CONVERGED) {
      this.out.write(`${paint(this.out, 'green', 'converged')} in ${secs} s: ${counts}${blocked ? ` (${blocked} blocked: see crowbar node-roles list --state blocked)` : ''}\n`);
    } else if (code === EXIT.FAILED) {
      const errors = [...this.nrs.entries()].filter(([, n]) => n.state === S.ERROR && this.watched(n)).map(([id]) => id);
      this.out.write(`${paint(this.out, 'red', 'failed')} after ${secs} s: ${counts}\n`);
      this.out.write(`in error: node-role ${errors.slice(0, 20).join(', ')}${errors.length > 20 ? ', …' : ''} (crowbar node-roles why <id>, crowbar node-roles runs <id>)\n`);
    } else {
      this.out.write(`${paint(this.out, 'yellow', 'timed out')} after ${secs} s, still annealing: ${counts}\n`);
    }
    this.finished?.(code);
  }

  // failures //////////////////////////////////////////////////////////////////////////////

  private report(id: number, note?: string): void {
    if (this.reported.has(id)) return;
    this.reported.add(id);
    const p = (async () => {
      let nr: Obj | undefined;
      try {
        nr = await this.client.get<Obj>(`/api/v2/node_roles/${id}`);
      } catch {
        /* deleted meanwhile, or the server went away: report what we know */
      }
      const view = this.nrs.get(id);
      const nodeId = nr?.node_id ?? view?.node_id;
      const roleId = nr?.role_id ?? view?.role_id;
      const depId = nr?.deployment_id ?? view?.deployment_id;
      if (nodeId !== undefined && !this.nodeNames.has(nodeId)) await this.resync().catch(() => undefined);
      const who = `${this.roleNames.get(roleId) ?? `role ${roleId}`} on ${this.nodeNames.get(nodeId) ?? `node ${nodeId}`}`;
      const where = depId !== undefined && depId !== null ? `, deployment ${this.depNames.get(depId) ?? depId}` : '';
      this.clearBar();
      this.out.write(`${paint(this.out, 'red', '✗ error')} ${who} (node-role ${id}${where})${note ? ` ${note}` : ''}\n`);
      for (const l of tail(nr?.runlog, this.logLines)) this.out.write(`    ${paint(this.out, 'dim', '|')} ${l}\n`);
      this.draw(true);
    })();
    this.pendingReports.push(p);
  }

  // drawing ///////////////////////////////////////////////////////////////////////////////

  private countsText(c: Map<number, number>, color = true): string {
    const out = color ? this.out : { color: false };
    const parts = STATE_ORDER.filter((s) => c.get(s)).map((s) => `${stateLabel(out, s)}=${c.get(s)}`);
    return parts.join(' ') || `no committed node-roles${this.o.deployment !== undefined ? ` in deployment ${this.o.deployment}` : ''}`;
  }

  private draw(force = false): void {
    if (this.done || !this.started) return;
    const now = Date.now();
    const c = this.counts();
    const secs = `${((now - this.t0) / 1000).toFixed(1)} s`;
    if (this.tty) {
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      const runnable = [...c.entries()].filter(([s]) => s !== S.PROPOSED).reduce((a, [, n]) => a + n, 0);
      const frac = runnable ? (c.get(S.ACTIVE) ?? 0) / runnable : 1;
      const width = 30;
      const filled = Math.round(frac * width);
      const bar = paint(this.out, (c.get(S.ERROR) ?? 0) > 0 ? 'red' : 'green', '█'.repeat(filled)) + paint(this.out, 'dim', '░'.repeat(width - filled));
      this.out.write(`\r\x1b[2K${bar} ${String(Math.floor(frac * 100)).padStart(3)}%  ${this.countsText(c)}  ${paint(this.out, 'dim', secs)}`);
      this.barDrawn = true;
      return;
    }
    const text = this.countsText(c, false);
    const interval = (this.o.intervalS ?? 2) * 1000;
    if (!force && (text === this.lastPlain || now - this.lastPlainAt < interval)) return;
    if (force && text === this.lastPlain) return;
    this.lastPlain = text;
    this.lastPlainAt = now;
    this.out.write(`[${secs}] ${text}\n`);
  }

  private clearBar(): void {
    if (this.barDrawn) {
      this.out.write('\r\x1b[2K');
      this.barDrawn = false;
    }
  }

  private note(text: string): void {
    this.clearBar();
    if (!this.tty) this.out.write(`${text}\n`);
    else process.stderr.write(`${text}\n`);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function registerAnneal(program: Command): void {
  const anneal = program.command('anneal').description('the annealer: status, and watching it converge');

  anneal
    .command('status')
    .description('finished, working, scheduled or failed, with node-role counts (exit 1 when failed)')
    .action(run(async ({ client, out }) => {
      const res = await client.call<Obj>('GET', '/api/v2/anneal', undefined, { accept: [202, 409] });
      const hb: Obj = await client.get('/api/status/heartbeat');
      if (out.json) return printJson(out, { status: res.status, ...res.body, heartbeat: hb });
      const msg = String(res.body?.message ?? res.status);
      const style = res.status === 200 ? 'green' : res.status === 409 ? 'red' : 'cyan';
      out.write(`${paint(out, style, msg)}: ${stateLabel(out, S.ACTIVE)}=${hb.active} not-yet-active=${hb.todo} ${stateLabel(out, S.ERROR)}=${hb.error}\n`);
      if (res.status === 409) process.exitCode = EXIT.FAILED;
    }));

  anneal
    .command('watch')
    .description('live progress until the anneal ends: exit 0 when converged, 1 when it ends with errors, 2 on --timeout')
    .option('-d, --deployment <deployment>', 'follow only this deployment (its counts, failures and end)')
    .option('--timeout <seconds>', 'give up after this long (exit 2)', nonNegative('--timeout'))
    .option('--lines <n>', 'run log lines printed with each failure', positiveInt('--lines'), 5)
    .action(run(async ({ client, out, opts }) => {
      process.exitCode = await watchAnneal(client, out, { deployment: opts.deployment, timeoutS: opts.timeout, logLines: opts.lines });
    }));
}
