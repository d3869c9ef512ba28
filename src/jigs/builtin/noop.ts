/**
 * The noop jig: succeeds at once without touching the node. Milestone and aggregation roles
 * use it; it runs inline in the annealer's transaction and holds no concurrency slot.
 */
import { defineJig } from '../types.js';

export const noopJig = defineJig({
  name: 'noop',
  description: 'does nothing and succeeds',
  stage: 'none',
  timeoutSeconds: 60,
  rerunAfterCrash: true,
  inline: true,
  async run() {
    return {};
  },
});
