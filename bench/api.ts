/**
 * The API benchmarks (DESIGN.md §4: one node by id p99 ≤ 5 ms at 1,000 req/s; list 10,000 nodes
 * ≤ 150 ms). Each starts a real server in-process — startCrowbar on SQLite in a temp dir, buildApp,
 * listen on 127.0.0.1:0 — with 10,000 simulated nodes (registerSimNodes: realistic discovery
 * inventory, no roles, not committed), and talks to it over real HTTP with Basic auth.
 *
 * api-get-node: an open-loop load generator in a worker thread (its own event loop and heap, so
 * client work never queues behind the server's) fires `GET /api/v2/nodes/:id` for random nodes on a
 * fixed timetable (~1,000 req/s for 10 s) over keep-alive sockets. Each latency is measured from
 * the request's *scheduled* send time, so a stalled server is charged for every request it delayed
 * (no coordinated omission). The same load against a trivial authenticated route on the same
 * server, in the same run, is the baseline: HTTP + Fastify + auth, without the route's own work.
 *
 * api-list-nodes: `GET /api/v2/nodes` a few times in a row (after one warm-up), median and max of
 * the time to the last byte, and the response size.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

interface Server {
  cb: Crowbar;
  app: FastifyInstance;
  port: number;
  auth: string;
  nodeIds: number[];
  setupS: number;
  close(): Promise<void>;
}

async function startServer(nodes: number): Promise<Server> {
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
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const setupS = (performance.now() - t0) / 1000;
    return {
      cb, app, port, nodeIds, setupS,
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

interface Phase {
  name: string;
  /** request paths, used round-robin */
  paths: string[];
  rate: number;
  seconds: number;
}

interface ClientJob {
  role: 'crowbar-bench-api-client';
  port: number;
  auth: string;
  phases: Phase[];
}

export interface PhaseResult {
  name: string;
  scheduled: number;
  completed: number;
  errors: number;
  firstError?: string;
  /** completed requests per second, from the first scheduled send to the last response */
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** how late the timer fired, at worst (client-side scheduling slack, included in latencies) */
  maxSendLagMs: number;
}

const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : NaN);

async function runPhase(agent: http.Agent, port: number, auth: string, ph: Phase): Promise<PhaseResult> {
  const total = Math.round(ph.rate * ph.seconds);
  const interval = 1000 / ph.rate;
  const lat: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let done = 0;
  let lastEnd = 0;
  let maxLag = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const finish = () => {
    if (++done === total) resolveAll();
  };
  const fail = (why: string) => {
    errors++;
    firstError ??= why;
    finish();
  };
  const fire = (i: number, scheduled: number) => {
    const req = http.request(
      { agent, host: '127.0.0.1', port, method: 'GET', path: ph.paths[i % ph.paths.length], headers: { authorization: auth, accept: 'application/json' } },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          const end = performance.now();
          lastEnd = end;
          if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode} for ${ph.paths[i % ph.paths.length]}`);
          lat.push(end - scheduled);
          finish();
        });
        res.on('error', (e) => fail(e.message));
      },
    );
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
  lat.sort((a, b) => a - b);
  return {
    name: ph.name, scheduled: total, completed: lat.length, errors, firstError,
    rate: lat.length / ((lastEnd - t0) / 1000),
    p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99), max: lat[lat.length - 1] ?? NaN,
    maxSendLagMs: maxLag,
  };
}

async function clientMain(job: ClientJob): Promise<PhaseResult[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const out: PhaseResult[] = [];
  for (const ph of job.phases) out.push(await runPhase(agent, job.port, job.auth, ph));
  agent.destroy();
  return out;
}

if (!isMainThread && (workerData as ClientJob | undefined)?.role === 'crowbar-bench-api-client') {
  clientMain(workerData as ClientJob).then(
    (r) => parentPort!.postMessage({ ok: r }),
    (e) => parentPort!.postMessage({ error: (e as Error).stack ?? String(e) }),
  );
}

function runClient(job: Omit<ClientJob, 'role'>): Promise<PhaseResult[]> {
  return new Promise((resolve, reject) => {
    // this very file, under tsx's loader (a worker does not inherit the hooks `tsx` registered here)
    const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const w = new Worker(boot, { eval: true, workerData: { ...job, role: 'crowbar-bench-api-client' } });
    w.once('message', (m: { ok?: PhaseResult[]; error?: string }) => {
      void w.terminate();
      if (m.ok) resolve(m.ok);
      else reject(new Error(`load client failed: ${m.error}`));
    });
    w.once('error', reject);
  });
}

// scenarios ////////////////////////////////////////////////////////////////////////////////

const f = (n: number, d = 2) => n.toFixed(d);
const show = (r: PhaseResult) =>
  `${r.name}: ${r.completed}/${r.scheduled} ok at ${f(r.rate, 0)} req/s, p50 ${f(r.p50)} ms, p90 ${f(r.p90)} ms, p99 ${f(r.p99)} ms, max ${f(r.max)} ms` +
  `${r.errors ? `, ${r.errors} errors (first: ${r.firstError})` : ''} (timer lag ≤ ${f(r.maxSendLagMs)} ms)`;

export async function apiGetNode(): Promise<Record<string, string | number>> {
  const s = await startServer(NODES);
  try {
    console.log(`api-get-node: ${s.nodeIds.length} nodes, server on 127.0.0.1:${s.port} (setup ${f(s.setupS, 1)} s); load client in a worker thread, open loop, keep-alive`);
    const shuffled = [...s.nodeIds].sort(() => Math.random() - 0.5);
    const nodePaths = shuffled.map((id) => `/api/v2/nodes/${id}`);
    const [trickle, warm, base, node] = await runClient({
      port: s.port,
      auth: s.auth,
      phases: [
        // a trickle first, so the password check is memoised before a burst would run scrypt per request
        { name: 'warm-up (trickle)', paths: [BASELINE_PATH, ...nodePaths.slice(0, 9)], rate: 20, seconds: 1 },
        { name: 'warm-up', paths: [...nodePaths.slice(0, 1000), BASELINE_PATH], rate: RATE, seconds: 3 },
        { name: `baseline GET ${BASELINE_PATH}`, paths: [BASELINE_PATH], rate: RATE, seconds: SECONDS },
        { name: 'GET /api/v2/nodes/:id', paths: nodePaths, rate: RATE, seconds: SECONDS },
      ],
    });
    for (const r of [trickle!, warm!, base!, node!]) console.log(`  ${show(r)}`);
    if (node!.errors || base!.errors) throw new Error(`requests failed: ${node!.firstError ?? base!.firstError}`);
    console.log(`  p99 ${f(node!.p99)} ms = ${f(node!.p99 / base!.p99, 1)}× the baseline's; budget p99 ≤ 5 ms at 1,000 req/s: ${node!.p99 <= 5 && node!.rate >= 0.95 * 1000 ? 'met' : 'MISSED'}`);
    return {
      nodes: s.nodeIds.length, rate: f(node!.rate, 0), p50_ms: f(node!.p50), p99_ms: f(node!.p99), max_ms: f(node!.max),
      baseline_p50_ms: f(base!.p50), baseline_p99_ms: f(base!.p99), ratio_p99: f(node!.p99 / base!.p99, 2), setup_s: f(s.setupS, 1),
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
