/**
 * PostgreSQL scale-out wake-ups: a committed change that may make work runnable NOTIFYs, and a
 * listener on another connection hears it at commit (not before, and not on rollback).
 */
import { describe, expect, it } from 'vitest';
import { startTestCrowbar } from '../helpers/crowbar.js';

const pg = Boolean(process.env['DATABASE_URL']);
const required = process.env['CROWBAR_E2E'] === '1';

describe.skipIf(!pg && !required)('LISTEN/NOTIFY wake-ups (postgres)', () => {
  it('a commit that wakes the annealer notifies listeners on other connections', async () => {
    if (!pg) throw new Error('CROWBAR_E2E=1 needs DATABASE_URL for the PostgreSQL suites');
    const cb = await startTestCrowbar('postgres', { anneal: false, admin: false });
    try {
      let heard = 0;
      const stop = await cb.store.listen!('crowbar_wake', () => heard++);
      await cb.engine.createDeployment({ name: 'wake' });
      await cb.engine.createNode({ name: 'w1.crowbar.test', deployment: 'wake', alive: true, available: true });
      await new Promise((r) => setTimeout(r, 300)); // let notifications of the setup arrive
      const before = heard;
      await expect(
        cb.engine.tx(async (ctx) => {
          ctx.wake = true;
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await new Promise((r) => setTimeout(r, 300));
      expect(heard).toBe(before); // nothing on rollback
      await cb.engine.commitNode('w1.crowbar.test');
      const deadline = Date.now() + 5000;
      while (heard === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(heard).toBeGreaterThan(before);
      await stop();
    } finally {
      await cb.cleanup();
    }
  });
});
