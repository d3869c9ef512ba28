/**
 * The store contract on every dialect (SQLite always, PostgreSQL when DATABASE_URL is set):
 * migrations are idempotent and keep data, entities survive the row mappers (JSON text,
 * 0/1 booleans, nulls), `IN` lists are chunked under the parameter limit, and the event log
 * hands out increasing ids that `eventsAfter` follows without gaps.
 */
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { forEachDialect, reopenableStore, type TestDialect } from '../helpers/stores.js';
import type { StoreHandle } from '../../src/store/db.js';
import { chunks, now } from '../../src/store/db.js';
import { migrationProvider } from '../../src/store/migrations/index.js';
import { getNode, insertNode, updateNode } from '../../src/store/nodes.js';
import { insertDeployment, ensureDeploymentRole, getDeploymentRoleById, updateDeploymentRole, listDeploymentRoles } from '../../src/store/deployments.js';
import { briefs, getNodeRole, insertNodeRole, listNodeRoles, setState, updateNodeRole } from '../../src/store/node-roles.js';
import { endRuns, getRun, listRuns, setRunInputs } from '../../src/store/runs.js';
import { startRuns, type Claim } from '../../src/store/claim.js';
import { appendEvents, eventsAfter, lastEventId } from '../../src/store/events.js';
import { NodeRoleState as S } from '../../src/domain/states.js';

let seq = 0;
const uniq = (p: string) => `${p}${++seq}`;

/** Applied migrations (name and the time Kysely recorded) of the store. */
async function applied(h: StoreHandle): Promise<Array<{ name: string; timestamp: string }>> {
  const r = await sql<{ name: string; timestamp: string }>`SELECT name, timestamp FROM kysely_migration ORDER BY name`.execute(h.db);
  return r.rows;
}

/** `table.column` of every column the store has, in its own schema only. */
async function columns(h: StoreHandle, where: string): Promise<string[]> {
  const tables = await h.db.introspection.getTables({ withInternalKyselyTables: true });
  return tables
    .filter((t) => h.caps.dialect === 'sqlite' || t.schema === where)
    .flatMap((t) => t.columns.map((c) => `${t.name}.${c.name}`))
    .sort();
}

async function migrationNames(): Promise<string[]> {
  const provider = migrationProvider({ autoId: (t) => t as never });
  return Object.keys(await provider.getMigrations()).sort();
}

/** A node-role claim as the annealer builds it, for opening runs at the store level. */
function claimOf(nr: { id: number; node_id: number; role_id: number; deployment_id: number; cohort: number; run_count: number }, jig = 'test'): Claim {
  return {
    nodeRoleId: nr.id, nodeId: nr.node_id, roleId: nr.role_id, deploymentId: nr.deployment_id,
    jigName: jig, runCount: nr.run_count, cohort: nr.cohort, destructive: false, runId: 0,
  };
}

