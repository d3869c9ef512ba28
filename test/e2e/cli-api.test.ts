/**
 * The `crowbar` CLI against a real server, end to end: `crowbar serve --dev` runs in its own
 * process on a free port and temp data dir, and everything else is done by running the CLI
 * (src/cli/run.ts, no build needed) with the server's URL and credentials in the environment.
 *
 * (1) a deployment on 20 simulated nodes (POST /api/v2/sim through `crowbar sim`) is committed
 *     and `anneal watch` follows it to convergence; the lists show everything active;
 * (2) a `test-fails` node-role makes `anneal watch` exit non-zero with its log; `why` and `runs`
 *     show the reason and the log;
 * (3) errors a user can act on: a name not found with a suggestion, bad sim input (422), a
 *     non-admin (403), no server at the URL; an API token from `users token` works via --token.
 * Pure pieces of the client (SSE parser, suggestions, config precedence) are checked first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closest, resolveConnection, SseParser, type SseEvent } from '../../src/cli/client.js';
import { simNodeName } from '../../src/sim/inventory.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RUN = join(ROOT, 'src/cli/run.ts');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A clean environment: nothing from the caller's CROWBAR_* settings, no config file. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k === 'DATABASE_URL' || k.startsWith('CROWBAR_') || k === 'FORCE_COLOR') delete env[k];
  return { ...env, CROWBAR_CONFIG: join(tmpdir(), 'crowbar-cli-api-no-config.json'), NO_COLOR: '1', ...extra };
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

describe('crowbar CLI client pieces', () => {
  it('parses Server-Sent Events across chunk boundaries, with ids, comments and CRLF', () => {
    const events: SseEvent[] = [];
    const comments: string[] = [];
    const p = new SseParser((e) => events.push(e), (c) => comments.push(c));
    for (const chunk of ['retry: 2000\n: events after 7\n\nid: 8\nevent: node_roles\nda', 'ta: {"a":1}\n\n', 'event: run.log\r\ndata: x\r\ndata: y\r', '\n\r\n']) p.push(chunk);
    expect(comments).toEqual(['events after 7']);
    expect(events).toEqual([
      { id: '8', event: 'node_roles', data: '{"a":1}' },
      { event: 'run.log', data: 'x\ny' },
    ]);
    expect(p.lastEventId).toBe('8');
  });

  it('suggests the name a user most likely meant', () => {
    const names = ['system-phantom.internal.local', 'node-00001.sim.crowbar.local', 'node-00002.sim.crowbar.local', 'admin.crowbar.local'];
    expect(closest('node-0001.sim.crowbar.local', names)).toBe('node-00001.sim.crowbar.local');
    expect(closest('nope', names)).toBe('node-00001.sim.crowbar.local');
    expect(closest('node-00002', names)).toBe('node-00002.sim.crowbar.local');
    expect(closest('zzzzzzzz', names)).toBeUndefined();
  });

  it('takes connection settings from flags over environment over the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crowbar-cfg-'));
    try {
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({ url: 'http://cfg:1', user: 'cfguser', password: 'cfgpw' }));
      const env = { CROWBAR_CONFIG: file } as NodeJS.ProcessEnv;
      expect(resolveConnection({}, env)).toMatchObject({ url: 'http://cfg:1', urlSource: 'config', user: 'cfguser', password: 'cfgpw' });
      expect(resolveConnection({}, { ...env, CROWBAR_URL: 'http://env:2', CROWBAR_TOKEN: 'tok' })).toMatchObject({ url: 'http://env:2', urlSource: 'env', token: 'tok' });
      expect(resolveConnection({ url: 'flag:3', user: 'me' }, { ...env, CROWBAR_PASSWORD: 'envpw' })).toMatchObject({ url: 'http://flag:3', urlSource: 'flag', user: 'me', password: 'envpw' });
      expect(resolveConnection({}, { CROWBAR_CONFIG: join(dir, 'missing.json') })).toMatchObject({ url: 'http://127.0.0.1:3000', urlSource: 'default' });
      writeFileSync(file, '{not json');
      expect(() => resolveConnection({}, env)).toThrow(/config file .* is not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('generates a bash completion script from the command tree', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', RUN, 'completion', 'bash'], { cwd: ROOT, env: baseEnv(), encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('complete -o default -F _crowbar_complete crowbar');
    expect(r.stdout).toMatch(/'node-roles'\) echo '.*\bwhy\b.*'/);
    expect(r.stdout).toMatch(/'anneal watch'\) echo '.*--timeout.*'/);
    const syntax = spawnSync('bash', ['-n'], { input: r.stdout, encoding: 'utf8' });
    if (!syntax.error) expect(syntax.status, syntax.stderr).toBe(0);
  });
});

describe('crowbar CLI against a running server', () => {
  let server: ChildProcess | undefined;
  let serverLog = '';
  let dataDir = '';
  let url = '';
  const admin = { CROWBAR_USER: 'crowbar', CROWBAR_PASSWORD: 'crowbar' };

  /** Runs `crowbar <args>` against the server (credentials from `env`, default the dev admin). */
  function crowbar(args: string[], o: { env?: Record<string, string>; ms?: number } = {}): Promise<CliResult> {
    const env = baseEnv({ CROWBAR_URL: url, ...(o.env ?? admin) });
    const ms = o.ms ?? 30_000;
    return new Promise((res, rej) => {
      const p = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        rej(new Error(`crowbar ${args.join(' ')} did not finish within ${ms} ms\nstdout:\n${stdout}\nstderr:\n${stderr}\nserver log:\n${serverLog.slice(-3000)}`));
      }, ms);
      p.on('error', rej);
      p.on('exit', (code) => {
        clearTimeout(timer);
        res({ code, stdout, stderr });
      });
    });
  }

  const ok = async (args: string[], o?: Parameters<typeof crowbar>[1]) => {
    const r = await crowbar(args, o);
    expect(r.code, `crowbar ${args.join(' ')}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const json = async (args: string[], o?: Parameters<typeof crowbar>[1]) => JSON.parse(await ok([...args, '--json'], o));

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'crowbar-cli-api-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = spawn(process.execPath, ['--import', 'tsx', RUN, 'serve', '--dev', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], {
      cwd: ROOT,
      env: baseEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.setEncoding('utf8').on('data', (c: string) => (serverLog += c));
    server.stderr!.setEncoding('utf8').on('data', (c: string) => (serverLog += c));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`crowbar serve exited with ${server.exitCode}:\n${serverLog}`);
      try {
        const res = await fetch(`${url}/api/v2/anneal`);
        if (res.status === 401) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`crowbar serve did not listen on ${url} within 30 s:\n${serverLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 40_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 20_000);

  const sim = (i: number) => simNodeName(i);
  let failing = 0;

  it('creates a deployment on 20 simulated nodes, commits it and watches it converge', { timeout: 60_000 }, async () => {
    expect(await ok(['deployments', 'create', 'd1', '--description', 'cli e2e'])).toMatch(/^created deployment d1 \(id \d+\)\n$/);

    const reg = await ok(['sim', '--nodes', '20', '--deployment', 'd1', '--roles', 'test-client', '--test-delay', '1', '--no-commit', '--no-wait']);
    expect(reg).toMatch(/registered 20 simulated nodes in deployment 'd1'/);
    // through the API, not an embedded store
    expect(serverLog).not.toMatch(/in use by/);

    const [proposed, plan] = await Promise.all([json(['deployments', 'show', 'd1']), ok(['deployments', 'plan', 'd1'])]);
    expect(proposed.state).toBe(0);
    expect(plan).toMatch(/test-client/);
    expect(plan).toMatch(/\d+ → todo/);

    expect(await ok(['deployments', 'commit', 'd1'])).toMatch(/committed deployment d1/);
    const watch = await crowbar(['anneal', 'watch', '--timeout', '45'], { ms: 50_000 });
    expect(watch.code, `${watch.stdout}\n${watch.stderr}`).toBe(0);
    expect(watch.stdout).toMatch(/^\[\d+\.\d s\] .*(todo|transition|blocked)=\d+/m); // it saw the anneal in progress
    expect(watch.stdout).toMatch(/^converged in [\d.]+ s: active=\d+\n$/m);
    expect(watch.stdout).not.toMatch(/error/);

    const [allNodes, table, nrs, nrTable, deployments] = await Promise.all([
      json(['nodes', 'list', '--deployment', 'd1']),
      ok(['nodes', 'list', '--deployment', 'd1', '--no-system']),
      json(['node-roles', 'list', '--deployment', 'd1']),
      ok(['node-roles', 'list', '--deployment', 'd1']),
      ok(['deployments', 'list']),
    ]);
    const nodes = allNodes.filter((n: any) => !n.system);
    expect(nodes.map((n: any) => n.name).sort()).toEqual(Array.from({ length: 20 }, (_, i) => sim(i + 1)));
    const rows = table.trim().split('\n');
    expect(rows[0]).toMatch(/^\s*ID\s+NAME\s+DEPLOYMENT\s+STATE\s+ALIVE\s+AVAILABLE\s+BOOTENV$/);
    expect(rows).toHaveLength(21);
    for (const row of rows.slice(1)) expect(row).toMatch(/^\s*\d+\s+node-\d{5}\.sim\.crowbar\.local\s+d1\s+active\s+yes\s+yes\s+local$/);

    expect(nrs.length).toBeGreaterThanOrEqual(40);
    expect(nrs.filter((n: any) => n.state !== 0)).toEqual([]);
    expect(nrTable.split('\n')[0]).toMatch(/^\s*ID\s+NODE\s+ROLE\s+DEPLOYMENT\s+STATE\s+RUNS\s+STATUS$/);
    expect(nrTable).toMatch(/test-client\s+d1\s+active/);
    expect(nrTable).not.toMatch(/\b(error|todo|transition|blocked|proposed)\b/);
    expect(deployments).toMatch(/^\s*\d+\s+d1\s+active\s+system\s+no\s+cli e2e$/m);
  });

  it('a test-fails role: anneal watch exits non-zero with its log; why and runs show reason and log', { timeout: 60_000 }, async () => {
    const nr = await json(['node-roles', 'bind', sim(3), 'test-fails']);
    failing = nr.id;
    expect(nr.state).toBe(4);
    await ok(['deployments', 'commit', 'd1']);

    const watch = await crowbar(['anneal', 'watch', '--timeout', '45'], { ms: 50_000 });
    expect(watch.code, `${watch.stdout}\n${watch.stderr}`).toBe(1);
    expect(watch.stdout).toContain(`✗ error test-fails on ${sim(3)} (node-role ${failing}, deployment d1)`);
    expect(watch.stdout).toContain(`test-fails always fails (role test-fails on ${sim(3)})`);
    expect(watch.stdout).toMatch(/^failed after [\d.]+ s: active=\d+ error=1\n/m);

    const [why, whyByName, runs, errors, status] = await Promise.all([
      ok(['node-roles', 'why', String(failing)]),
      ok(['node-roles', 'why', sim(3), 'test-fails']),
      ok(['node-roles', 'runs', String(failing)]),
      ok(['node-roles', 'list', '--state', 'error']),
      crowbar(['anneal', 'status']),
    ]);
    expect(why).toContain(`node-role ${failing}: test-fails on ${sim(3)} (deployment d1) is error`);
    expect(why).toContain('its last run failed');
    expect(why).toContain(`test-fails always fails (role test-fails on ${sim(3)})`);
    // the same node-role named by node and role
    expect(whyByName).toBe(why);

    expect(runs).toMatch(new RegExp(`^run \\d+  failed  exit \\d+  jig test`, 'm'));
    expect(runs).toContain(`TEST JIG >> Working ${sim(3)}`);
    expect(runs).toContain(`test-fails always fails (role test-fails on ${sim(3)})`);

    expect(errors).toMatch(new RegExp(`^\\s*${failing}\\s+${sim(3).replace(/\./g, '\\.')}\\s+test-fails\\s+d1\\s+error`, 'm'));
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^failed: /);
  });

  it('explains what went wrong: not found with a suggestion, bad input, permissions, no server', { timeout: 60_000 }, async () => {
    const closed = await freePort();
    const [nope, typo, noDeployment, zero, badRole, wrong, down, created] = await Promise.all([
      crowbar(['nodes', 'show', 'nope']),
      crowbar(['nodes', 'show', 'node-0007.sim.crowbar.local']),
      crowbar(['deployments', 'commit', 'd2']),
      crowbar(['sim', '--nodes', '0', '--no-wait']),
      crowbar(['sim', '--nodes', '1', '--roles', 'test-clinet', '--no-wait']),
      crowbar(['nodes', 'list'], { env: { CROWBAR_USER: 'crowbar', CROWBAR_PASSWORD: 'wrong' } }),
      crowbar(['nodes', 'list', '--url', `http://127.0.0.1:${closed}`]),
      ok(['users', 'create', 'bob', '--new-password', 'B0b-secret!']),
    ]);
    expect(nope.code).toBe(1);
    expect(nope.stderr).toBe(`crowbar: node 'nope' not found; did you mean '${sim(1)}'?\n`);
    expect(typo.stderr).toContain(`node 'node-0007.sim.crowbar.local' not found; did you mean '${sim(7)}'?`);
    expect(noDeployment.stderr).toContain(`deployment 'd2' not found; did you mean 'd1'?`);

    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain(`'nodes' must be a whole number from 1 to 10000, not 0`);
    expect(badRole.stderr).toContain(`role 'test-clinet' does not exist; did you mean 'test-client'?`);

    expect(created).toMatch(/^created user bob/);
    const bob = { CROWBAR_USER: 'bob', CROWBAR_PASSWORD: 'B0b-secret!' };
    const [shown, denied] = await Promise.all([ok(['nodes', 'show', sim(1)], { env: bob }), crowbar(['sim', '--nodes', '1', '--no-wait'], { env: bob })]);
    expect(shown).toMatch(/^id:\s+\d+/);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/permission denied: only an admin may register simulated nodes/);

    expect(wrong.stderr).toMatch(/authentication failed at .* with user 'crowbar'/);

    expect(down.code).toBe(1);
    expect(down.stderr).toBe(`crowbar: cannot reach crowbar at http://127.0.0.1:${closed}: connection refused; is \`crowbar serve\` running?\n`);
  });

  it('nodes create/update --ssh point the node\'s ssh hammer at user@host:port; a malformed target is refused', { timeout: 30_000 }, async () => {
    expect(await ok(['nodes', 'create', 'web1.ssh.crowbar.test', '--ssh', 'deploy@10.0.0.5:2222'])).toMatch(/^created node web1\.ssh\.crowbar\.test \(id \d+\), ssh deploy@10\.0\.0\.5:2222$/m);
    const hammer = async () => ((await json(['hammers', 'list'])) as Array<{ name: string; endpoint: string; username: string; node_id: number }>)
      .filter((h) => h.name === 'ssh' && h.endpoint !== null);
    expect((await hammer()).map((h) => [h.username, h.endpoint])).toContainEqual(['deploy', '10.0.0.5:2222']);
    await ok(['nodes', 'update', 'web1.ssh.crowbar.test', '--ssh', '[fd00::5]']);
    expect((await hammer()).map((h) => [h.username, h.endpoint])).toContainEqual(['root', '[fd00::5]:22']);
    expect(await ok(['nodes', 'forget-host-key', 'web1.ssh.crowbar.test'])).toMatch(/^no host key was pinned for web1\.ssh\.crowbar\.test \(fd00::5:22\)$/m);
    const bad = await crowbar(['nodes', 'update', 'web1.ssh.crowbar.test', '--ssh', 'root@host:99999']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("--ssh wants [user@]host[:port]");
  });

  it('an API token from `users token` works with --token', { timeout: 30_000 }, async () => {
    const token = (await ok(['users', 'token', 'crowbar', '--name', 'cli-e2e'])).trim();
    expect(token).toMatch(/^crowbar_/);
    const [viaToken, tokens, bad] = await Promise.all([
      ok(['nodes', 'show', sim(2), '--token', token], { env: {} }),
      ok(['users', 'token', 'crowbar', '--list'], { env: { CROWBAR_TOKEN: token } }),
      crowbar(['nodes', 'list', '--token', 'crowbar_not-a-token'], { env: {} }),
    ]);
    expect(viaToken).toMatch(new RegExp(`^name:\\s+${sim(2).replace(/\./g, '\\.')}$`, 'm'));
    expect(viaToken).toMatch(/^state:\s+active$/m);
    expect(tokens).toMatch(/cli-e2e/);
    expect(bad.stderr).toMatch(/authentication failed at .* with the API token/);
  });
});
