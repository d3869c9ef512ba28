/**
 * `npm run bench [-- scenario…]`: the budgets of DESIGN.md §4, measured. Each scenario prints
 * human lines and ends with one machine-readable line `bench <scenario>: key=value …`.
 * Scenarios: anneal-noop-sqlite, anneal-noop-postgres (when DATABASE_URL is set), api-get-node,
 * api-list-nodes, ssh-vs-ansible (50 real sshd nodes × 4 script roles against ansible-playbook;
 * needs root, sshd and ansible-playbook; BENCH_SSH_NODES / BENCH_SSH_PAIRS to scale it).
 */
import { annealNoop } from './anneal-noop.js';
import { apiGetNode, apiListNodes } from './api.js';
import { sshVsAnsible, sshVsAnsibleUnavailable } from './ssh-vs-ansible.js';

type Scenario = { name: string; run: () => Promise<Record<string, string | number>>; enabled: () => boolean; why?: string };

const scenarios: Scenario[] = [
  { name: 'anneal-noop-sqlite', run: () => annealNoop('sqlite'), enabled: () => true },
  {
    name: 'anneal-noop-postgres',
    run: () => annealNoop('postgres'),
    enabled: () => Boolean(process.env.DATABASE_URL),
    why: 'set DATABASE_URL to a PostgreSQL database to run it',
  },
  { name: 'api-get-node', run: apiGetNode, enabled: () => true },
  { name: 'api-list-nodes', run: apiListNodes, enabled: () => true },
  {
    name: 'ssh-vs-ansible',
    run: sshVsAnsible,
    enabled: () => sshVsAnsibleUnavailable() === null,
    get why() {
      return sshVsAnsibleUnavailable() ?? '';
    },
  },
];

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !scenarios.some((s) => s.name === w));
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const s of scenarios) {
  if (wanted.length && !wanted.includes(s.name)) continue;
  if (!s.enabled()) {
    console.log(`bench ${s.name}: skipped (${s.why})`);
    continue;
  }
  try {
    const r = await s.run();
    console.log(`bench ${s.name}: ${Object.entries(r).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  } catch (e) {
    failed = true;
    console.error(`bench ${s.name}: failed: ${(e as Error).stack}`);
  }
}
process.exit(failed ? 1 : 0);
