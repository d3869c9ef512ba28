/**
 * `crowbar sim` end to end, as a user runs it: the CLI in its own process (through
 * src/cli/run.ts, no build needed) on a temp data dir, then the store it left behind is read.
 * (1) 200 nodes of test-client converge in dev mode; (2) in production mode a script role from
 * an extra barclamp really runs in every node's sandbox and its written attribute lands in the
 * wall; (3) a failing role makes the command exit non-zero with the failing node-role's log.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type DB } from '../../src/store/db.js';
import { NodeRoleState as S } from '../../src/domain/states.js';
import { simNodeName } from '../../src/sim/inventory.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RUN = join(ROOT, 'src/cli/run.ts');

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `crowbar <args>`; kills it and fails after `ms`. The store comes only from the flags. */
function crowbar(args: string[], ms: number): Promise<CliResult> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k === 'DATABASE_URL' || k.startsWith('CROWBAR_')) delete env[k];
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      rej(new Error(`crowbar ${args.join(' ')} did not finish within ${ms} ms\nstdout:\n${stdout}\nstderr:\n${stderr.slice(-3000)}`));
    }, ms);
    p.on('error', rej);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr });
    });
  });
}

async function withStore<T>(dataDir: string, fn: (db: DB) => Promise<T>): Promise<T> {
  const file = join(dataDir, 'crowbar.sqlite');
  expect(existsSync(file), `${file} exists`).toBe(true);
  const h = await openStore({ sqlitePath: file });
  try {
    return await fn(h.db);
  } finally {
    await h.close();
  }
}

function nodeRoles(db: DB, deployment: string) {
  return db
    .selectFrom('node_roles as nr')
    .innerJoin('deployments as d', 'd.id', 'nr.deployment_id')
    .innerJoin('roles as r', 'r.id', 'nr.role_id')
    .innerJoin('nodes as n', 'n.id', 'nr.node_id')
    .select(['nr.id', 'nr.state', 'nr.wall', 'nr.runlog', 'r.name as role', 'n.name as node'])
    .where('d.name', '=', deployment)
    .execute();
}

describe('crowbar sim (CLI)', () => {
  const temps: string[] = [];
  const temp = (prefix: string) => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    temps.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('converges 200 nodes of test-client in dev mode', { timeout: 90_000 }, async () => {
    const dataDir = temp('crowbar-sim-');
    const r = await crowbar(['sim', '--nodes', '200', '--deployment', 'd1', '--roles', 'test-client', '--dev', '--test-delay', '0', '--data-dir', dataDir], 80_000);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout).toMatch(/registered 200 simulated nodes in deployment 'd1'/);
    expect(r.stdout).toMatch(/converged in [\d.]+ s: active=\d+\n/);
    expect(r.stdout).not.toMatch(/ERROR node-role/);
    await withStore(dataDir, async (db) => {
      const nrs = await nodeRoles(db, 'd1');
      const clients = nrs.filter((n) => n.role === 'test-client');
      expect(clients.map((n) => n.node).sort()).toEqual(Array.from({ length: 200 }, (_, i) => simNodeName(i + 1)));
      expect(nrs.filter((n) => n.state !== S.ACTIVE).map((n) => `${n.role}@${n.node}=${n.state}`)).toEqual([]);
      expect(nrs.length).toBeGreaterThanOrEqual(600);
      // --test-delay 0 really reached the jig
      const run = await db.selectFrom('runs').select('log').where('node_role_id', '=', clients[0]!.id).executeTakeFirstOrThrow();
      expect(run.log).toMatch(/pausing for 0\n/);
    });
  });

  it('runs a script role in every node sandbox in production mode', { timeout: 60_000 }, async () => {
    const dataDir = temp('crowbar-sim-');
    const bc = temp('crowbar-sim-bc-');
    writeFileSync(join(bc, 'crowbar.yml'), `
barclamp:
  name: simtouch
  description: touches a file in the node's home and reports a value
roles:
  - name: sim-touch
    jig: script
    attribs:
      - name: sim-touch-result
        map: 'simtouch/result'
`);
    mkdirSync(join(bc, 'script/roles/sim-touch'), { recursive: true });
    writeFileSync(join(bc, 'script/roles/sim-touch/10-touch.sh'), [
      'echo "touching in $HOME"',
      'echo "$CROWBAR_SIM_NODE" > "$HOME/ran-$ROLE"',
      'write_attribute simtouch/result "touched-$CROWBAR_SIM_NODE"',
      '',
    ].join('\n'));
    const r = await crowbar(['sim', '--nodes', '20', '--deployment', 'd2', '--roles', 'sim-touch', '--barclamps', bc, '--data-dir', dataDir], 50_000);
    expect(r.code, `${r.stdout}\n${r.stderr.slice(-3000)}`).toBe(0);
    expect(r.stdout).toMatch(/converged in [\d.]+ s: active=20\n/);
    await withStore(dataDir, async (db) => {
      const nrs = await nodeRoles(db, 'd2');
      expect(nrs.map((n) => n.node).sort()).toEqual(Array.from({ length: 20 }, (_, i) => simNodeName(i + 1)));
      for (const n of nrs) {
        expect(n.state, `${n.role}@${n.node}: ${n.runlog.slice(-1000)}`).toBe(S.ACTIVE);
        expect(JSON.parse(n.wall)).toEqual({ simtouch: { result: `touched-${n.node}` } });
        const file = join(dataDir, 'sim', n.node, 'root', 'ran-sim-touch');
        expect(existsSync(file), file).toBe(true);
        expect(readFileSync(file, 'utf8')).toBe(`${n.node}\n`);
      }
      // the script jig ran them (production mode: no test-jig stand-in)
      const jigs = await db.selectFrom('runs').select('jig').distinct().execute();
      expect(jigs.map((j) => j.jig)).toEqual(['script']);
    });
  });

  it('exits non-zero and prints the log tail of a failing role', { timeout: 60_000 }, async () => {
    const dataDir = temp('crowbar-sim-');
    const r = await crowbar(['sim', '--nodes', '3', '--deployment', 'd3', '--roles', 'test-fails', '--dev', '--test-delay', '0', '--data-dir', dataDir], 50_000);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stdout).toMatch(/settled without converging in [\d.]+ s: error=3 /);
    expect(r.stdout).not.toMatch(/^converged/m);
    for (let i = 1; i <= 3; i++) {
      const node = simNodeName(i);
      expect(r.stdout).toMatch(new RegExp(`ERROR node-role \\d+ test-fails on ${node.replace(/\./g, '\\.')}:\\n`));
      expect(r.stdout).toContain(`test-fails always fails (role test-fails on ${node})`);
    }
    await withStore(dataDir, async (db) => {
      const fails = (await nodeRoles(db, 'd3')).filter((n) => n.role === 'test-fails');
      expect(fails).toHaveLength(3);
      expect(fails.every((n) => n.state === S.ERROR)).toBe(true);
    });
  });
});
