/**
 * The noop anneal benchmark: N nodes × a 10-role noop chain with a fan-in cluster role, for
 * N = 1,000 and 10,000, on one dialect. Measures convergence time from commit, node-role state
 * transitions per second (counted from the stored event log), time(10k)/time(1k), peak RSS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { compileConfig } from '../src/config.js';
import { dropSchema, refreshStatistics } from '../src/store/db.js';
import { startCrowbar } from '../src/main.js';
import { createNode, commitNode } from '../src/engine/nodes.js';
import { bindRole } from '../src/engine/binding.js';
import { createDeployment, commitDeployment } from '../src/engine/deployments.js';

const here = dirname(fileURLToPath(import.meta.url));

async function once(dialect: 'sqlite' | 'postgres', nodes: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'crowbar-bench-'));
  const schema = dialect === 'postgres' ? `bench_${randomBytes(5).toString('hex')}` : undefined;
  const cb = await startCrowbar(
    compileConfig({ dataDir, databaseUrl: dialect === 'postgres' ? process.env.DATABASE_URL : undefined, pgSchema: schema, barclampDirs: [join(here, 'barclamp')], dev: false, adminPassword: randomBytes(12).toString('hex') }, {}),
    { anneal: false, noAdmin: true, log: pino({ level: 'warn' }) },
  );
  try {
    const { engine } = cb;
    const t0 = performance.now();
    await engine.tx((ctx) => createDeployment(ctx, { name: 'bench' }));
    const chunk = 250;
    for (let i = 0; i < nodes; i += chunk) {
      await engine.tx(async (ctx) => {
        for (let j = i; j < Math.min(nodes, i + chunk); j++) {
          const name = `b${String(j).padStart(6, '0')}.bench.local`;
          await createNode(ctx, { name, deployment: 'bench', alive: true, available: true });
          if (j < 3) await bindRole(ctx, 'bench-cluster', name, 'bench');
          await bindRole(ctx, 'bench-r10', name, 'bench');
          await commitNode(ctx, name);
        }
      });
      // what registerSimNodes does for bulk loads: keep the planner's statistics current
      if ((i / chunk) % 4 === 3) await refreshStatistics(engine.db, engine.caps);
    }
    await refreshStatistics(engine.db, engine.caps);
    const setupS = (performance.now() - t0) / 1000;
    const before = await lastEvent(cb.engine.db);
    (globalThis as any).__q?.clear();
    const t1 = performance.now();
    await engine.tx((ctx) => commitDeployment(ctx, 'bench'));
    await cb.annealer.start();
    await cb.annealer.settle();
    const seconds = (performance.now() - t1) / 1000;
    const g = (globalThis as any).__q; if (g) console.error([...g.entries()].sort((a: any, b: any) => b[1][0] - a[1][0]).slice(0, 10).map(([k, v]: any) => `${v[0].toFixed(0)}ms ${v[1]} ${k}`).join("\n"));
    const transitions = await countTransitions(cb.engine.db, before);
    const states = await engine.db.selectFrom('node_roles').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('state').execute();
    const total = states.reduce((a, s) => a + Number(s.n), 0);
    const active = Number(states.find((s) => s.state === 0)?.n ?? 0);
    if (active !== total) throw new Error(`did not converge: ${JSON.stringify(states)}`);
    return { nodes, noderoles: total, setupS, seconds, transitions };
  } finally {
    await cb.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (schema) {
      await dropSchema(process.env.DATABASE_URL!, schema);
    }
  }
}

async function lastEvent(db: any): Promise<number> {
  const r = await db.selectFrom('events').select((eb: any) => eb.fn.max('id').as('m')).executeTakeFirst();
  return Number(r?.m ?? 0);
}

async function countTransitions(db: any, after: number): Promise<number> {
  let n = 0;
  let last = after;
  for (;;) {
    const rows = await db.selectFrom('events').select(['id', 'payload']).where('type', '=', 'node_roles').where('id', '>', last).orderBy('id').limit(500).execute();
    if (rows.length === 0) return n;
    for (const r of rows) n += (JSON.parse(r.payload).changes as unknown[]).length;
    last = rows[rows.length - 1].id;
  }
}

export async function annealNoop(dialect: 'sqlite' | 'postgres'): Promise<Record<string, string | number>> {
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    // the small fleet converges in well under a second, so one sample is mostly noise: take the median of three
    const smalls = [];
    for (let i = 0; i < 3; i++) {
      const r = await once(dialect, Number(process.env.BENCH_SMALL ?? 1000));
      console.log(`  ${dialect}: ${r.nodes} nodes / ${r.noderoles} node-roles: setup ${r.setupS.toFixed(1)} s, converged in ${r.seconds.toFixed(2)} s, ${Math.round(r.transitions / r.seconds)} transitions/s`);
      smalls.push(r);
    }
    const small = smalls.sort((a, b) => a.seconds - b.seconds)[1]!;
    const big = await once(dialect, Number(process.env.BENCH_LARGE ?? 10000));
    console.log(`  ${dialect}: ${big.nodes} nodes / ${big.noderoles} node-roles: setup ${big.setupS.toFixed(1)} s, converged in ${big.seconds.toFixed(2)} s, ${Math.round(big.transitions / big.seconds)} transitions/s`);
    const growth = big.seconds / small.seconds; // against the median small run
    const ratio = big.nodes / small.nodes;
    console.log(`  budget: >= 20000 transitions/s; ${big.noderoles} node-roles in <= 10 s; ${ratio}x nodes in <= ${(ratio * 1.1).toFixed(0)}x time (measured ${growth.toFixed(2)}x)`);
    return {
      nodes: big.nodes,
      noderoles: big.noderoles,
      seconds: big.seconds.toFixed(2),
      per_s: Math.round(big.transitions / big.seconds),
      small_seconds: small.seconds.toFixed(2),
      growth: growth.toFixed(2),
      setup_s: big.setupS.toFixed(1),
      rss_mb: Math.round(Math.max(peak, process.memoryUsage().rss) / 1048576),
    };
  } finally {
    clearInterval(sampler);
  }
}
