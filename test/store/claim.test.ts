/**
 * The annealer's claim at the store level, on every dialect, with real data built through the
 * engine (bind, commit) and the annealer left off: which node-roles are runnable, the per-node
 * limit, the order (lowest cohort, then id), the inline and slot budgets, the original's
 * node-wide halt on ERROR, and (PostgreSQL) two claimers never sharing a node-role or a node.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestCrowbar, type TestCrowbar } from '../helpers/crowbar.js';
import { claimRunnable, startRuns, type Claim, type ClaimOptions } from '../../src/store/claim.js';
import { briefs, setState, updateNodeRole } from '../../src/store/node-roles.js';
import { updateNode } from '../../src/store/nodes.js';
import { listJigs } from '../../src/store/jigs.js';
import { NodeRoleState as S } from '../../src/domain/states.js';
import type { NodeRole } from '../../src/domain/entities.js';
import type { Tx } from '../../src/store/db.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/storecat');
let seq = 0;

for (const dialect of storeDialects()) {
  describe(`claim semantics (${dialect})`, () => {
    let cb: TestCrowbar;
    beforeAll(async () => {
      cb = await startTestCrowbar(dialect, { anneal: false, admin: false, config: { barclampDirs: [fixtures] } });
    });
    afterAll(async () => cb?.cleanup());
    // every test builds its own nodes; what earlier tests left runnable is taken out of play
    beforeEach(async () => {
      await cb.engine.db.updateTable('nodes').set({ available: 0 }).execute();
    });

    /** The options the annealer passes (dev mode: any jig, the test jig standing in). */
    function opts(o: Partial<ClaimOptions> = {}): ClaimOptions {
      return {
        worker: 'test:0:claims',
        slots: 64,
        inlineLimit: 2000,
        inlineJigs: cb.jigs.names().filter((n) => cb.jigs.get(n)!.inline),
        perNode: 1,
        jigs: null,
        haltNodeOnError: false,
        effectiveJig: (name) => (['noop', 'test', 'role-provided'].includes(name) ? name : 'test'),
        ...o,
      };
    }
    const claim = (o: Partial<ClaimOptions> = {}) => cb.engine.db.transaction().execute((tx) => claimRunnable(tx, cb.store.caps, opts(o)));
    const ids = (cs: Claim[]) => cs.map((c) => c.nodeRoleId);
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const activeJigNames = async () => (await listJigs(cb.engine.db)).filter((j) => j.active).map((j) => j.name);

    /**
     * A committed deployment with one alive, available node per entry of `layout`, each bound
     * to the roles listed (in order). Returns the node-roles per node, by role name.
     */
    async function fleet(layout: string[][], o: { commit?: boolean } = {}) {
      const d = `cl${++seq}`;
      await cb.engine.createDeployment({ name: d });
      const nodes: Array<{ id: number; name: string; nr: Record<string, NodeRole> }> = [];
      for (const roles of layout) {
        const name = `n${++seq}.claim.test`;
        const node = await cb.engine.createNode({ name, deployment: d, alive: true, available: true, hammers: ['sim'] });
        const nr: Record<string, NodeRole> = {};
        for (const r of roles) nr[r] = await cb.engine.bind(r, name, d);
        nodes.push({ id: node.id, name, nr });
      }
      if (o.commit !== false) await cb.engine.commitDeployment(d);
      return { d, nodes };
    }
    const state = async (nr: NodeRole) => (await briefs(cb.engine.db, [nr.id]))[0]!.state;

    it('only TODO node-roles in committed deployments on alive, available nodes with active jigs', async () => {
      const { d, nodes: [n1, n2] } = await fleet([['sc-a', 'sc-after', 'sc-noop'], ['sc-script']]);
      const { a, after, noop, script } = { a: n1!.nr['sc-a']!, after: n1!.nr['sc-after']!, noop: n1!.nr['sc-noop']!, script: n2!.nr['sc-script']! };
      expect([await state(a), await state(after), await state(noop), await state(script)]).toEqual([S.TODO, S.BLOCKED, S.TODO, S.TODO]);
      const all = { perNode: 10 };
      const base = await claim(all);
      expect(sorted(ids(base))).toEqual(sorted([a.id, noop.id, script.id]));
      const byId = new Map(base.map((c) => [c.nodeRoleId, c]));
      expect(byId.get(a.id)).toMatchObject({ nodeId: n1!.id, roleId: a.role_id, deploymentId: a.deployment_id, jigName: 'test', runCount: 0, cohort: a.cohort, destructive: false, runId: 0 });
      expect(byId.get(noop.id)!.jigName).toBe('noop');
      expect(byId.get(script.id)!.jigName).toBe('test'); // dev mode: the test jig stands in for script

      // each condition on its own takes sc-a out, and putting it back brings it back
      const db = cb.engine.db;
      const without = async (what: string, off: () => Promise<unknown>, on: () => Promise<unknown>) => {
        await off();
        expect(ids(await claim(all)), `${what}: sc-a must not be claimed`).not.toContain(a.id);
        await on();
        expect(ids(await claim(all)), `${what} restored: sc-a is claimable again`).toContain(a.id);
      };
      for (const s of [S.ERROR, S.ACTIVE, S.TRANSITION, S.BLOCKED, S.PROPOSED]) {
        await without(`state ${s}`, () => setState(db, [a.id], s), () => setState(db, [a.id], S.TODO));
      }
      await without('node-role not available', () => updateNodeRole(db, a.id, { available: false }), () => updateNodeRole(db, a.id, { available: true }));
      await without('node not alive', () => updateNode(db, n1!.id, { alive: false }), () => updateNode(db, n1!.id, { alive: true }));
      await without('node not available', () => updateNode(db, n1!.id, { available: false }), () => updateNode(db, n1!.id, { available: true }));
      await without('deployment proposed', () => cb.engine.proposeDeployment(d), () => cb.engine.commitDeployment(d));

      // with a list of runnable jigs (production), a role on an inactive jig is never claimed
      const active = await activeJigNames();
      expect(active).not.toContain('script');
      expect(sorted(ids(await claim({ ...all, jigs: active })))).toEqual(sorted([a.id, noop.id]));
      await cb.engine.setJigActive('test', false);
      try {
        expect(ids(await claim({ ...all, jigs: await activeJigNames() }))).toEqual([noop.id]);
      } finally {
        await cb.engine.setJigActive('test', true);
      }
      expect(ids(await claim({ ...all, jigs: [] }))).toEqual([]);
    });

    it('per-node limit: one claim per node by default, two with perNode 2, counting runs in flight', async () => {
      const { nodes: [n1, n2, n3] } = await fleet([['sc-a', 'sc-b'], ['sc-noop', 'sc-noop2'], ['sc-a', 'sc-noop']]);
      const one = await claim();
      expect(one).toHaveLength(3);
      expect(sorted(one.map((c) => c.nodeId))).toEqual(sorted([n1!.id, n2!.id, n3!.id]));
      expect(sorted(ids(one))).toEqual(sorted([n1!.nr['sc-a']!.id, n2!.nr['sc-noop']!.id, n3!.nr['sc-a']!.id]));

      const two = await claim({ perNode: 2 });
      expect(sorted(ids(two))).toEqual(sorted([...Object.values(n1!.nr), ...Object.values(n2!.nr), ...Object.values(n3!.nr)].map((n) => n.id)));

      // a run in flight on n1 uses its one place: nothing more there until it ends
      const first = one.filter((c) => c.nodeId === n1!.id);
      await cb.engine.db.transaction().execute((tx) => startRuns(tx, first, 'test:0:claims', new Date(Date.now() + 60_000).toISOString()));
      expect(await state(n1!.nr['sc-a']!)).toBe(S.TRANSITION);
      expect((await claim()).map((c) => c.nodeId)).not.toContain(n1!.id);
      expect(ids((await claim({ perNode: 2 })).filter((c) => c.nodeId === n1!.id))).toEqual([n1!.nr['sc-b']!.id]);
      expect((await claim({ perNode: 0 }))).toEqual([]);
    });

    it('lowest cohort first, then lowest id — across nodes and within a node', async () => {
      const { nodes } = await fleet([['sc-a'], ['sc-a'], ['sc-a'], ['sc-a'], ['sc-a', 'sc-b']]);
      const nr = nodes.map((n) => n.nr['sc-a']!);
      const cohorts = [2, 0, 1, 0, 3];
      for (let i = 0; i < nr.length; i++) await updateNodeRole(cb.engine.db, nr[i]!.id, { cohort: cohorts[i]! });
      const b = nodes[4]!.nr['sc-b']!; // higher id than node 4's sc-a but the lower cohort there
      await updateNodeRole(cb.engine.db, b.id, { cohort: 1 });

      const expected = [nr[1]!.id, nr[3]!.id, nr[2]!.id, b.id, nr[0]!.id];
      expect(ids(await claim())).toEqual(expected);
      expect((await claim()).map((c) => c.cohort)).toEqual([0, 0, 1, 1, 2]);
      expect(ids(await claim({ slots: 2 }))).toEqual(expected.slice(0, 2));
      expect(ids(await claim({ slots: 3 }))).toEqual(expected.slice(0, 3));
    });

    it('the slot budget bounds non-inline claims and the inline budget bounds noop claims', async () => {
      const { nodes } = await fleet([
        ['sc-a'], ['sc-noop'], ['sc-script'], ['sc-noop'], ['sc-a'], ['sc-noop'], ['sc-a'], ['sc-noop'], ['sc-script'], ['sc-noop'],
      ]);
      const slotted = nodes.filter((n) => !n.nr['sc-noop']).map((n) => Object.values(n.nr)[0]!.id);
      const inline = nodes.filter((n) => n.nr['sc-noop']).map((n) => n.nr['sc-noop']!.id);
      const kind = (cs: Claim[]) => ({ slot: ids(cs).filter((i) => slotted.includes(i)), inline: ids(cs).filter((i) => inline.includes(i)) });

      expect(kind(await claim())).toEqual({ slot: slotted, inline });
      expect(kind(await claim({ slots: 3, inlineLimit: 2 }))).toEqual({ slot: slotted.slice(0, 3), inline: inline.slice(0, 2) });
      expect(kind(await claim({ slots: 0, inlineLimit: 4 }))).toEqual({ slot: [], inline: inline.slice(0, 4) });
      expect(kind(await claim({ slots: 2, inlineLimit: 0 }))).toEqual({ slot: slotted.slice(0, 2), inline: [] });
      // more runs in flight than the concurrency limit: a negative slot budget claims no slotted work
      expect(kind(await claim({ slots: -3, inlineLimit: 1 }))).toEqual({ slot: [], inline: inline.slice(0, 1) });
      expect(await claim({ slots: 0, inlineLimit: 0 })).toEqual([]);
      // what decides the budget is the jig that will run: script (dev: test) holds a slot
      const cs = await claim({ slots: 5, inlineLimit: 0 });
      expect(cs.every((c) => c.jigName === 'test')).toBe(true);
      expect(cs).toHaveLength(5);
    });

    it('haltNodeOnError: a node holding an ERROR node-role yields no claims; by default only its descendants wait', async () => {
      const { nodes: [n1, n2] } = await fleet([['sc-a', 'sc-b', 'sc-noop'], ['sc-a']]);
      await setState(cb.engine.db, [n1!.nr['sc-b']!.id], S.ERROR);
      const a1 = n1!.nr['sc-a']!.id;
      const a2 = n2!.nr['sc-a']!.id;
      const noop1 = n1!.nr['sc-noop']!.id;

      expect(sorted(ids(await claim({ perNode: 5 })))).toEqual(sorted([a1, noop1, a2]));
      expect(ids(await claim({ perNode: 5, haltNodeOnError: true }))).toEqual([a2]);
      // the ERROR fixed: the node runs again under the original's rule too
      await setState(cb.engine.db, [n1!.nr['sc-b']!.id], S.ACTIVE);
      expect(sorted(ids(await claim({ perNode: 5, haltNodeOnError: true })))).toEqual(sorted([a1, noop1, a2]));
    });

    if (dialect === 'postgres') {
      /** Runs a claim (slots 2) in a transaction held open until `release`; `claims` resolves with it. */
      function heldClaim() {
        let release!: () => void;
        const hold = new Promise<void>((r) => (release = r));
        let claimed!: (c: Claim[]) => void;
        const claims = new Promise<Claim[]>((r) => (claimed = r));
        const done = cb.engine.db.transaction().execute(async (tx: Tx) => {
          const cs = await claimRunnable(tx, cb.store.caps, opts({ slots: 2 }));
          await startRuns(tx, cs, 'test:1', new Date(Date.now() + 60_000).toISOString());
          claimed(cs);
          await hold;
          return cs;
        });
        return { claims, release, done };
      }

      it('two claimers at once (SKIP LOCKED) never share a node-role or a node; after commit the node is busy', async () => {
        const { nodes } = await fleet([['sc-a', 'sc-b'], ['sc-a', 'sc-b'], ['sc-a', 'sc-b'], ['sc-a', 'sc-b']]);
        const t1 = heldClaim();
        try {
          const c1 = await t1.claims;
          expect(c1).toHaveLength(2);
          const n1 = new Set(c1.map((c) => c.nodeId));
          const c2 = await claim({ perNode: 2 });
          expect(c2.filter((c) => n1.has(c.nodeId)), 'nodes locked by the first claimer are skipped').toEqual([]);
        } finally {
          t1.release();
        }
        const c1 = await t1.done;
        const busy = new Set(c1.map((c) => c.nodeId));
        const after = await claim();
        expect(after.filter((c) => busy.has(c.nodeId)), 'a node with a run in flight is not claimed again').toEqual([]);
        expect(sorted(after.map((c) => c.nodeId))).toEqual(sorted(nodes.map((n) => n.id).filter((id) => !busy.has(id))));
        expect(ids(await claim({ perNode: 2 })).filter((i) => c1.some((c) => c.nodeRoleId === i))).toEqual([]);
      });

      it('while one claimer holds its claim open, another still gets the nodes it did not claim', async () => {
        const { nodes } = await fleet([['sc-a'], ['sc-a'], ['sc-a'], ['sc-a']]);
        const t1 = heldClaim();
        try {
          const n1 = new Set((await t1.claims).map((c) => c.nodeId));
          const c2 = await claim();
          expect(sorted(c2.map((c) => c.nodeId))).toEqual(sorted(nodes.map((n) => n.id).filter((id) => !n1.has(id))));
        } finally {
          t1.release();
          await t1.done;
        }
      });
    }
  });
}
