/**
 * The scale-out story (DESIGN §3 Store): three servers — each one `startCrowbar` with its own
 * annealer — bootstrap the SAME PostgreSQL schema at once and anneal 60 nodes × (a five-role
 * test/noop chain + three independent roles) together. Afterwards: every node-role ACTIVE,
 * exactly run_count successful runs per node-role and no other runs (nothing claimed twice),
 * runs spread over more than one worker, and no two runs of one node overlapping in time
 * (per-node concurrency 1 held across annealers).
 *
 * PostgreSQL only: skipped without DATABASE_URL, except under CROWBAR_E2E=1 where that fails.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { dropSchema } from '../../src/store/db.js';
import { pino } from 'pino';
import { compileConfig } from '../../src/config.js';
import { startCrowbar, type Crowbar } from '../../src/main.js';
import { NodeRoleState as S } from '../../src/domain/states.js';
import { createNode } from '../../src/engine/nodes.js';
import { bindRole } from '../../src/engine/binding.js';
import { waitFor } from '../helpers/wait.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/storecat');
const DATABASE_URL = process.env['DATABASE_URL'];
const E2E = process.env['CROWBAR_E2E'] === '1';
const SERVERS = 3;
const NODES = 60;
const ROLES_PER_NODE = 8; // sc-chain-1..5 (bound through sc-chain-5) + sc-par-1..3


/** Bounds a promise that has no deadline of its own (start, stop). */
async function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

if (!DATABASE_URL && E2E) {
  describe('multi-annealer scale-out on one PostgreSQL', () => {
    it('needs PostgreSQL', () => {
      throw new Error('CROWBAR_E2E=1 but DATABASE_URL is unset: the multi-annealer suite needs a PostgreSQL database (postgres://…)');
    });
  });
}

