/**
 * A node-role left BLOCKED although every parent is ACTIVE — what a commit racing an annealer
 * cycle on PostgreSQL leaves behind (the commit read a parent just before the cycle activated
 * it, and the cycle's unblock could not yet see the commit's rows) — is repaired: by
 * `unblockStranded` on every dialect, and by the annealer itself when it goes idle where
 * several writers are possible.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestCrowbar, type TestCrowbar } from '../helpers/crowbar.js';
import { NodeRoleState as S } from '../../src/domain/states.js';
import { inTx } from '../../src/engine/context.js';
import { unblockStranded } from '../../src/engine/states.js';

for (const dialect of storeDialects()) {
  describe(`stranded BLOCKED node-roles (${dialect})`, () => {
    let cb: TestCrowbar | undefined;
    afterEach(async () => {
      await cb?.cleanup();
      cb = undefined;
    });

    /** Converges test-client on one node, then strands test-client as the race would. */
    async function strand(anneal: boolean): Promise<{ cb: TestCrowbar; id: number }> {
      const c = (cb = await startTestCrowbar(dialect, { anneal }));
      const { engine } = c;
      await engine.createDeployment({ name: 'd1' });
      await engine.createNode({ name: 'n1.crowbar.test', deployment: 'd1', alive: true, available: true, hammers: ['sim'] });
      const nr = await engine.bind('test-client', 'n1.crowbar.test', 'd1');
      await engine.commitNode('n1.crowbar.test');
      await engine.commitDeployment('d1');
      if (!anneal) await c.annealer.start();
      await c.annealer.settle();
      if (!anneal) await c.annealer.stop();
      const row = await engine.db.selectFrom('node_roles').select('state').where('id', '=', nr.id).executeTakeFirstOrThrow();
      expect(row.state).toBe(S.ACTIVE);
      await engine.db.updateTable('node_roles').set({ state: S.BLOCKED }).where('id', '=', nr.id).execute();
      return { cb: c, id: nr.id };
    }

    it('unblockStranded moves it to TODO and leaves properly blocked ones alone', async () => {
      const { cb: c, id } = await strand(false);
      expect(await inTx(c.engine, (ctx) => unblockStranded(ctx))).toBe(1);
      const row = await c.engine.db.selectFrom('node_roles').select('state').where('id', '=', id).executeTakeFirstOrThrow();
      expect(row.state).toBe(S.TODO);
      expect(await inTx(c.engine, (ctx) => unblockStranded(ctx))).toBe(0);
    });

    // only stores with several writers can strand one, so only there does the annealer look
    if (dialect === 'postgres') it('the annealer repairs it on its own when it goes idle, and runs it', async () => {
      const { cb: c, id } = await strand(true);
      const before = await c.engine.db.selectFrom('node_roles').select('run_count').where('id', '=', id).executeTakeFirstOrThrow();
      c.annealer.wake();
      await c.annealer.settle();
      await c.annealer.settle();
      const row = await c.engine.db.selectFrom('node_roles').select(['state', 'run_count']).where('id', '=', id).executeTakeFirstOrThrow();
      expect(row.state).toBe(S.ACTIVE);
      expect(row.run_count).toBe(before.run_count + 1);
    });
  });
}
