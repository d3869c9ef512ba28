/**
 * The API benchmarks (DESIGN.md §4: one node by id p99 ≤ 5 ms at 1,000 req/s; list 10,000 nodes
 * ≤ 150 ms). Each starts a real server in-process — startCrowbar on SQLite in a temp dir, buildApp,
 * listen on 127.0.0.1:0 — with 10,000 simulated nodes (registerSimNodes: realistic discovery
 * inventory, no roles, not committed), and talks to it over real HTTP with Basic auth.
 *
 * api-get-node: an open-loop load generator in a worker thread (its own event loop and heap, so
 * client work never queues behind the server's) fires `GET /api/v2/nodes/:id` for random nodes on a
 * fixed timetable over keep-alive sockets. Each latency is measured from the request's *scheduled*
 * send time, so a stalled server is charged for every request it delayed (no coordinated
 * omission). The baseline is a trivial authenticated route on the same server — HTTP + Fastify +
 * Basic auth, without the route's own work — and the two take turns in 100 ms slices of one
 * 1,000 req/s timetable for 2 × 10 s, so each gets 10 s at 1,000 req/s on the same machine at the
 * same moments (a loaded machine inflates both tails alike). Server-side times (Fastify's
 * reply.elapsedTime) and the server loop's utilisation say how much of a latency is the route.
 *
 * api-list-nodes: `GET /api/v2/nodes` a few times in a row (after one warm-up), median and max of
 * the time to the last byte, and the response size.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { compileConfig } from '../src/config.js';
import { startCrowbar, type Crowbar } from '../src/main.js';
import { buildApp } from '../src/api/app.js';
import { send } from '../src/api/wire.js';
import { registerSimNodes } from '../src/sim/register.js';
import type { FastifyInstance } from 'fastify';

const NODES = Number(process.env.BENCH_API_NODES ?? 10_000);
const RATE = Number(process.env.BENCH_API_RATE ?? 1_000);
const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 10);
const BASELINE_PATH = '/bench/trivial';

// the server side //////////////////////////////////////////////////////////////////////////

interface Server<X = undefined> {
  cb: Crowbar;
  /** what `instrument` returned */
  extra?: X;
  app: FastifyInstance;
  port: number;
  auth: string;
  nodeIds: number[];
  setupS: number;
  close(): Promise<void>;
}

