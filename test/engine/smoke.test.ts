import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestCrowbar, type TestCrowbar } from '../helpers/crowbar.js';
import { NodeRoleState as S } from '../../src/domain/states.js';

for (const dialect of storeDialects()) {
  describe(`anneal a test deployment (${dialect})`, () => {
    let cb: TestCrowbar;
    beforeAll(async () => {
      cb = await startTestCrowbar(dialect);
    });
    afterAll(async () => cb?.cleanup());

    it('binds test-client with its parents and converges after commit', async () => {
      const { engine } = cb;
      await engine.createDeployment({ name: 'd1' });
      await engine.createNode({ name: 'n1.crowbar.test', deployment: 'd1', alive: true, available: true, hammers: ['sim'] });
      const nr = await engine.bind('test-client', 'n1.crowbar.test', 'd1');
      expect(nr.state).toBe(S.PROPOSED);
      await engine.commitNode('n1.crowbar.test');
      await engine.commitDeployment('d1');
      await cb.annealer.settle();
      const rows = await engine.db.selectFrom('node_roles as nr').innerJoin('roles as r', 'r.id', 'nr.role_id').innerJoin('nodes as n', 'n.id', 'nr.node_id').select(['r.name', 'n.name as node', 'nr.state', 'nr.run_count', 'nr.runlog']).execute();
      expect(rows.filter((r) => r.state !== S.ACTIVE)).toEqual([]);
      expect(rows.map((r) => `${r.name}@${r.node}`).sort()).toContain('test-client@n1.crowbar.test');
    });
  });
}
