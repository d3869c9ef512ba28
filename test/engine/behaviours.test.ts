/**
 * The twenty testable behaviours of opencrowbar-spec.md §15 (with DESIGN.md's deliberate
 * changes), as scenarios on every store dialect. §15.19–20 (address allocation, conduits)
 * belong to the network issue and are not here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storeDialects } from '../helpers/stores.js';
import { startTestCrowbar, type TestCrowbar } from '../helpers/crowbar.js';
import { NodeRoleState as S, DeploymentState } from '../../src/domain/states.js';
import { computedState } from '../../src/engine/deployments.js';
import { requireDeployment } from '../../src/store/deployments.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/barclamps/behave');
let seq = 0;

for (const dialect of storeDialects()) {
  describe(`spec §15 behaviours (${dialect})`, () => {
    let cb: TestCrowbar;
    beforeAll(async () => {
      cb = await startTestCrowbar(dialect, { config: { barclampDirs: [fixtures] } });
    });
    afterAll(async () => cb?.cleanup());

    /** a fresh deployment with one alive, available sim node */
    async function fresh(nodes = 1) {
      const d = `d${++seq}`;
      await cb.engine.createDeployment({ name: d });
      const names: string[] = [];
      for (let i = 0; i < nodes; i++) {
        const name = `n${seq}-${i}.crowbar.test`;
        await cb.engine.createNode({ name, deployment: d, alive: true, available: true, hammers: ['sim'], discovery: { ohai: { dmi: { system: { serial_number: `SN-${seq}-${i}` } } } } });
        names.push(name);
      }
      return { d, names };
    }
    const nr = (role: string, node: string) =>
      cb.engine.db.selectFrom('node_roles as nr').innerJoin('roles as r', 'r.id', 'nr.role_id').innerJoin('nodes as n', 'n.id', 'nr.node_id')
        .selectAll('nr').where('r.name', '=', role).where('n.name', '=', node).executeTakeFirstOrThrow();
    const settle = () => cb.annealer.settle();

    it('1. a deployment gets an alive phantom node in it', async () => {
      const dep = await cb.engine.createDeployment({ name: 'phantomtest' });
      const node = await cb.engine.db.selectFrom('nodes').selectAll().where('name', '=', 'phantomtest-phantom.internal.local').executeTakeFirstOrThrow();
      expect(node.system).toBe(1);
      expect(node.alive).toBe(1);
      expect(node.deployment_id).toBe(dep.id);
    });

    it('2. binding creates PROPOSED node-roles, implicit parents first on the same node', async () => {
      const { d, names: [n] } = await fresh();
      const client = await cb.engine.bind('test-client', n!, d);
      expect(client.state).toBe(S.PROPOSED);
      const lib = await nr('test-library', n!);
      expect(lib.state).toBe(S.PROPOSED);
      expect(lib.id).toBeLessThan(client.id);
      expect(lib.cohort).toBeLessThan(client.cohort);
      const edges = await cb.engine.db.selectFrom('node_role_pcms').selectAll().where('child_id', '=', client.id).execute();
      expect(edges.map((e) => e.parent_id)).toContain(lib.id);
    });

    it('3. a non-implicit parent already bound in the deployment chain is linked, not re-created', async () => {
      const { d, names: [n] } = await fresh();
      await cb.engine.bind('test-server', n!, d);
      // test-admin is bound (bootstrap) on the admin node in `system`, an ancestor deployment
      const admin = await nr('test-admin', 'admin.crowbar.test');
      const server = await nr('test-server', n!);
      const parents = await cb.engine.db.selectFrom('node_role_pcms').select('parent_id').where('child_id', '=', server.id).execute();
      expect(parents.map((p) => p.parent_id)).toEqual([admin.id]);
      const onNode = await cb.engine.db.selectFrom('node_roles as nr').innerJoin('roles as r', 'r.id', 'nr.role_id').innerJoin('nodes as n', 'n.id', 'nr.node_id').select('r.name').where('n.name', '=', n!).execute();
      expect(onNode.map((r) => r.name)).not.toContain('test-admin');
    });

    it('4. binding is refused for abstract, unresolved, inactive-jig, conflicting and overlapping roles', async () => {
      const { d, names: [n] } = await fresh();
      await expect(cb.engine.bind('behave-abstract', n!, d)).rejects.toThrow(/abstract/);
      await expect(cb.engine.bind('behave-missing', n!, d)).rejects.toThrow(/no-such-role/);
      await cb.engine.bind('behave-a', n!, d);
      await expect(cb.engine.bind('behave-b', n!, d)).rejects.toThrow(/conflicts with role 'behave-a'/);
      await cb.engine.bind('behave-p1', n!, d);
      await expect(cb.engine.bind('behave-p2', n!, d)).rejects.toThrow(/both provide 'behave-thing'/);
      // nothing half-written
      const count = await cb.engine.db.selectFrom('node_roles as nr').innerJoin('roles as r', 'r.id', 'nr.role_id').select('r.name').where('r.name', 'in', ['behave-abstract', 'behave-missing', 'behave-b', 'behave-p2']).execute();
      expect(count).toEqual([]);
      // outside dev mode an inactive jig is refused (in production every jig but `test` is active)
      const prod = await startTestCrowbar(dialect, { dev: false, anneal: false, admin: false, config: { barclampDirs: [fixtures] } });
      try {
        await prod.engine.createNode({ name: 'p1.crowbar.test', alive: true, available: true });
        await expect(prod.engine.bind('behave-b', 'p1.crowbar.test')).rejects.toThrow(/jig 'test' is not active/);
      } finally {
        await prod.cleanup();
      }
    });

    it('5. committing a deployment commits DRs, then PROPOSED node-roles go TODO or BLOCKED', async () => {
      await cb.annealer.stop();
      try {
        const { d, names: [n] } = await fresh();
        await cb.engine.bind('behave-second', n!, d);
        await cb.engine.setAttrib('behave-count', { kind: 'deployment', id: d }, 3, 'user');
        await cb.engine.commitDeployment(d);
        expect((await nr('behave-first', n!)).state).toBe(S.TODO);
        expect((await nr('behave-second', n!)).state).toBe(S.BLOCKED);
        const dep = await requireDeployment(cb.engine.db, d);
        const dr = await cb.engine.db.selectFrom('deployment_roles').selectAll().where('deployment_id', '=', dep.id).where('proposed_data', 'is not', null).execute();
        expect(dr).toEqual([]);
      } finally {
        await cb.annealer.start();
      }
    });

    it('6. a node-role cannot be committed while its deployment-role has proposed data', async () => {
      const { d, names: [n] } = await fresh();
      const svc = await cb.engine.bind('behave-service', n!, d);
      await cb.engine.setAttrib('behave-count', { kind: 'deployment', id: d }, 2, 'user');
      await expect(cb.engine.commitNodeRole(svc.id)).rejects.toThrow(/uncommitted proposed data/);
      expect((await nr('behave-service', n!)).state).toBe(S.PROPOSED);
    });

    it('7. only TODO node-roles of committed deployments on alive, available nodes run', async () => {
      const { d, names: [n] } = await fresh();
      await cb.engine.bind('behave-sibling', n!, d);
      await cb.engine.updateNode(n!, { alive: false });
      await cb.engine.commitNode(n!); // node-roles committed, deployment still proposed
      await settle();
      expect((await nr('behave-sibling', n!)).state).toBe(S.TODO);
      await cb.engine.commitDeployment(d);
      await settle();
      expect((await nr('behave-sibling', n!)).state).toBe(S.TODO); // node not alive
      await cb.engine.updateNode(n!, { alive: true, available: false });
      await settle();
      expect((await nr('behave-sibling', n!)).state).toBe(S.TODO); // node not available
      await cb.engine.updateNode(n!, { available: true });
      await settle();
      expect((await nr('behave-sibling', n!)).state).toBe(S.ACTIVE);
    });

    it('8. one run per node at a time, lowest cohort first', async () => {
      const { d, names: [n] } = await fresh();
      await cb.engine.bind('behave-second', n!, d);
      await cb.engine.bind('behave-sibling', n!, d);
      await cb.engine.bind('behave-destructive', n!, d);
      await cb.engine.commitNode(n!);
      await cb.engine.commitDeployment(d);
      await settle();
      const node = await cb.engine.db.selectFrom('nodes').select('id').where('name', '=', n!).executeTakeFirstOrThrow();
      const runs = await cb.engine.db.selectFrom('runs as r').innerJoin('node_roles as nr', 'nr.id', 'r.node_role_id')
        .select(['r.id', 'r.started_at', 'r.ended_at', 'nr.cohort', 'nr.id as nrid']).where('r.node_id', '=', node.id).orderBy('r.id').execute();
      const bound = await cb.engine.db.selectFrom('node_roles').select('id').where('node_id', '=', node.id).execute();
      expect(runs.length).toBe(bound.length); // behave-first/second/sibling/destructive + test-discovery (bound at commit)
      expect(runs.length).toBe(5);
      for (let i = 1; i < runs.length; i++) expect(runs[i]!.started_at! >= runs[i - 1]!.ended_at!).toBe(true);
      const order = runs.map((r) => [r.cohort, r.nrid]);
      expect(order).toEqual([...order].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!));
    });

    it('9. success sets ACTIVE, counts the run and releases children', async () => {
      const { d, names: [n] } = await fresh();
      await cb.engine.bind('behave-second', n!, d);
      await cb.engine.commitNode(n!);
      await cb.engine.commitDeployment(d);
      await settle();
      const first = await nr('behave-first', n!);
      const second = await nr('behave-second', n!);
      expect([first.state, first.run_count, second.state, second.run_count]).toEqual([S.ACTIVE, 1, S.ACTIVE, 1]);
    });

    it('10. a failure stores the log, sets ERROR and blocks descendants only (not the rest of the node)', async () => {
      const { d, names: [n] } = await fresh();
      await cb.engine.bind('behave-after-after', n!, d);
      await cb.engine.bind('behave-sibling', n!, d);
      await cb.engine.commitNode(n!);
      await cb.engine.commitDeployment(d);
      await settle();
      const fails = await nr('test-fails', n!);
      expect(fails.state).toBe(S.ERROR);
      expect(fails.runlog).toMatch(/TEST JIG >> Working/);
      expect(fails.runlog).toMatch(/test-fails always fails/);
      expect((await nr('behave-after-fail', n!)).state).toBe(S.BLOCKED);
      expect((await nr('behave-after-after', n!)).state).toBe(S.BLOCKED);
      expect((await nr('behave-sibling', n!)).state).toBe(S.ACTIVE); // DESIGN.md: an ERROR blocks only descendants
      const run = await cb.engine.db.selectFrom('runs').selectAll().where('node_role_id', '=', fails.id).executeTakeFirstOrThrow();
      expect(run.status).toBe('failed');
      expect(run.exit_status).toBe(1);
    });

    it('11. retry moves ERROR to TODO only when every parent is ACTIVE', async () => {
      const { d, names: [n] } = await fresh();
      await cb.engine.bind('behave-after-fail', n!, d);
      await cb.engine.commitNode(n!);
      await cb.engine.commitDeployment(d);
      await settle();
      const child = await nr('behave-after-fail', n!);
      await expect(cb.engine.retryNodeRole(child.id)).rejects.toThrow(/not active/);
      const fails = await nr('test-fails', n!);
      await cb.annealer.stop();
      try {
        const after = await cb.engine.retryNodeRole(fails.id);
        expect(after.state).toBe(S.TODO);
        expect((await nr('behave-after-fail', n!)).state).toBe(S.BLOCKED);
      } finally {
        await cb.annealer.start();
      }
      await settle();
      expect((await nr('test-fails', n!)).state).toBe(S.ERROR);
      expect((await cb.engine.db.selectFrom('runs').select('id').where('node_role_id', '=', fails.id).execute()).length).toBe(2);
    });

    it('12. a destructive role that already ran skips its jig on re-run but becomes ACTIVE', async () => {
      const { d, names: [n] } = await fresh();
      const x = await cb.engine.bind('behave-destructive', n!, d);
      await cb.engine.commitNode(n!);
      await cb.engine.commitDeployment(d);
      await settle();
      await cb.engine.retryNodeRole(x.id);
      await settle();
      const runs = await cb.engine.db.selectFrom('runs').select(['status', 'log']).where('node_role_id', '=', x.id).orderBy('id').execute();
      expect(runs.map((r) => r.status)).toEqual(['done', 'skipped']);
      expect(runs[1]!.log).toMatch(/destructive/);
      expect((await nr('behave-destructive', n!)).state).toBe(S.ACTIVE);
    });

    it('13. an async jig leaves the node-role in TRANSITION until it is re-run to completion', async () => {
      const { d, names: [n] } = await fresh();
      const a = await cb.engine.bind('test-async', n!, d);
      await cb.engine.commitNode(n!);
      await cb.engine.commitDeployment(d);
      await settle();
      expect((await nr('test-async', n!)).state).toBe(S.TRANSITION);
      expect((await cb.engine.why(a.id)).reasons.map((r) => r.reason)).toContain('async_in_progress');
      await cb.engine.retryNodeRole(a.id);
      await settle();
      const done = await nr('test-async', n!);
      expect(done.state).toBe(S.ACTIVE);
      expect(JSON.parse(done.wall)).toEqual({ async: { result: 'completed' } });
      expect(await cb.engine.getAttrib('test-async-result', { kind: 'node_role', id: a.id }, 'wall')).toBe('completed');
    });

    it('14. a node going not-alive pauses its work (DESIGN.md) and resumes when alive again', async () => {
      const { d, names: [n] } = await fresh();
      await cb.engine.bind('behave-second', n!, d);
      await cb.engine.commitNode(n!);
      await cb.engine.commitDeployment(d);
      await settle();
      await cb.engine.updateNode(n!, { alive: false });
      const first = await nr('behave-first', n!);
      expect(first.state).toBe(S.ACTIVE); // not reset
      await cb.engine.retryNodeRole(first.id);
      await settle();
      expect((await nr('behave-first', n!)).state).toBe(S.TODO); // paused: nothing runs on a dead node
      expect((await cb.engine.why(first.id)).reasons.map((r) => r.reason)).toContain('node_not_alive');
      await cb.engine.updateNode(n!, { alive: true });
      await settle();
      expect((await nr('behave-first', n!)).state).toBe(S.ACTIVE);
      expect((await nr('behave-first', n!)).run_count).toBe(2);
    });

    it('14b. resetOnNodeDeath restores the original: not-alive moves node-roles to TODO/BLOCKED', async () => {
      const orig = await startTestCrowbar(dialect, { admin: false, config: { barclampDirs: [fixtures], resetOnNodeDeath: true } });
      try {
        await orig.engine.createDeployment({ name: 'o' });
        await orig.engine.createNode({ name: 'o1.crowbar.test', deployment: 'o', alive: true, available: true, hammers: ['sim'] });
        await orig.engine.bind('behave-second', 'o1.crowbar.test', 'o');
        await orig.engine.commitNode('o1.crowbar.test');
        await orig.engine.commitDeployment('o');
        await orig.annealer.settle();
        await orig.annealer.stop();
        await orig.engine.updateNode('o1.crowbar.test', { alive: false });
        const states = await orig.engine.db.selectFrom('node_roles as nr').innerJoin('roles as r', 'r.id', 'nr.role_id').select(['r.name', 'nr.state']).where('r.name', 'like', 'behave-%').orderBy('nr.cohort').execute();
        expect(states.map((s) => [s.name, s.state])).toEqual([['behave-first', S.TODO], ['behave-second', S.BLOCKED]]);
      } finally {
        await orig.cleanup();
      }
    });

    it('15. proposing a deployment stops new runs without touching states; system cannot be proposed', async () => {
      const { d, names: [n] } = await fresh();
      await cb.engine.bind('behave-second', n!, d);
      await cb.engine.commitNode(n!);
      await cb.annealer.stop();
      await cb.engine.commitDeployment(d);
      await cb.engine.proposeDeployment(d);
      const before = (await nr('behave-first', n!)).state;
      await cb.annealer.start();
      await settle();
      expect((await nr('behave-first', n!)).state).toBe(before);
      expect(before).toBe(S.TODO);
      expect(await computedState(cb.engine.db, await requireDeployment(cb.engine.db, d))).toBe(DeploymentState.PROPOSED);
      await expect(cb.engine.proposeDeployment('system')).rejects.toThrow(/system deployment cannot be proposed/);
      await cb.engine.commitDeployment(d);
      await settle();
      expect((await nr('behave-second', n!)).state).toBe(S.ACTIVE);
      expect(await computedState(cb.engine.db, await requireDeployment(cb.engine.db, d))).toBe(DeploymentState.ACTIVE);
    });

    it('16. injection precedence, with provenance for a three-level example', async () => {
      const { d, names: [a, b] } = await fresh(2);
      await cb.engine.bind('behave-service', a!, d);
      const consumer = await cb.engine.bind('behave-consumer', b!, d);
      await cb.engine.setAttrib('behave-endpoint', { kind: 'deployment', id: d }, 'db.example:5432', 'user');
      await cb.engine.setRoleTemplate('behave-base', { behave: { port: 6000, mode: 'base' } });
      await cb.engine.setRoleTemplate('behave-consumer', { behave: { mode: 'consumer' }, delay: 0 });
      await cb.engine.setAttrib('hint-admin-macs', { kind: 'node', id: b! }, ['52:54:00:00:00:01'], 'system');
      await cb.engine.commitDeployment(d); // deployment-roles first, then the node-roles (behaviour 6)
      await settle();
      const staged = await cb.engine.stage(consumer.id);
      // 1. node-level wanted attrib, wrapped at its `at` path, from discovery
      expect(staged.inputs.behave).toMatchObject({ serial: `SN-${seq}-1` });
      expect(staged.provenance['behave/serial']).toMatchObject({ layer: 'node.discovery', label: b });
      // 2. linked parent on another node: the service's deployment-role committed data
      expect((staged.inputs.behave as any).endpoint).toBe('db.example:5432');
      expect(staged.provenance['behave/endpoint']).toMatchObject({ layer: 'deployment_role.committed', label: 'behave-service' });
      // 3. same-node ancestor (behave-base's template) … 4. overridden by the node-role's own template
      expect((staged.inputs.behave as any).port).toBe(6000);
      expect(staged.provenance['behave/port']).toMatchObject({ layer: 'role.template', label: 'behave-base' });
      expect((staged.inputs.behave as any).mode).toBe('consumer');
      expect(staged.provenance['behave/mode']).toMatchObject({ layer: 'role.template', label: 'behave-consumer' });
      // 7. hints and quirks
      expect((staged.inputs.hints as any).admin_macs).toEqual(['52:54:00:00:00:01']);
      expect(staged.provenance['hints/admin_macs']).toMatchObject({ layer: 'node.hint' });
      expect(staged.inputs.quirks).toEqual([]);
      // the run that happened recorded the same inputs and provenance
      const run = await cb.engine.db.selectFrom('runs').select(['inputs', 'provenance']).where('node_role_id', '=', consumer.id).orderBy('id', 'desc').executeTakeFirstOrThrow();
      expect(JSON.parse(run.inputs!).behave.endpoint).toBe('db.example:5432');
      expect(JSON.parse(run.provenance!)['behave/endpoint'].layer).toBe('deployment_role.committed');
    });

    it('17. user attrib writes are validated against the schema; attribs without one are read-only', async () => {
      const { d } = await fresh();
      await expect(cb.engine.setAttrib('behave-count', { kind: 'deployment', id: d }, 11, 'user')).rejects.toThrow(/above the maximum 10/);
      await expect(cb.engine.setAttrib('behave-count', { kind: 'deployment', id: d }, 'x', 'user')).rejects.toThrow(/expected an integer/);
      await expect(cb.engine.setAttrib('behave-base-port', { kind: 'deployment', id: d }, 1, 'user')).rejects.toThrow(/read-only/);
      await cb.engine.setAttrib('behave-count', { kind: 'deployment', id: d }, 4, 'user');
      expect(await cb.engine.getAttrib('behave-count', { kind: 'deployment', id: d }, 'proposed')).toBe(4);
      expect(await cb.engine.getAttrib('behave-count', { kind: 'deployment', id: d }, 'committed')).toBe(1);
    });

    it('18. changing a system attrib value pokes (re-runs) the affected ACTIVE node-roles only', async () => {
      const { d, names: [a, b] } = await fresh(2);
      await cb.engine.bind('behave-service', a!, d);
      const consumer = await cb.engine.bind('behave-consumer', b!, d);
      const other = await cb.engine.bind('behave-sibling', b!, d);
      for (const n of [a!, b!]) await cb.engine.commitNode(n);
      await cb.engine.commitDeployment(d);
      await settle();
      const svc = await nr('behave-service', a!);
      expect(svc.run_count).toBe(1);
      // a deployment-role wall write (system bucket) re-runs the role's node-roles
      await cb.engine.setAttrib('behave-endpoint', { kind: 'deployment', id: d }, 'new:1', 'system');
      await settle();
      expect((await nr('behave-service', a!)).run_count).toBe(2);
      // committing a changed user value re-runs the role and its consumers, not bystanders
      await cb.engine.setAttrib('behave-endpoint', { kind: 'deployment', id: d }, 'newer:2', 'user');
      await cb.engine.commitDeployment(d);
      await settle();
      expect((await nr('behave-service', a!)).run_count).toBe(3);
      expect((await nr('behave-consumer', b!)).run_count).toBeGreaterThanOrEqual(2);
      expect((await nr('behave-sibling', b!)).run_count).toBe(1);
      const staged = await cb.engine.stage(consumer.id);
      expect((staged.inputs.behave as any).endpoint).toBe('newer:2');
      expect(other.id).toBeGreaterThan(0);
    });

    it('every run is kept with inputs, provenance, wall, log and times; a run replays from its recorded inputs', async () => {
      const { d, names: [n] } = await fresh();
      const svc = await cb.engine.bind('behave-service', n!, d);
      await cb.engine.setAttrib('behave-endpoint', { kind: 'deployment', id: d }, 'first:1', 'user');
      await cb.engine.commitDeployment(d);
      await settle();
      await cb.engine.setAttrib('behave-endpoint', { kind: 'deployment', id: d }, 'second:2', 'user');
      await cb.engine.commitDeployment(d);
      await settle();
      const runs = await cb.engine.db.selectFrom('runs').selectAll().where('node_role_id', '=', svc.id).orderBy('id').execute();
      expect(runs.map((r) => r.status)).toEqual(['done', 'done']);
      const [first, second] = runs;
      expect(JSON.parse(first!.inputs!).behave.endpoint).toBe('first:1');
      expect(JSON.parse(second!.inputs!).behave.endpoint).toBe('second:2');
      expect(JSON.parse(first!.provenance!)['behave/endpoint'].layer).toBe('deployment_role.committed');
      expect(first!.log).toMatch(/TEST JIG >> Working/);
      expect(JSON.parse(first!.wall!).test.random).toEqual(expect.any(Number));
      expect(first!.started_at! <= first!.ended_at!).toBe(true);
      await cb.engine.replayRun(first!.id);
      await settle();
      const replayed = await cb.engine.db.selectFrom('runs').selectAll().where('node_role_id', '=', svc.id).orderBy('id', 'desc').executeTakeFirstOrThrow();
      expect(replayed.replay_of).toBe(first!.id);
      expect(JSON.parse(replayed.inputs!).behave.endpoint).toBe('first:1');
      expect(replayed.log).toMatch(/replaying the recorded inputs of run/);
      expect((await nr('behave-service', n!)).state).toBe(S.ACTIVE);
      await expect(cb.engine.replayRun(999999)).rejects.toThrow(/run '999999' not found/);
    });
  });
}
