/**
 * DESIGN §5: a crash at any point loses no committed state, and on restart the runs left in
 * flight are detected and re-queued. A real child process (fixtures/anneal-child.ts) anneals 20
 * sim nodes whose test-jig runs take 1 s; once some runs are done and several are in flight we
 * kill -9 it, start it again on the same store, and check the run history: every node-role
 * ACTIVE, exactly one successful run per completion (done runs == run_count), and every run
 * that was in flight at the kill ended `interrupted` (never completed) and was run again.
 * Once per dialect (PostgreSQL when DATABASE_URL is set, in a fresh schema dropped afterwards).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { dropSchema, openStore, type StoreHandle } from '../../src/store/db.js';
import { NodeRoleState as S } from '../../src/domain/states.js';
import { storeDialects } from '../helpers/stores.js';
import { sleep, waitFor } from '../helpers/wait.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(ROOT, 'test/e2e/fixtures/anneal-child.ts');
const DEPLOYMENT = 'crash';
const NODES = 20;

/** A child process with its output collected and a way to wait for a line of it. */
class Child {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      cwd: ROOT,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.setEncoding('utf8').on('data', (c: string) => (this.stdout += c));
    this.proc.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.exited = new Promise((res) => this.proc.on('exit', (code, signal) => res({ code, signal })));
  }

  /** The rest of the first stdout line starting with `tag `; fails at the deadline or on exit. */
  async line(tag: string, ms: number): Promise<string> {
    let gone = false;
    void this.exited.then(() => (gone = true));
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.stdout.split('\n').find((l) => l.startsWith(`${tag} `));
      if (hit !== undefined) return hit.slice(tag.length + 1);
      if (gone) throw new Error(`child exited before printing ${tag}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`no ${tag} line within ${ms} ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr.slice(-3000)}`);
      await sleep(50);
    }
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k === 'DATABASE_URL' || k.startsWith('CROWBAR_')) delete env[k];
  return env;
}


async function runCounts(db: StoreHandle['db']): Promise<Record<string, number>> {
  const rows = await db.selectFrom('runs').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

for (const dialect of storeDialects()) {
  describe(`crash mid-anneal and restart (${dialect})`, () => {
    const children: Child[] = [];
    let store: StoreHandle | undefined;
    let dataDir: string | undefined;
    let schema: string | undefined;

    afterEach(async () => {
      for (const c of children.splice(0)) {
        c.kill();
        await c.exited;
      }
      await store?.close();
      store = undefined;
      if (schema) {
        await dropSchema(process.env['DATABASE_URL']!, schema);
        schema = undefined;
      }
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      dataDir = undefined;
    });

    it('kill -9 while runs are in flight, restart: converges, nothing lost, nothing run twice', { timeout: 120_000 }, async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'crowbar-crash-'));
      const args = ['--data-dir', dataDir, '--nodes', String(NODES), '--delay', '1', '--deadline-ms', '60000'];
      if (dialect === 'postgres') {
        schema = `crash_${randomBytes(6).toString('hex')}`;
        args.push('--database', process.env['DATABASE_URL']!, '--schema', schema);
      }
      const open = () => (dialect === 'postgres'
        ? openStore({ databaseUrl: process.env['DATABASE_URL'], pgSchema: schema })
        : openStore({ sqlitePath: join(dataDir!, 'crowbar.sqlite') }));

      // first life: register, anneal, and die mid-run
      const first = new Child(args);
      children.push(first);
      const ready = JSON.parse(await first.line('READY', 60_000)) as { pid: number; registered: number };
      expect(ready.registered).toBe(NODES);
      store = await open();
      const db = store.db;
      await first.line('ANNEALING', 10_000);
      const atKill = await waitFor('some runs done and at least 5 in flight', 30_000, async () => {
        const c = await runCounts(db);
        return (c['done'] ?? 0) >= 1 && (c['running'] ?? 0) >= 5 ? c : undefined;
      });
      first.kill();
      const death = await first.exited;
      expect(death.signal).toBe('SIGKILL');
      expect(first.stdout).not.toContain('SETTLED');

      // what the crash left behind: runs still `running`, their node-roles in TRANSITION
      const inFlight = await db.selectFrom('runs').select(['id', 'node_role_id']).where('status', '=', 'running').orderBy('id').execute();
      expect(inFlight.length, `runs in flight at the kill (counts just before: ${JSON.stringify(atKill)})`).toBeGreaterThanOrEqual(1);
      const stranded = await db.selectFrom('node_roles').select('id').where('state', '=', S.TRANSITION).orderBy('id').execute();
      expect(stranded.map((r) => r.id)).toEqual(inFlight.map((r) => r.node_role_id).sort((x, y) => x - y));
      const activeBefore = await db.selectFrom('node_roles').select(['id', 'run_count']).where('state', '=', S.ACTIVE).execute();

      // second life: recover and converge
      const second = new Child(args);
      children.push(second);
      const again = JSON.parse(await second.line('READY', 60_000)) as { registered: number };
      expect(again.registered).toBe(0);
      const settled = JSON.parse(await second.line('SETTLED', 90_000)) as { settled: boolean; states: Record<string, number> };
      const exit = await Promise.race([second.exited, sleep(20_000).then(() => ({ code: -999, signal: null }))]);
      expect(settled.settled, second.stderr.slice(-3000)).toBe(true);
      expect(exit.code, second.stderr.slice(-3000)).toBe(0);

      // every node-role ACTIVE, none left in TRANSITION, no run left running
      const nrs = await db
        .selectFrom('node_roles as nr')
        .innerJoin('deployments as d', 'd.id', 'nr.deployment_id')
        .innerJoin('roles as r', 'r.id', 'nr.role_id')
        .select(['nr.id', 'nr.state', 'nr.run_count', 'r.name as role'])
        .where('d.name', '=', DEPLOYMENT)
        .execute();
      expect(nrs.length).toBeGreaterThanOrEqual(NODES * 3);
      expect(nrs.filter((n) => n.state !== S.ACTIVE)).toEqual([]);
      expect(await db.selectFrom('node_roles').select('id').where('state', '=', S.TRANSITION).execute()).toEqual([]);
      const runs = await db.selectFrom('runs').select(['id', 'node_role_id', 'status', 'ended_at', 'error', 'wall']).orderBy('id').execute();
      expect(runs.filter((r) => r.status === 'running')).toEqual([]);
      expect(new Set(runs.map((r) => r.status))).toEqual(new Set(['done', 'interrupted']));

      // exactly one successful run per completion, for every node-role
      const ok = new Map<number, number>();
      for (const r of runs) if (r.status === 'done' || r.status === 'skipped') ok.set(r.node_role_id, (ok.get(r.node_role_id) ?? 0) + 1);
      const mismatched = nrs.filter((n) => (ok.get(n.id) ?? 0) !== n.run_count || n.run_count < 1);
      expect(mismatched.map((n) => ({ ...n, successfulRuns: ok.get(n.id) ?? 0 }))).toEqual([]);

      // the runs in flight at the kill, and only they, were interrupted — never completed — and
      // their node-roles ran again afterwards
      const interrupted = runs.filter((r) => r.status === 'interrupted');
      expect(interrupted.map((r) => r.id)).toEqual(inFlight.map((r) => r.id));
      for (const r of interrupted) {
        expect(r.ended_at, `run ${r.id} ended_at`).not.toBeNull();
        expect(r.wall, `run ${r.id} has no outputs`).toBeNull();
        expect(r.error).toMatch(/interrupted/);
        const rerun = runs.find((x) => x.node_role_id === r.node_role_id && x.id > r.id && x.status === 'done');
        expect(rerun, `node-role ${r.node_role_id} ran again after interrupted run ${r.id}`).toBeDefined();
      }

      // node-roles ACTIVE before the crash were not run again
      const now = new Map(nrs.map((n) => [n.id, n.run_count]));
      for (const b of activeBefore) expect(now.get(b.id), `run_count of node-role ${b.id}, ACTIVE before the crash`).toBe(b.run_count);
    });
  });
}
