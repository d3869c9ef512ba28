/**
 * wants-attribs with `collect: true` on every dialect: a consumer receives the attrib of every
 * member of a cluster role as a list (node-name order, provenance per element), is re-run when
 * a member's value changes, when a member joins (at its first run) and when one leaves; a want
 * without `collect` keeps the one-parent behaviour; import validates and reconciles the flag.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { forEachDialect, storeDialects, truncateAll } from '../helpers/stores.js';
import { startTestCrowbar, type TestCrowbar } from '../helpers/crowbar.js';
import { refusal } from '../helpers/refusal.js';
import { NodeRoleState as S } from '../../src/domain/states.js';
import { importBarclampYaml } from '../../src/engine/barclamp-import.js';
import { listRoleWants, requireRole } from '../../src/store/roles.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/barclamps/collect');
const fixtureYaml = readFileSync(join(fixtures, 'crowbar.yml'), 'utf8');
let seq = 0;

for (const dialect of storeDialects()) {
  describe(`collecting wants-attribs (${dialect})`, () => {
    let cb: TestCrowbar;
    beforeAll(async () => {
      cb = await startTestCrowbar(dialect, { config: { barclampDirs: [fixtures] } });
    });
    afterAll(async () => cb?.cleanup());

    const settle = () => cb.annealer.settle();
    const nr = (role: string, node: string) =>
      cb.engine.db.selectFrom('node_roles as nr').innerJoin('roles as r', 'r.id', 'nr.role_id').innerJoin('nodes as n', 'n.id', 'nr.node_id')
        .selectAll('nr').where('r.name', '=', role).where('n.name', '=', node).executeTakeFirstOrThrow();
    /** attrib links into a node-role: [parent node name, attrib name], sorted */
    const linksInto = async (id: number) =>
      (await cb.engine.db.selectFrom('node_role_attrib_links as l').innerJoin('node_roles as p', 'p.id', 'l.parent_id')
        .innerJoin('nodes as n', 'n.id', 'p.node_id').innerJoin('attribs as a', 'a.id', 'l.attrib_id')
        .select(['n.name', 'a.name as attrib']).where('l.child_id', '=', id).execute())
        .map((r) => `${r.name} ${r.attrib}`).sort();
    const wallRandom = async (node: string) => JSON.parse((await nr('collect-member', node)).wall).test.random as number;
    const lastRunInputs = async (id: number) =>
      JSON.parse((await cb.engine.db.selectFrom('runs').select('inputs').where('node_role_id', '=', id).orderBy('id', 'desc').executeTakeFirstOrThrow()).inputs!);

    /**
     * A deployment with members bound on nodes c, a, b (in that order, so bind order is not name
     * order) and `consumer` bound on node `lb`; values: `backend` per member name (sysdata).
     */
    async function cluster(consumer: string, o: { backends?: Record<string, string>; extra?: string[] } = {}) {
      const d = `c${++seq}`;
      await cb.engine.createDeployment({ name: d });
      const node = (n: string) => `${n}.${d}.crowbar.test`;
      for (const n of ['c', 'a', 'b', 'lb', ...(o.extra ?? [])]) {
        await cb.engine.createNode({ name: node(n), deployment: d, alive: true, available: true, hammers: ['sim'] });
      }
      for (const n of ['c', 'a', 'b']) await cb.engine.bind('collect-member', node(n), d);
      const target = consumer === 'collect-here' ? node('a') : node('lb');
      const c = await cb.engine.bind(consumer, target, d);
      for (const [n, v] of Object.entries(o.backends ?? {})) await cb.engine.setAttrib('collect-backend', { kind: 'node', id: node(n) }, v, 'system');
      return { d, node, consumer: c };
    }
    async function commitAll(d: string) {
      const nodes = await cb.engine.db.selectFrom('nodes as n').innerJoin('deployments as d', 'd.id', 'n.deployment_id').select('n.name').where('d.name', '=', d).where('n.system', '=', 0).execute();
      for (const n of nodes) await cb.engine.commitNode(n.name);
      await cb.engine.commitDeployment(d);
      await settle();
    }

    it('stages every member value as a list in node-name order, with provenance; [] when none has one', async () => {
      const { d, node, consumer } = await cluster('collect-lb', { backends: { c: '10.0.0.3:8080', a: '10.0.0.1:8080' } });
      // a link from every member, for each collecting want
      expect(await linksInto(consumer.id)).toEqual(['a', 'b', 'c'].flatMap((n) => [`${node(n)} collect-backend`, `${node(n)} collect-random`]).sort());

      const before = await cb.engine.stage(consumer.id);
      const lb = (before.inputs.collect as any).lb;
      expect(lb.backends).toEqual(['10.0.0.1:8080', '10.0.0.3:8080']); // b has no value yet: left out
      expect(lb.randoms).toEqual([]); // no member ran yet
      const a = await nr('collect-member', node('a'));
      expect(before.provenance['collect/lb/backends']).toMatchObject({
        layer: 'attrib.collect',
        label: `collect-backend collected from collect-member on ${node('a')}, collect-member on ${node('c')} (no value yet: collect-member on ${node('b')})`,
      });
      expect(before.provenance['collect/lb/backends/0']).toEqual({ layer: 'node_role.sysdata', id: a.id, label: `collect-member on ${node('a')}` });
      expect(before.provenance['collect/lb/backends/1']).toMatchObject({ label: `collect-member on ${node('c')}` });
      expect(before.provenance['collect/lb/randoms']).toMatchObject({ layer: 'attrib.collect', label: expect.stringMatching(/^collect-random collected from no node-role \(no value yet: /) });

      await cb.engine.setAttrib('collect-backend', { kind: 'node', id: node('b') }, null, 'system');
      expect(((await cb.engine.stage(consumer.id)).inputs.collect as any).lb.backends).toEqual(['10.0.0.1:8080', '10.0.0.3:8080']); // null is no value
      await cb.engine.setAttrib('collect-backend', { kind: 'node', id: node('b') }, '10.0.0.2:8080', 'system');
      await commitAll(d);
      expect((await nr('collect-lb', node('lb'))).state).toBe(S.ACTIVE);
      const randoms = [await wallRandom(node('a')), await wallRandom(node('b')), await wallRandom(node('c'))];
      const after = await cb.engine.stage(consumer.id);
      expect((after.inputs.collect as any).lb).toEqual({ backends: ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080'], randoms });
      expect(after.provenance['collect/lb/randoms/2']).toMatchObject({ layer: 'node_role.wall', label: `collect-member on ${node('c')}` });
      // the run got the same
      expect((await lastRunInputs(consumer.id)).collect.lb).toEqual({ backends: ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080'], randoms });
    });

    it("a member's wall change re-runs the consumer with the new list", async () => {
      const { d, node, consumer } = await cluster('collect-lb');
      await commitAll(d);
      const runs = (await nr('collect-lb', node('lb'))).run_count;
      const old = await wallRandom(node('b'));
      await cb.engine.retryNodeRole((await nr('collect-member', node('b'))).id);
      await settle();
      const fresh = await wallRandom(node('b'));
      expect(fresh).not.toBe(old);
      const after = await nr('collect-lb', node('lb'));
      expect([after.state, after.run_count]).toEqual([S.ACTIVE, runs + 1]);
      expect((await lastRunInputs(consumer.id)).collect.lb.randoms).toEqual([await wallRandom(node('a')), fresh, await wallRandom(node('c'))]);
    });

    it('a member bound later is linked, joins the list, and its first run re-runs the consumer', async () => {
      const { d, node, consumer } = await cluster('collect-lb', { extra: ['b2'] });
      await commitAll(d);
      const runs = (await nr('collect-lb', node('lb'))).run_count;
      await cb.engine.bind('collect-member', node('b2'), d);
      expect(await linksInto(consumer.id)).toContain(`${node('b2')} collect-random`);
      expect((await linksInto(consumer.id)).length).toBe(8);
      // binding pokes nothing; the new member has no value yet
      expect((await nr('collect-lb', node('lb'))).state).toBe(S.ACTIVE);
      const staged = await cb.engine.stage(consumer.id);
      expect((staged.inputs.collect as any).lb.randoms).toHaveLength(3);
      expect(staged.provenance['collect/lb/randoms']!.label).toMatch(new RegExp(`no value yet: collect-member on ${node('b2')}`));

      await cb.engine.commitNode(node('b2'));
      await settle();
      const after = await nr('collect-lb', node('lb'));
      expect([after.state, after.run_count]).toEqual([S.ACTIVE, runs + 1]);
      const want = [await wallRandom(node('a')), await wallRandom(node('b')), await wallRandom(node('b2')), await wallRandom(node('c'))];
      expect((await lastRunInputs(consumer.id)).collect.lb.randoms).toEqual(want);
    });

    it('deleting a member detaches the consumer: the list shrinks and the consumer re-runs; the last member cannot go', async () => {
      const { d, node, consumer } = await cluster('collect-lb', { backends: { a: 'A', b: 'B', c: 'C' } });
      await commitAll(d);
      const runs = (await nr('collect-lb', node('lb'))).run_count;
      await cb.engine.deleteNodeRole((await nr('collect-member', node('a'))).id);
      await settle();
      const after = await nr('collect-lb', node('lb'));
      expect(after.id).toBe(consumer.id); // kept, not cascaded
      expect([after.state, after.run_count]).toEqual([S.ACTIVE, runs + 1]);
      expect(await linksInto(consumer.id)).toEqual(['b', 'c'].flatMap((n) => [`${node(n)} collect-backend`, `${node(n)} collect-random`]).sort());
      expect((await lastRunInputs(consumer.id)).collect.lb).toEqual({ backends: ['B', 'C'], randoms: [await wallRandom(node('b')), await wallRandom(node('c'))] });
      const parents = await cb.engine.db.selectFrom('node_role_pcms').select('parent_id').where('child_id', '=', consumer.id).execute();
      expect(parents).toHaveLength(2);

      // a whole node leaving (delete node) takes its member out the same way
      await cb.engine.deleteNode(node('b'));
      await settle();
      expect((await lastRunInputs(consumer.id)).collect.lb.backends).toEqual(['C']);
      // the consumer needs at least one member: the last one falls under spec §5.6 as before
      await expect(cb.engine.deleteNodeRole((await nr('collect-member', node('c'))).id)).rejects.toThrow(/depends on it and is active/);
    });

    it('without collect: one link to the first member, a single value, and the §5.6 deletion rules', async () => {
      const { d, node, consumer } = await cluster('collect-single', { backends: { a: 'A', b: 'B', c: 'C' }, extra: ['b2'] });
      const links = await cb.engine.db.selectFrom('node_role_attrib_links as l').innerJoin('node_roles as p', 'p.id', 'l.parent_id')
        .select(['p.id', 'p.node_id']).where('l.child_id', '=', consumer.id).execute();
      expect(links).toHaveLength(1);
      const linked = await cb.engine.db.selectFrom('nodes').select('name').where('id', '=', links[0]!.node_id).executeTakeFirstOrThrow();
      const value = { [node('a')]: 'A', [node('b')]: 'B', [node('c')]: 'C' }[linked.name];
      const staged = await cb.engine.stage(consumer.id);
      expect((staged.inputs.collect as any).single.backend).toBe(value);
      expect(staged.provenance['collect/single/backend']).toMatchObject({ layer: 'node_role.sysdata', id: links[0]!.id });
      // a later member becomes a parent (cluster) but supplies nothing
      await cb.engine.bind('collect-member', node('b2'), d);
      expect(await linksInto(consumer.id)).toEqual([`${linked.name} collect-backend`]);
      await commitAll(d);
      await expect(cb.engine.deleteNodeRole((await nr('collect-member', node('b'))).id)).rejects.toThrow(/depends on it and is active/);
    });

    it("a member on the consumer's own node does not replace the list collected at the attrib's map", async () => {
      const { consumer } = await cluster('collect-here', { backends: { a: 'A', b: 'B', c: 'C' } });
      const staged = await cb.engine.stage(consumer.id);
      expect((staged.inputs.collect as any).member.backend).toEqual(['A', 'B', 'C']);
      expect(staged.provenance['collect/member/backend']!.layer).toBe('attrib.collect');
    });

    it('re-importing with collect turned off keeps the first link; turning it back on links every member', async () => {
      const { consumer, node } = await cluster('collect-lb', { backends: { a: 'A', b: 'B', c: 'C' } });
      const off = fixtureYaml.replace('{ name: collect-backend, at: collect/lb/backends, collect: true }', '{ name: collect-backend, at: collect/lb/backends }');
      expect(off).not.toBe(fixtureYaml);
      try {
        await importBarclampYaml(cb.engine.db, off, { file: 'collect.yml', mode: 'development', sourcePath: fixtures });
        const backendLinks = (await linksInto(consumer.id)).filter((l) => l.endsWith('collect-backend'));
        expect(backendLinks).toHaveLength(1);
        expect(['A', 'B', 'C']).toContain(((await cb.engine.stage(consumer.id)).inputs.collect as any).lb.backends);
      } finally {
        await importBarclampYaml(cb.engine.db, fixtureYaml, { file: 'collect.yml', mode: 'development', sourcePath: fixtures });
      }
      expect((await linksInto(consumer.id)).filter((l) => l.endsWith('collect-backend'))).toEqual(['a', 'b', 'c'].map((n) => `${node(n)} collect-backend`));
      expect(((await cb.engine.stage(consumer.id)).inputs.collect as any).lb.backends).toEqual(['A', 'B', 'C']);
    });
  });
}

const CORE = `
barclamp: { name: core }
jigs:
  - { name: noop, class: NoopJig }
  - { name: test, class: 'BarclampTest::Jig' }
`;

forEachDialect('collect in wants-attribs: import', (store) => {
  const db = () => store().handle.db;
  const yaml = (text: string, file = 'x.yml') => importBarclampYaml(db(), text, { file, mode: 'development', sourcePath: '/tmp/bc' });
  const doc = (want: string) => `barclamp: { name: tt, parent: core }
roles:
  - name: tt-app
    jig: test
    flags: [cluster]
    attribs:
      - { name: tt-backend, map: tt/app/backend }
  - name: tt-lb
    jig: test
    wants-attribs:
      - ${want}
attribs:
  - { name: tt-node-thing, map: tt/thing }
`;

  beforeEach(async () => {
    await truncateAll(store().handle);
    await yaml(CORE);
  });

  it('stores collect, defaults to false, and re-imports idempotently', async () => {
    await yaml(doc('{ name: tt-backend, at: tt/lb/backends, collect: true }'));
    const lb = await requireRole(db(), 'tt-lb');
    const once = await listRoleWants(db(), lb.id);
    expect(once.map((w) => [w.attrib_name, w.attrib_at, w.collect])).toEqual([['tt-backend', 'tt/lb/backends', true]]);
    await yaml(doc('{ name: tt-backend, at: tt/lb/backends, collect: true }'));
    expect(await listRoleWants(db(), lb.id)).toEqual(once); // same row, same stamps
    await yaml(doc('{ name: tt-backend, at: tt/lb/backends, collect: false }'));
    expect((await listRoleWants(db(), lb.id)).map((w) => [w.id, w.collect])).toEqual([[once[0]!.id, false]]);
    await yaml(doc('tt-backend'));
    expect((await listRoleWants(db(), lb.id)).map((w) => [w.attrib_at, w.collect])).toEqual([[null, false]]);
  });

  it('refuses a collect that is not a boolean, with file and line', async () => {
    for (const bad of ['"yes"', 'yes', '1']) {
      const err = await refusal(yaml(doc(`{ name: tt-backend, at: tt/lb/backends, collect: ${bad} }`), 'tt.yml'));
      expect(err.code).toBe('BARCLAMP_INVALID');
      expect(err.message).toMatch(/^tt\.yml:11: wanted attrib collect must be true or false, got /);
    }
    expect(await db().selectFrom('roles').select('name').where('name', 'like', 'tt-%').execute()).toEqual([]);
  });

  it('refuses collecting a node-level attrib or the role\'s own attrib', async () => {
    const nodeLevel = await refusal(yaml(doc('{ name: tt-node-thing, collect: true }'), 'tt.yml'));
    expect(nodeLevel.message).toMatch(/^tt\.yml:11: role 'tt-lb' collects attrib 'tt-node-thing', a node-level attrib/);
    const own = await refusal(yaml(`barclamp: { name: tt, parent: core }
roles:
  - name: tt-app
    jig: test
    attribs:
      - { name: tt-backend, map: tt/app/backend }
    wants-attribs:
      - { name: tt-backend, collect: true }
`, 'own.yml'));
    expect(own.message).toMatch(/^own\.yml:8: role 'tt-app' collects its own attrib 'tt-backend'/);
  });
});
