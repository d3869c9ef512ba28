/**
 * DESIGN §3/§5: a hung jig is timed out into ERROR with its log so far. A barclamp written here
 * has a script role that prints a line and then sleeps for ten minutes, with a role-level
 * `timeout: 2`; on a sim node in production mode (script jig active) the run must end as
 * `timeout`, the node-role in ERROR with the printed line and the reason in its runlog, the
 * sleeping process killed, its descendant BLOCKED — and an unrelated role on the same node
 * still converges (an ERROR blocks only descendants).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeRoleState as S } from '../../src/domain/states.js';
import { storeDialects } from '../helpers/stores.js';
import { startTestCrowbar, type TestCrowbar } from '../helpers/crowbar.js';
import { sleep, waitFor } from '../helpers/wait.js';

const MARKER = `crowbar-hang-${randomBytes(6).toString('hex')}`;
const NODE = 'hang1.crowbar.test';

function writeBarclamp(dir: string): void {
  writeFileSync(join(dir, 'crowbar.yml'), `
barclamp:
  name: hangtest
  description: a script that never finishes, and its neighbours
roles:
  - name: hang-forever
    jig: script
    timeout: 2
  - name: hang-child
    jig: script
    requires:
      - hang-forever
  - name: hang-neighbour
    jig: script
    attribs:
      - name: hang-neighbour-said
        map: 'hangtest/said'
`);
  const script = (role: string, body: string) => {
    mkdirSync(join(dir, 'script/roles', role), { recursive: true });
    writeFileSync(join(dir, 'script/roles', role, '10-run.sh'), body);
  };
  // the sleep runs under the marker as its argv[0], so `pgrep -f` finds exactly this process
  script('hang-forever', `echo "about to hang ${MARKER}"\n(exec -a ${MARKER} sleep 600)\necho "woke up"\n`);
  script('hang-child', 'echo "child ran"\n');
  script('hang-neighbour', 'echo "neighbour ran"\nwrite_attribute hangtest/said hello\n');
}

/** pids whose command line contains the marker (pgrep exits 1 when there are none). */
function pids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', MARKER], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch (e) {
    if ((e as { status?: number }).status === 1) return [];
    throw e;
  }
}


for (const dialect of storeDialects()) {
  describe(`a hung script is timed out (${dialect})`, () => {
    let cb: TestCrowbar;
    let barclamp: string;
    beforeAll(async () => {
      barclamp = mkdtempSync(join(tmpdir(), 'crowbar-hang-bc-'));
      writeBarclamp(barclamp);
      cb = await startTestCrowbar(dialect, { dev: false, admin: false, config: { barclampDirs: [barclamp] } });
    });
    afterAll(async () => {
      for (const pid of pids()) process.kill(pid, 'SIGKILL'); // only if the test failed to see it killed
      await cb?.cleanup();
      rmSync(barclamp, { recursive: true, force: true });
    });

    it('ends in ERROR with the partial log, kills the script, blocks only descendants', { timeout: 60_000 }, async () => {
      const { engine, annealer } = cb;
      expect((await engine.db.selectFrom('roles').select('timeout').where('name', '=', 'hang-forever').executeTakeFirstOrThrow()).timeout).toBe(2);
      await engine.createDeployment({ name: 'hang' });
      await engine.createNode({ name: NODE, deployment: 'hang', alive: true, available: true, hammers: ['sim'] });
      const hang = await engine.bind('hang-forever', NODE, 'hang');
      const child = await engine.bind('hang-child', NODE, 'hang');
      const neighbour = await engine.bind('hang-neighbour', NODE, 'hang');
      await engine.commitNode(NODE);
      await engine.commitDeployment('hang');

      // the script really is sleeping under our marker (so "gone" below means something)
      const sleeping = await waitFor('the hung script to be running', 20_000, () => (pids().length ? pids() : undefined));
      expect(sleeping.length).toBeGreaterThanOrEqual(1);
      const t0 = Date.now();

      const nr = await waitFor('hang-forever to leave TRANSITION', 30_000, async () => {
        const r = await engine.db.selectFrom('node_roles').selectAll().where('id', '=', hang.id).executeTakeFirstOrThrow();
        return r.state === S.TRANSITION || r.state === S.TODO ? undefined : r;
      });
      expect(Date.now() - t0, 'timed out at about 2 s, not at the jig default').toBeLessThan(15_000);
      expect(nr.state).toBe(S.ERROR);
      // the line the script printed (not only the xtrace of the echo that printed it)
      expect(nr.runlog.split('\n')).toContain(`about to hang ${MARKER}`);
      expect(nr.runlog).toMatch(/timed out after 2 s/);
      expect(nr.runlog).not.toContain('woke up');

      const runs = await engine.db.selectFrom('runs').selectAll().where('node_role_id', '=', hang.id).execute();
      expect(runs.map((r) => r.status)).toEqual(['timeout']);
      expect(runs[0]!.ended_at).not.toBeNull();
      expect(runs[0]!.log.split('\n')).toContain(`about to hang ${MARKER}`);
      expect(runs[0]!.error).toMatch(/timed out/);

      await waitFor('the sleeping process to be gone', 3_000, () => (pids().length === 0 ? true : undefined)).catch(() => undefined);
      expect(pids(), 'processes of the hung script still alive').toEqual([]);

      // the unrelated neighbour converges; the descendant waits, BLOCKED, and never ran
      await Promise.race([annealer.settle(), sleep(30_000).then(() => { throw new Error('the annealer did not settle within 30 s'); })]);
      const state = async (id: number) => engine.db.selectFrom('node_roles').select(['state', 'wall', 'run_count']).where('id', '=', id).executeTakeFirstOrThrow();
      const n = await state(neighbour.id);
      expect(n.state).toBe(S.ACTIVE);
      expect(JSON.parse(n.wall)).toEqual({ hangtest: { said: 'hello' } });
      const c = await state(child.id);
      expect(c.state).toBe(S.BLOCKED);
      expect(c.run_count).toBe(0);
      expect(await engine.db.selectFrom('runs').select('id').where('node_role_id', '=', child.id).execute()).toEqual([]);
      expect((await engine.why(child.id)).reasons).toContainEqual(expect.objectContaining({ reason: 'parent_not_active', node_role_id: hang.id, state: 'error' }));
    });
  });
}