async function startServer<X = undefined>(nodes: number, instrument?: (app: FastifyInstance) => X): Promise<Server<X>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'crowbar-bench-api-'));
  const password = randomBytes(12).toString('base64url');
  const log = pino({ level: 'warn' });
  const t0 = performance.now();
  const cb = await startCrowbar(compileConfig({ dataDir, dev: false, adminPassword: password, logLevel: 'warn' }, {}), { anneal: false, noAdmin: true, log });
  try {
    const have = Number((await cb.engine.db.selectFrom('nodes').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst())?.n ?? 0);
    await registerSimNodes(cb.engine, { nodes: nodes - have, commit: false, chunk: 500 });
    const nodeIds = (await cb.engine.db.selectFrom('nodes').select('id').orderBy('id').execute()).map((r) => r.id);
    const app = await buildApp({ engine: cb.engine, log, hammers: cb.hammers });
    // the baseline: authenticated like every route, answered like every route, but no work of its own
    app.get(BASELINE_PATH, async (_req, reply) => send(reply, 'status', 'obj', { ok: true }));
    const extra = instrument?.(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const setupS = (performance.now() - t0) / 1000;
    return {
      cb, app, port, nodeIds, setupS, extra,
      auth: `Basic ${Buffer.from(`crowbar:${password}`).toString('base64')}`,
      async close() {
        await app.close();
        await cb.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await cb.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
}

// the client side (runs in a worker thread) ///////////////////////////////////////////////

interface Group {
  name: string;
  /** request paths, used round-robin */
  paths: string[];
}

/**
 * One open-loop timetable: request i is due at t0 + i/rate. The groups take turns in slices of
 * `sliceS` seconds (group = slice index mod groups), so a baseline and a target interleaved this
 * way see the same machine, second by second.
 */
interface Phase {
  name: string;
  groups: Group[];
  rate: number;
  seconds: number;
  sliceS: number;
}

interface ClientJob {
  role: 'crowbar-bench-api-client';
  port: number;
  auth: string;
  phases: Phase[];
}

export interface GroupResult {
  phase: string;
  name: string;
  scheduled: number;
  completed: number;
  errors: number;
  firstError?: string;
  /** every request of the phase per second, from the first scheduled send to the last response */
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** how late the client's timer fired, at worst (client-side slack, included in latencies) */
  maxSendLagMs: number;
}

const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : NaN);

async function runPhase(agent: http.Agent, port: number, auth: string, ph: Phase): Promise<GroupResult[]> {
  const total = Math.round(ph.rate * ph.seconds);
  const interval = 1000 / ph.rate;
  const perSlice = Math.max(1, Math.round(ph.rate * ph.sliceS));
  const stats = ph.groups.map(() => ({ lat: [] as number[], scheduled: 0, errors: 0, firstError: undefined as string | undefined, next: 0 }));
  let done = 0;
  let lastEnd = 0;
  let maxLag = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const finish = () => {
    if (++done === total) resolveAll();
  };
  const fire = (i: number, scheduled: number) => {
    const g = Math.floor(i / perSlice) % ph.groups.length;
    const st = stats[g]!;
    const path = ph.groups[g]!.paths[st.next++ % ph.groups[g]!.paths.length]!;
    st.scheduled++;
    const fail = (why: string) => {
      st.errors++;
      st.firstError ??= why;
      finish();
    };
    const req = http.request({ agent, host: '127.0.0.1', port, method: 'GET', path, headers: { authorization: auth, accept: 'application/json' } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        const end = performance.now();
        lastEnd = end;
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode} for ${path}`);
        st.lat.push(end - scheduled);
        finish();
      });
      res.on('error', (e) => fail(e.message));
    });
    req.on('error', (e) => fail(e.message));
    req.end();
  };

  const t0 = performance.now() + 5;
  let i = 0;
  await new Promise<void>((scheduledAll) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && t0 + i * interval <= now) {
        const at = t0 + i * interval;
        maxLag = Math.max(maxLag, now - at);
        fire(i, at);
        i++;
      }
      if (i < total) setTimeout(tick, Math.max(0, t0 + i * interval - performance.now()));
      else scheduledAll();
    };
    setTimeout(tick, 5);
  });
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000).unref());
  if ((await Promise.race([all, timeout])) === 'timeout') throw new Error(`${ph.name}: ${total - done} of ${total} requests unanswered after 60 s`);
  const completed = stats.reduce((a, st) => a + st.lat.length, 0);
  return ph.groups.map((g, k) => {
    const { lat, scheduled, errors, firstError } = stats[k]!;
    lat.sort((a, b) => a - b);
    return {
      phase: ph.name, name: g.name, scheduled, completed: lat.length, errors, firstError,
      rate: completed / ((lastEnd - t0) / 1000),
      p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99), max: lat[lat.length - 1] ?? NaN,
      maxSendLagMs: maxLag,
    };
  });
}

async function clientMain(job: ClientJob): Promise<GroupResult[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const out: GroupResult[] = [];
  for (const ph of job.phases) {
    parentPort!.postMessage({ phaseStart: ph.name });
    out.push(...(await runPhase(agent, job.port, job.auth, ph)));
    parentPort!.postMessage({ phaseEnd: ph.name });
  }
  agent.destroy();
  return out;
}

if (!isMainThread && (workerData as ClientJob | undefined)?.role === 'crowbar-bench-api-client') {
  clientMain(workerData as ClientJob).then(
    (r) => parentPort!.postMessage({ ok: r }),
    (e) => parentPort!.postMessage({ error: (e as Error).stack ?? String(e) }),
  );
}

type ClientMessage = { ok?: GroupResult[]; error?: string; phaseStart?: string; phaseEnd?: string };

/**
 * Runs the phases in a worker thread. Calls `onPhase(name)` as each starts, and adds how busy the
 * server's event loop (this thread) was in each phase.
 */
function runClient(job: Omit<ClientJob, 'role'>, onPhase: (name: string) => void): Promise<(GroupResult & { serverBusy: number })[]> {
  return new Promise((resolve, reject) => {
    const busy = new Map<string, number>();
    let elu = performance.eventLoopUtilization();
    // this very file, under tsx's loader (a worker does not inherit the hooks `tsx` registered here)
    const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const w = new Worker(boot, { eval: true, workerData: { ...job, role: 'crowbar-bench-api-client' } });
    w.on('message', (m: ClientMessage) => {
      if (m.phaseStart) {
        onPhase(m.phaseStart);
        elu = performance.eventLoopUtilization();
      } else if (m.phaseEnd) busy.set(m.phaseEnd, performance.eventLoopUtilization(elu).utilization);
      else {
        void w.terminate();
        if (m.ok) resolve(m.ok.map((r) => ({ ...r, serverBusy: busy.get(r.phase) ?? NaN })));
        else reject(new Error(`load client failed: ${m.error}`));
      }
    });
    w.once('error', reject);
  });
}

// scenarios ////////////////////////////////////////////////////////////////////////////////

const f = (n: number, d = 2) => n.toFixed(d);
const show = (r: GroupResult) =>
  `${r.name}: ${r.completed}/${r.scheduled} ok, p50 ${f(r.p50)} ms, p90 ${f(r.p90)} ms, p99 ${f(r.p99)} ms, max ${f(r.max)} ms` +
  `${r.errors ? `, ${r.errors} errors (first: ${r.firstError})` : ''}`;

/** Linux CPU pressure (share of time some runnable task waited for a CPU, last 60 s): a loaded machine inflates tails. */
function cpuPressure(): string {
  try {
    const m = /some avg10=([\d.]+) avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? `CPU pressure (PSI some, 60 s avg) ${m[2]}%` : 'CPU pressure unknown';
  } catch {
    return 'CPU pressure unknown';
  }
}

/** Server-side time per request (Fastify's reply.elapsedTime: from onRequest to the response written), by kind. */
function serverTimes(app: FastifyInstance) {
  const byKind = { baseline: [] as number[], node: [] as number[] };
  app.addHook('onResponse', async (req, reply) => {
    (req.url === BASELINE_PATH ? byKind.baseline : byKind.node).push(reply.elapsedTime);
  });
  return {
    reset: () => ((byKind.baseline.length = 0), (byKind.node.length = 0)),
    summary: (kind: keyof typeof byKind) => {
      const xs = [...byKind[kind]].sort((a, b) => a - b);
      return { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), mean: xs.reduce((a, x) => a + x, 0) / xs.length };
    },
  };
}

export async function apiGetNode(): Promise<Record<string, string | number>> {
  const s = await startServer(NODES, serverTimes);
  const st = s.extra!;
  try {
    console.log(`api-get-node: ${s.nodeIds.length} nodes, server on 127.0.0.1:${s.port} (setup ${f(s.setupS, 1)} s); load client in a worker thread (own event loop), open loop, keep-alive, Basic auth`);
    const shuffled = [...s.nodeIds].sort(() => Math.random() - 0.5);
    const nodePaths = shuffled.map((id) => `/api/v2/nodes/${id}`);
    const base: Group = { name: `baseline GET ${BASELINE_PATH}`, paths: [BASELINE_PATH] };
    const node: Group = { name: 'GET /api/v2/nodes/:id', paths: nodePaths };
    const MEASURE = 'measure';
    const results = await runClient({
      port: s.port,
      auth: s.auth,
      phases: [
        // a trickle first, so the password check is memoised before a burst would run scrypt per request
        { name: 'warm-up (trickle)', groups: [{ name: 'mixed', paths: [BASELINE_PATH, ...nodePaths.slice(0, 9)] }], rate: 20, seconds: 1, sliceS: 1 },
        { name: 'warm-up', groups: [base, { ...node, paths: nodePaths.slice(-1000) }], rate: RATE, seconds: 3, sliceS: 0.5 },
        // 2 × SECONDS at RATE, alternating 100 ms slices: SECONDS of each at RATE, under the same conditions
        { name: MEASURE, groups: [base, node], rate: RATE, seconds: 2 * SECONDS, sliceS: 0.1 },
      ],
    }, (phase) => phase === MEASURE && st.reset());
    for (const r of results.filter((x) => x.phase !== MEASURE)) console.log(`  ${r.phase}: ${show(r)}`);
    const b = results.find((r) => r.phase === MEASURE && r.name === base.name)!;
    const n = results.find((r) => r.phase === MEASURE && r.name === node.name)!;
    if (n.errors || b.errors) throw new Error(`requests failed: ${n.firstError ?? b.firstError}`);
    const sb = st.summary('baseline');
    const sn = st.summary('node');
    console.log(`  measured: ${RATE} req/s for ${2 * SECONDS} s, alternating 100 ms slices (${SECONDS} s of each); achieved ${f(n.rate, 0)} req/s; server loop ${f(n.serverBusy * 100, 0)}% busy; client timer lag ≤ ${f(n.maxSendLagMs)} ms`);
    console.log(`    ${show(b)}; in the server p50 ${f(sb.p50, 3)} ms, p99 ${f(sb.p99, 3)} ms`);
    console.log(`    ${show(n)}; in the server p50 ${f(sn.p50, 3)} ms, p99 ${f(sn.p99, 3)} ms`);
    console.log(`  p99 ${f(n.p99)} ms = ${f(n.p99 / b.p99, 2)}× the baseline's; the route's own work ≈ ${f(sn.mean - sb.mean, 3)} ms/request (server-side mean minus the baseline's); ${os.availableParallelism()} CPUs, ${cpuPressure()}`);
    console.log(`  budget p99 ≤ 5 ms at 1,000 req/s: ${n.p99 <= 5 && n.rate >= 0.95 * RATE ? 'met' : `MISSED${b.p99 > 5 ? ` (so is the trivial baseline's, ${f(b.p99)} ms: the machine, not the route)` : ''}`}`);
    return {
      nodes: s.nodeIds.length, rate: f(n.rate, 0), p50_ms: f(n.p50), p99_ms: f(n.p99), max_ms: f(n.max),
      baseline_p50_ms: f(b.p50), baseline_p99_ms: f(b.p99), ratio_p99: f(n.p99 / b.p99, 2),
      server_p99_ms: f(sn.p99, 3), baseline_server_p99_ms: f(sb.p99, 3), setup_s: f(s.setupS, 1),
    };
  } finally {
    await s.close();
  }
}

/** One GET, timed to the last byte. */
function timedGet(agent: http.Agent, port: number, auth: string, path: string): Promise<{ ms: number; bytes: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = http.request({ agent, host: '127.0.0.1', port, method: 'GET', path, headers: { authorization: auth, accept: 'application/json' } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ ms: performance.now() - t, bytes, status: res.statusCode ?? 0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function apiListNodes(): Promise<Record<string, string | number>> {
  const reps = Number(process.env.BENCH_API_REPS ?? 7);
  const s = await startServer(NODES);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    console.log(`api-list-nodes: ${s.nodeIds.length} nodes, server on 127.0.0.1:${s.port} (setup ${f(s.setupS, 1)} s)`);
    const warm = await timedGet(agent, s.port, s.auth, '/api/v2/nodes');
    if (warm.status !== 200) throw new Error(`GET /api/v2/nodes answered ${warm.status}`);
    console.log(`  warm-up: ${f(warm.ms, 1)} ms, ${warm.bytes} bytes`);
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < reps; i++) {
      const r = await timedGet(agent, s.port, s.auth, '/api/v2/nodes');
      if (r.status !== 200) throw new Error(`GET /api/v2/nodes answered ${r.status}`);
      times.push(r.ms);
      bytes = r.bytes;
    }
    const base = await timedGet(agent, s.port, s.auth, BASELINE_PATH);
    times.sort((a, b) => a - b);
    const median = quantile(times, 0.5);
    const max = times[times.length - 1]!;
    console.log(`  ${reps} runs: ${times.map((t) => f(t, 1)).join(', ')} ms; median ${f(median, 1)} ms, max ${f(max, 1)} ms; ${bytes} bytes (${f(bytes / 1024 / 1024, 2)} MiB)`);
    console.log(`  trivial route for comparison: ${f(base.ms, 2)} ms; budget ≤ 150 ms: ${max <= 150 ? 'met' : median <= 150 ? 'met at the median, not at the max' : 'MISSED'}`);
    return { nodes: s.nodeIds.length, median_ms: f(median, 1), max_ms: f(max, 1), bytes, setup_s: f(s.setupS, 1) };
  } finally {
    agent.destroy();
    await s.close();
  }
}
