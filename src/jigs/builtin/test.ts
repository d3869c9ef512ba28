/**
 * The test jig (spec §7.2): logs a line naming the node and the role's `marker`, pauses for the
 * role's `delay` seconds, writes a random number to the node attrib `test-random` through its
 * wall, and fails for role `test-fails`. Lets whole role graphs converge with no machines.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineJig, JigFailure } from '../types.js';

export const testJig = defineJig({
  name: 'test',
  description: 'test jig: logs, pauses for the delay attrib, fails for test-fails',
  stage: 'full',
  timeoutSeconds: 600,
  rerunAfterCrash: true,
  async run(ctx) {
    const marker = typeof ctx.inputs.marker === 'string' ? ctx.inputs.marker : 'MARK';
    const raw = Number(ctx.inputs.delay ?? 0);
    const delay = Number.isFinite(raw) && raw > 0 ? raw : 0;
    ctx.log(`TEST JIG >> Working ${ctx.node.name} ${marker} & pausing for ${delay}\n`);
    if (delay > 0) await sleep(delay * 1000, undefined, { signal: ctx.signal });
    if (ctx.role.name === 'test-fails') throw new JigFailure(`test-fails always fails (role ${ctx.role.name} on ${ctx.node.name})`, 1);
    return { wall: { test: { random: randomInt(1_000_000) } } };
  },
});