describe.skipIf(!DATABASE_URL)(
  `multi-annealer scale-out on one PostgreSQL${DATABASE_URL ? '' : ' (skipped: DATABASE_URL is unset; several annealers need a shared PostgreSQL)'}`,
  () => {
    const schema = `ma_${randomBytes(6).toString('hex')}`;
    const dirs: string[] = [];
    const servers: Crowbar[] = [];
    afterAll(async () => {
      await Promise.allSettled(servers.map((s) => within('closing a server', 30_000, s.close())));
      await dropSchema(DATABASE_URL!, schema);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it(`${SERVERS} servers bootstrap one schema at once, then anneal ${NODES} nodes together without double or overlapping runs`, { timeout: 180_000 }, async () => {
      const configs = Array.from({ length: SERVERS }, () => {
        const dataDir = mkdtempSync(join(tmpdir(), 'crowbar-multi-'));
        dirs.push(dataDir);
        return compileConfig({
          dataDir, databaseUrl: DATABASE_URL, pgSchema: schema, dev: true, tickMs: 10,
          // a few slots each, so no single annealer can hold the whole fleet
          concurrency: 4, perNode: 1, barclampDirs: [fixtures], logLevel: 'silent',
        }, {});
      });
      // concurrent first start on a schema that does not exist yet
      const started = await within('three concurrent startCrowbar', 60_000, Promise.allSettled(
        configs.map((c) => startCrowbar(c, { anneal: true, noAdmin: true, log: pino({ level: 'silent' }) })),
      ));
      for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
      const failures = started.flatMap((s) => (s.status === 'rejected' ? [String((s.reason as Error)?.stack ?? s.reason)] : []));
      expect(failures, 'every concurrent bootstrap succeeds').toEqual([]);
      expect(servers.map((s) => s.boot.created).filter(Boolean), 'exactly one server created the system deployment').toHaveLength(1);
      expect(new Set(servers.map((s) => s.annealer.worker)).size).toBe(SERVERS);

      const db = servers[0]!.engine.db;
      const count = async (q: Promise<{ c: string | number | bigint } | undefined>) => Number((await q)?.c ?? 0);
      expect(await count(db.selectFrom('deployments').select((e) => e.fn.countAll().as('c')).where('name', '=', 'system').executeTakeFirst())).toBe(1);
      expect(await count(db.selectFrom('barclamps').select((e) => e.fn.countAll().as('c')).where('name', '=', 'storecat').executeTakeFirst())).toBe(1);
      expect(await count(db.selectFrom('roles').select((e) => e.fn.countAll().as('c')).where('name', 'like', 'sc-%').executeTakeFirst())).toBe(14);

      // the fleet, built in one transaction through one server's engine while the deployment is proposed
      const engine = servers[0]!.engine;
      const dep = await engine.createDeployment({ name: 'multi' });
      await engine.tx(async (ctx) => {
        for (let i = 0; i < NODES; i++) {
          const name = `m${i}.multi.test`;
          await createNode(ctx, { name, deployment: 'multi', alive: true, available: true, hammers: ['sim'] });
          for (const role of ['sc-chain-5', 'sc-par-1', 'sc-par-2', 'sc-par-3']) await bindRole(ctx, role, name, 'multi');
        }
      });
      const total = await count(db.selectFrom('node_roles').select((e) => e.fn.countAll().as('c')).where('deployment_id', '=', dep.id).executeTakeFirst());
      expect(total).toBe(NODES * ROLES_PER_NODE);
      await engine.commitDeployment('multi');

      await waitFor('every node-role ACTIVE', 120_000, async () => {
        const rows = await db.selectFrom('node_roles').select(['state', (e) => e.fn.countAll().as('c')]).where('deployment_id', '=', dep.id).groupBy('state').execute();
        const by = new Map(rows.map((r) => [r.state, Number(r.c)]));
        if (by.get(S.ERROR)) {
          const errs = await db.selectFrom('node_roles').select(['id', 'runlog']).where('deployment_id', '=', dep.id).where('state', '=', S.ERROR).limit(3).execute();
          throw new Error(`node-roles went to ERROR: ${JSON.stringify(errs)}`);
        }
        return by.get(S.ACTIVE) === total ? true : undefined;
      });
      await within('stopping the annealers', 30_000, Promise.all(servers.map((s) => s.annealer.stop())));

      const nrs = await db.selectFrom('node_roles').select(['id', 'node_id', 'state', 'run_count']).where('deployment_id', '=', dep.id).execute();
      const runs = await db
        .selectFrom('runs')
        .innerJoin('node_roles as nr', 'nr.id', 'runs.node_role_id')
        .select(['runs.id', 'runs.node_role_id', 'runs.node_id', 'runs.status', 'runs.worker', 'runs.created_at', 'runs.started_at', 'runs.ended_at', 'runs.jig'])
        .where('nr.deployment_id', '=', dep.id)
        .orderBy('runs.id')
        .execute();

      // every node-role ACTIVE, run once, by exactly one successful run and no other
      expect(nrs.filter((n) => n.state !== S.ACTIVE)).toEqual([]);
      const perNr = new Map<number, typeof runs>();
      for (const r of runs) perNr.set(r.node_role_id, [...(perNr.get(r.node_role_id) ?? []), r]);
      const wrong = nrs.flatMap((n) => {
        const rs = perNr.get(n.id) ?? [];
        const done = rs.filter((r) => r.status === 'done').length;
        return done === n.run_count && rs.length === n.run_count ? [] : [{ node_role: n.id, run_count: n.run_count, runs: rs.map((r) => `${r.id}:${r.status}:${r.worker}`) }];
      });
      expect(wrong, 'node-roles whose runs are not exactly run_count done runs').toEqual([]);
      expect(nrs.filter((n) => n.run_count !== 1).map((n) => ({ ...n, runs: (perNr.get(n.id) ?? []).map((r) => `${r.id}:${r.status}:${r.worker}`) })), 'each node-role ran exactly once').toEqual([]);
      expect(runs).toHaveLength(total);
      expect(new Set(runs.map((r) => r.jig))).toEqual(new Set(['test', 'noop']));

      // the work was shared
      const byWorker = new Map<string, number>();
      for (const r of runs) byWorker.set(r.worker ?? '?', (byWorker.get(r.worker ?? '?') ?? 0) + 1);
      expect([...byWorker.keys()].every((w) => servers.some((s) => s.annealer.worker === w))).toBe(true);
      expect(byWorker.size, `runs per worker: ${JSON.stringify(Object.fromEntries(byWorker))}`).toBeGreaterThan(1);

      // per node, each run's in-flight window (claim → recorded end) closes before the next opens
      const perNode = new Map<number, typeof runs>();
      for (const r of runs) perNode.set(r.node_id, [...(perNode.get(r.node_id) ?? []), r]);
      const overlaps: string[] = [];
      for (const [nodeId, rs] of perNode) {
        const w = rs.map((r) => ({ id: r.id, worker: r.worker, from: r.created_at, to: r.ended_at! })).sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : a.id - b.id));
        for (let i = 1; i < w.length; i++) {
          if (w[i]!.from < w[i - 1]!.to) overlaps.push(`node ${nodeId}: run ${w[i - 1]!.id} (${w[i - 1]!.worker}) ${w[i - 1]!.from}→${w[i - 1]!.to} overlaps run ${w[i]!.id} (${w[i]!.worker}) from ${w[i]!.from}`);
        }
      }
      expect(overlaps, 'runs of one node in flight at the same time').toEqual([]);
      expect(runs.every((r) => r.ended_at !== null && r.started_at !== null && r.created_at <= r.started_at && r.started_at <= r.ended_at!)).toBe(true);
    });
  },
);