forEachDialect('store contract', (store, dialect: TestDialect) => {
  const db = () => store().handle.db;

  describe('migrations', () => {
    it('a second open of the same store migrates nothing and the data survives', async () => {
      // on PostgreSQL the suite's own store is already migrated in another schema of the same
      // database; the new schema must still get its own migration bookkeeping
      const loc = reopenableStore(dialect, 'mig');
      try {
        const first = await loc.open();
        const want = await migrationNames();
        const before = await applied(first);
        expect(before.map((m) => m.name)).toEqual(want);
        const cols = await columns(first, loc.where);
        expect(cols).toContain('node_roles.state');
        const dep = await insertDeployment(first.db, { name: 'survivor', parent_id: null, state: 1 });
        await insertNode(first.db, { name: 'keep.me.test', deployment_id: dep.id, alive: true, discovery: { a: [1, 2] } });
        await first.close();

        const second = await loc.open();
        expect(await applied(second)).toEqual(before); // same rows, same timestamps: nothing re-ran
        expect(await columns(second, loc.where)).toEqual(cols);
        const node = await getNode(second.db, 'keep.me.test');
        expect(node).toMatchObject({ deployment_id: dep.id, alive: true, discovery: { a: [1, 2] } });

        // and a third open while the second is still open
        const third = await loc.open();
        expect(await applied(third)).toEqual(before);
        expect((await getNode(third.db, 'keep.me.test'))?.id).toBe(node!.id);
      } finally {
        await loc.cleanup();
      }
    });

    if (dialect === 'postgres') {
      it('several servers opening one new schema at once all succeed and migrate it once', async () => {
        const loc = reopenableStore(dialect, 'migc');
        try {
          const handles = await Promise.all([loc.open(), loc.open(), loc.open(), loc.open()]);
          const want = await migrationNames();
          for (const h of handles) expect((await applied(h)).map((m) => m.name)).toEqual(want);
          const dep = await insertDeployment(handles[0]!.db, { name: 'shared', parent_id: null, state: 1 });
          expect((await handles[3]!.db.selectFrom('deployments').select('id').where('name', '=', 'shared').executeTakeFirst())?.id).toBe(dep.id);
        } finally {
          await loc.cleanup();
        }
      });
    }
  });

  describe('entities round-trip through the row mappers', () => {
    it('nodes: JSON blobs, 0/1 booleans, nulls, lower-cased names', async () => {
      const dep = await insertDeployment(db(), { name: uniq('dep'), parent_id: null, state: 0 });
      const discovery = {
        ohai: { dmi: { system: { serial_number: 'SN-1', 'product name': 'Box "9000"' } } },
        list: [1, 'two', null, true, { deep: [[]] }],
        text: 'ünïcødé ✓ \'quoted\' \\ back',
        big: 2 ** 40,
        neg: -1.5,
      };
      const created = await insertNode(db(), {
        name: 'MiXeD.Case.test', deployment_id: dep.id, alive: true, available: false, allocated: true,
        discovery, hint: { 'admin-net': { ip: '10.0.0.1' } }, quirks: ['q1', 'q2'], bootenv: 'local', order: 7,
      });
      expect(created.name).toBe('mixed.case.test');
      const n = await getNode(db(), 'MIXED.case.TEST');
      expect(n).toEqual(created);
      expect(n).toMatchObject({
        admin: false, system: false, alive: true, available: false, allocated: true,
        discovery, hint: { 'admin-net': { ip: '10.0.0.1' } }, notes: {}, quirks: ['q1', 'q2'],
        target_role_id: null, description: '', bootenv: 'local', order: 7, deployment_id: dep.id,
      });
      for (const k of ['admin', 'system', 'alive', 'available', 'allocated'] as const) expect(typeof n![k]).toBe('boolean');

      // the encoding underneath: 0/1 integers and JSON text
      const raw = await db().selectFrom('nodes').selectAll().where('id', '=', n!.id).executeTakeFirstOrThrow();
      expect([raw.alive, raw.available, raw.allocated, raw.admin]).toEqual([1, 0, 1, 0]);
      expect(JSON.parse(raw.discovery)).toEqual(discovery);

      await updateNode(db(), n!.id, { alive: false, available: true, target_role_id: 42, notes: { why: null }, quirks: [] });
      expect(await getNode(db(), n!.id)).toMatchObject({ alive: false, available: true, target_role_id: 42, notes: { why: null }, quirks: [], discovery });
      await updateNode(db(), n!.id, { target_role_id: null });
      expect((await getNode(db(), n!.id))!.target_role_id).toBeNull();
    });

    it('node-roles: defaults, JSON buckets, available flag, nullable status', async () => {
      const dep = await insertDeployment(db(), { name: uniq('dep'), parent_id: null, state: 1 });
      const node = await insertNode(db(), { name: `${uniq('nr')}.round.test`, deployment_id: dep.id });
      const nr = await insertNodeRole(db(), { deployment_id: dep.id, role_id: 900, node_id: node.id, state: S.PROPOSED, cohort: 3 });
      expect(nr).toMatchObject({
        deployment_id: dep.id, role_id: 900, node_id: node.id, state: S.PROPOSED, cohort: 3, run_count: 0, rerun: 0,
        status: null, runlog: '', available: true, proposed_data: {}, committed_data: {}, sysdata: {}, wall: {}, notes: {},
      });
      expect(typeof nr.available).toBe('boolean');
      expect(await getNodeRole(db(), nr.id)).toEqual(nr);

      const data = { svc: { port: 5432, hosts: ['a', 'b'], tls: false, nothing: null } };
      await updateNodeRole(db(), nr.id, {
        proposed_data: data, committed_data: { x: 1 }, sysdata: { s: 's' }, wall: { out: { v: [1] } }, notes: { n: true },
        runlog: 'line 1\nline 2\n', status: 'waiting', available: false,
      });
      const got = await getNodeRole(db(), nr.id);
      expect(got).toMatchObject({
        proposed_data: data, committed_data: { x: 1 }, sysdata: { s: 's' }, wall: { out: { v: [1] } }, notes: { n: true },
        runlog: 'line 1\nline 2\n', status: 'waiting', available: false,
      });
      expect(typeof got!.available).toBe('boolean');
      await updateNodeRole(db(), nr.id, { status: null, available: true });
      expect(await getNodeRole(db(), nr.id)).toMatchObject({ status: null, available: true, proposed_data: data });
    });

    it('deployment-roles: proposed_data null ⇔ committed, JSON buckets', async () => {
      const dep = await insertDeployment(db(), { name: uniq('dep'), parent_id: null, state: 0 });
      const dr = await ensureDeploymentRole(db(), dep.id, 901);
      expect(dr).toMatchObject({ deployment_id: dep.id, role_id: 901, committed_data: {}, proposed_data: null, wall: {}, notes: {} });
      expect((await ensureDeploymentRole(db(), dep.id, 901)).id).toBe(dr.id); // find, not create again

      const proposed = { cfg: { list: [{ k: 'v' }], flag: true, n: 0 } };
      await updateDeploymentRole(db(), dr.id, { proposed_data: proposed, wall: { w: 1 }, notes: { note: 'x' } });
      expect(await getDeploymentRoleById(db(), dr.id)).toMatchObject({ proposed_data: proposed, committed_data: {}, wall: { w: 1 }, notes: { note: 'x' } });
      await updateDeploymentRole(db(), dr.id, { committed_data: proposed, proposed_data: null });
      const committed = await getDeploymentRoleById(db(), dr.id);
      expect(committed).toMatchObject({ proposed_data: null, committed_data: proposed });
      expect(await listDeploymentRoles(db(), dep.id)).toEqual([committed]);
    });

    it('runs: opened running with worker and lease, inputs and provenance, ended with wall or error', async () => {
      const dep = await insertDeployment(db(), { name: uniq('dep'), parent_id: null, state: 1 });
      const node = await insertNode(db(), { name: `${uniq('run')}.round.test`, deployment_id: dep.id, alive: true, available: true });
      const a = await insertNodeRole(db(), { deployment_id: dep.id, role_id: 902, node_id: node.id, state: S.TODO, cohort: 0 });
      const b = await insertNodeRole(db(), { deployment_id: dep.id, role_id: 903, node_id: node.id, state: S.TODO, cohort: 0 });
      const lease = new Date(Date.now() + 60_000).toISOString();
      const claims = [claimOf(a), claimOf(b, 'script')];
      await db().transaction().execute((tx) => startRuns(tx, claims, 'host:1:w', lease));
      expect(claims.every((c) => c.runId > 0)).toBe(true);
      expect(claims[0]!.runId).not.toBe(claims[1]!.runId);
      expect((await briefs(db(), [a.id, b.id])).map((x) => x.state)).toEqual([S.TRANSITION, S.TRANSITION]);

      const opened = await getRun(db(), claims[0]!.runId);
      expect(opened).toMatchObject({
        node_role_id: a.id, node_id: node.id, jig: 'test', status: 'running', worker: 'host:1:w', lease_until: lease,
        inputs: null, provenance: null, wall: null, log: '', exit_status: null, error: null, ended_at: null, replay_of: null,
      });
      expect(opened!.started_at).not.toBeNull();

      const inputs = { svc: { port: 1, on: true, none: null }, list: ['x'] };
      const provenance = { 'svc.port': { source: 'node_role', id: 7 } };
      await setRunInputs(db(), claims[0]!.runId, inputs, provenance);
      await endRuns(db(), [
        { id: claims[0]!.runId, status: 'done', wall: { out: { n: 2 } }, log: 'ok\n', exit_status: 0 },
        { id: claims[1]!.runId, status: 'failed', log: 'boom\n', error: 'exit 2', exit_status: 2 },
      ]);
      const done = await getRun(db(), claims[0]!.runId);
      expect(done).toMatchObject({ status: 'done', inputs, provenance, wall: { out: { n: 2 } }, log: 'ok\n', exit_status: 0, error: null, lease_until: null });
      expect(done!.ended_at).not.toBeNull();
      const failed = await getRun(db(), claims[1]!.runId);
      expect(failed).toMatchObject({ status: 'failed', jig: 'script', inputs: null, wall: null, log: 'boom\n', exit_status: 2, error: 'exit 2' });

      // the grouped path of endRuns (no wall, log or error) keeps the nulls
      const c = await insertNodeRole(db(), { deployment_id: dep.id, role_id: 904, node_id: node.id, state: S.TODO, cohort: 0 });
      const third = [claimOf(c)];
      await db().transaction().execute((tx) => startRuns(tx, third, 'host:1:w', lease));
      await endRuns(db(), [{ id: third[0]!.runId, status: 'skipped' }]);
      expect(await getRun(db(), third[0]!.runId)).toMatchObject({ status: 'skipped', wall: null, error: null, exit_status: null, log: '' });

      expect((await listRuns(db(), { nodeId: node.id })).map((r) => r.id)).toEqual([third[0]!.runId, claims[1]!.runId, claims[0]!.runId]);
      expect((await listRuns(db(), { nodeId: node.id, statuses: ['failed'] })).map((r) => r.id)).toEqual([claims[1]!.runId]);
    });
  });

  describe('IN lists stay under the parameter limit', () => {
    it('chunks() splits in order, within the size, and the default size fits every dialect', () => {
      const items = Array.from({ length: 12_345 }, (_, i) => i);
      const cs = chunks(items);
      expect(cs.flat()).toEqual(items);
      expect(cs.every((c) => c.length > 0 && c.length <= 5000)).toBe(true);
      expect(chunks(items, 1000)).toHaveLength(13);
      expect(chunks([])).toEqual([]);
      expect(5000).toBeLessThanOrEqual(store().handle.caps.maxParams);
    });

    it('caps.maxParams is honest: an IN list that long binds', async () => {
      const n = store().handle.caps.maxParams;
      const ids = Array.from({ length: n }, (_, i) => -1 - i);
      const r = await db().selectFrom('node_roles').select((e) => e.fn.countAll<number>().as('c')).where('id', 'in', ids).executeTakeFirstOrThrow();
      expect(Number(r.c)).toBe(0);
    });

    it('listNodeRoles and briefs with 12,000 ids (and 70,000, beyond either limit) return exactly those, in cohort-then-id order', async () => {
      const dep = await insertDeployment(db(), { name: uniq('bulk'), parent_id: null, state: 1 });
      const t = now();
      const rows = Array.from({ length: 12_000 }, (_, i) => ({
        deployment_id: dep.id, role_id: 10_000 + i, node_id: 1_000_000 + i, state: i % 7 === 0 ? S.ACTIVE : S.TODO,
        cohort: (i * 7919) % 5, created_at: t, updated_at: t,
      }));
      const ids: number[] = [];
      for (const c of chunks(rows, 1000)) ids.push(...(await db().insertInto('node_roles').values(c).returning('id').execute()).map((r) => r.id));
      expect(ids).toHaveLength(12_000);

      const all = await listNodeRoles(db(), { ids });
      expect(all).toHaveLength(12_000);
      expect(new Set(all.map((n) => n.id))).toEqual(new Set(ids));
      for (let i = 1; i < all.length; i++) {
        const p = all[i - 1]!;
        const q = all[i]!;
        expect(p.cohort < q.cohort || (p.cohort === q.cohort && p.id < q.id)).toBe(true);
      }
      const desc = await listNodeRoles(db(), { ids }, 'desc');
      expect(desc.map((n) => n.id)).toEqual(all.map((n) => n.id).reverse());

      const todo = await listNodeRoles(db(), { ids, states: [S.TODO] });
      expect(todo).toHaveLength(rows.filter((r) => r.state === S.TODO).length);

      // 70,000 ids: more than SQLite (32,766) or PostgreSQL (65,535) bind in one statement
      const missing = Array.from({ length: 58_000 }, (_, i) => -1 - i);
      const mixed = [...missing.slice(0, 29_000), ...ids, ...missing.slice(29_000)];
      expect((await listNodeRoles(db(), { ids: mixed })).map((n) => n.id)).toEqual(all.map((n) => n.id));
      expect(await briefs(db(), mixed)).toHaveLength(12_000);

      await setState(db(), ids, S.BLOCKED);
      const after = await db().selectFrom('node_roles').select((e) => e.fn.countAll<number>().as('c')).where('deployment_id', '=', dep.id).where('state', '=', S.BLOCKED).executeTakeFirstOrThrow();
      expect(Number(after.c)).toBe(12_000);
    });
  });

  describe('events', () => {
    it('ids strictly increase and eventsAfter(id) returns exactly the later events, in order', async () => {
      const start = await lastEventId(db());
      const batches = [
        [{ type: 'a', payload: { n: 1 } }, { type: 'b', payload: { list: [1, null, 'x'] } }, { type: 'c', payload: null }],
        [{ type: 'd', payload: { nested: { deep: true } } }],
        [{ type: 'e', payload: 'text' }, { type: 'f', payload: 7 }],
      ];
      const ids: number[] = [];
      for (const b of batches) ids.push(...(await appendEvents(db(), b)));
      expect(await appendEvents(db(), [])).toEqual([]);
      expect(ids).toHaveLength(6);
      expect(ids[0]!).toBeGreaterThan(start);
      for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
      expect(await lastEventId(db())).toBe(ids[5]);

      const sent = batches.flat();
      const all = await eventsAfter(db(), start);
      expect(all.map((e) => e.id)).toEqual(ids);
      expect(all.map((e) => ({ type: e.type, payload: e.payload }))).toEqual(sent.map((e) => ({ type: e.type, payload: e.payload ?? {} })));
      for (let k = 0; k < ids.length; k++) {
        expect((await eventsAfter(db(), ids[k]!)).map((e) => e.id)).toEqual(ids.slice(k + 1));
      }
      expect((await eventsAfter(db(), start, 2)).map((e) => e.id)).toEqual(ids.slice(0, 2));
      expect(await eventsAfter(db(), ids[5]!)).toEqual([]);
    });

    if (dialect === 'postgres') {
      it('a reader following eventsAfter(last seen) misses no event when writers commit out of id order', async () => {
        // writer 1 appends first but commits last; writer 2 commits in between. A reader that
        // moved its cursor past writer 2's event must still get writer 1's afterwards.
        const cursor0 = await lastEventId(db());
        const seen: number[] = [];
        let cursor = cursor0;
        const read = async () => {
          for (const e of await eventsAfter(db(), cursor)) {
            seen.push(e.id);
            cursor = e.id;
          }
        };
        let release!: () => void;
        const hold = new Promise<void>((r) => (release = r));
        let appended!: (id: number) => void;
        const firstId = new Promise<number>((r) => (appended = r));
        const w1 = db().transaction().execute(async (tx) => {
          const [id] = await appendEvents(tx, [{ type: 'slow', payload: {} }]);
          appended(id!);
          await hold;
          return id!;
        });
        await firstId;
        const w2 = db().transaction().execute(async (tx) => (await appendEvents(tx, [{ type: 'fast', payload: {} }]))[0]!);
        // give writer 2 up to 1 s to commit (it may legitimately wait for writer 1)
        const w2Done = await Promise.race([w2.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]);
        if (w2Done) await read();
        release();
        const [id1, id2] = await Promise.all([w1, w2]);
        const deadline = Date.now() + 5000;
        while (!(seen.includes(id1) && seen.includes(id2)) && Date.now() < deadline) {
          await read();
          if (!(seen.includes(id1) && seen.includes(id2))) await new Promise((r) => setTimeout(r, 20));
        }
        expect(seen, `events after ${cursor0} as a follower saw them (writer 1 = ${id1}, writer 2 = ${id2})`).toEqual([...seen].sort((x, y) => x - y));
        expect(seen).toContain(id1);
        expect(seen).toContain(id2);
      });
    }
  });
});
