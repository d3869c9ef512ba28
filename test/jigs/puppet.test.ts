/**
 * The puppet-sa jig. Unit part: how inputs become Hiera data and facts. End-to-end part: real
 * `puppet apply` over 3 real sshd nodes (src/testing/sshd-nodes.ts) through the real ssh hammer,
 * plus one run through the local hammer; skipped when sshd or puppet is missing or we are not
 * root, except under CROWBAR_E2E=1 where that is a failure.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import { LocalHammer } from '../../src/hammers/local.js';
import { SimHammer } from '../../src/hammers/sim.js';
import { createSshHammerFactory, ensureInstallKey } from '../../src/hammers/ssh.js';
import type { SshHammerFactory } from '../../src/hammers/ssh.js';
import type { NodeHammer } from '../../src/hammers/types.js';
import { createPuppetJig, escapeHiera, puppetInputs, puppetJig } from '../../src/jigs/puppet/index.js';
import { JigFailure } from '../../src/jigs/types.js';
import { SshdNodes, sshdUnavailableReason } from '../../src/testing/sshd-nodes.js';
import { jigContext, type JigHarness } from '../helpers/jig-context.js';

describe('puppet inputs', () => {
  const paths = { wallFile: '/tmp/puppetjig-x/wall.json', roleDir: '/tmp/puppetjig-x/roles/r' };

  it('escapes Hiera interpolation in values and nested keys, not in top-level keys', () => {
    expect(escapeHiera({ 'a%{b}': ['x%{y}z', 1, null, { k: '%{literal("q")}' }], c: '100%', d: '%%{' })).toEqual({
      "a%{literal('%')}{b}": ["x%{literal('%')}{y}z", 1, null, { k: `%{literal('%')}{literal("q")}` }],
      c: '100%',
      d: "%%{literal('%')}{",
    });
    const { hieraData } = puppetInputs({ 'top%{x}': 'v%{x}' }, paths);
    expect(hieraData).toMatchObject({ 'top%{x}': "v%{literal('%')}{x}" });
  });

  it('adds the wall file and role dir, which win over inputs of the same name', () => {
    const { hieraData, facts, notes } = puppetInputs({ crowbar_wall_file: '/etc/passwd', a: { b: [1] } }, paths);
    expect(hieraData).toEqual({ a: { b: [1] }, crowbar_wall_file: paths.wallFile, crowbar_role_dir: paths.roleDir });
    expect(facts).toEqual(hieraData);
    expect(notes.join('\n')).toMatch(/input crowbar_wall_file is replaced/);
  });

  it("keeps facter's core fact names and Hiera's reserved key out of the channel they would break", () => {
    const { hieraData, facts, notes } = puppetInputs({ os: 'x', Networking: 1, lookup_options: {}, ntp: [] }, paths);
    expect(Object.keys(hieraData).sort()).toEqual(['Networking', 'crowbar_role_dir', 'crowbar_wall_file', 'ntp', 'os']);
    expect(Object.keys(facts).sort()).toEqual(['crowbar_role_dir', 'crowbar_wall_file', 'lookup_options', 'ntp']);
    expect(notes.join('\n')).toMatch(/os, Networking would replace facter's core fact/);
    expect(notes.join('\n')).toMatch(/lookup_options is Hiera's reserved key/);
  });

  it('keeps a __proto__ key as data', () => {
    const inputs = JSON.parse('{"__proto__": {"x": 1}}') as JsonObject;
    const { hieraData } = puppetInputs(inputs, paths);
    expect(JSON.stringify(hieraData)).toContain('"__proto__":{"x":1}');
  });
});

// End to end: real puppet apply over real sshd ////////////////////////////////////////////////

function puppetMissing(): string | null {
  const dirs = (process.env['PATH'] ?? '').split(':').concat('/opt/puppetlabs/bin');
  return dirs.some((d) => d && existsSync(path.join(d, 'puppet'))) ? null : 'puppet is not installed (apt-get install puppet)';
}

const unavailable = sshdUnavailableReason() ?? puppetMissing();
const required = process.env['CROWBAR_E2E'] === '1';
if (unavailable && !required) console.warn(`puppet jig e2e skipped: ${unavailable}`);

const PWNED = '/tmp/puppet-pwned';
const TRICKY = `$(touch ${PWNED}) \`touch ${PWNED}\` "dq" 'sq' %{facts.hostname} %{literal('x')} ünïcødé ✓\nline 2\n`;
/** puppet's system directories: runs must not write there */
const SYSTEM_SUMMARY = '/var/cache/puppet/public/last_run_summary.yaml';

const MANIFESTS: Record<string, Record<string, string>> = {
  // nested object, list, tricky text, a module class with a Hiera-bound parameter, the wall
  render: {
    'init.pp': `
$t = lookup('threetier')
$dir = $facts['node_dir']
notice("role dir: \${lookup('crowbar_role_dir')}")
include greeting
file { "\${dir}/app.conf":
  content => "db=\${t['db']['name']}:\${t['db']['port']}\\nservers=\${join(lookup('threetier.servers'), ',')}\\nfirst=\${lookup('threetier.servers.0')}\\nfact_port=\${facts['threetier']['db']['port']}\\nmotd=\${file("\${lookup('crowbar_role_dir')}/motd.txt")}",
}
file { "\${dir}/tricky-hiera.txt": content => lookup('tricky') }
file { "\${dir}/tricky-fact.txt": content => $facts['tricky'] }
file { lookup('crowbar_wall_file'):
  content => inline_template('<%= require "json"; JSON.generate({"rendered" => @dir + "/app.conf", "port" => @t["db"]["port"], "servers" => @t["servers"]}) %>'),
}
`,
    'motd.txt': 'from the role dir',
  },
  // one file from Hiera data; entry point site.pp
  steady: {
    'site.pp': `file { "\${facts['node_dir']}/\${lookup('file_name')}": content => lookup('msg') }\n`,
  },
  broken: {
    'init.pp': `notice('fine')\n$x = 1\nfile { '/tmp/never': content => 'x', , }\n`,
  },
  'fails-only': {
    'init.pp': `exec { '/bin/false': }\n`,
  },
  'fails-and-changes': {
    'init.pp': `exec { '/bin/false': }\nfile { "\${facts['node_dir']}/changed.txt": content => 'yes' }\n`,
  },
  'wall-array': {
    'init.pp': `file { lookup('crowbar_wall_file'): content => '[1, 2]' }\n`,
  },
  'no-wall': {
    'init.pp': `notice("nothing to do")\n`,
  },
  slow: {
    'init.pp': `notice("role dir: \${lookup('crowbar_role_dir')}")\nexec { 'sleeper': command => "/bin/sleep \${lookup('marker')}" }\n`,
  },
  both: { 'init.pp': 'notice(1)\n', 'site.pp': 'notice(2)\n' },
};

const GREETING_MODULE = `class greeting(String $message = 'default') {
  file { "\${facts['node_dir']}/greeting.txt": content => "\${message}\\n" }
}
`;

describe.skipIf(unavailable !== null && !required)('puppet-sa jig over 3 real sshd nodes', () => {
  let base: string;
  let barclamp: string;
  let nodes: SshdNodes;
  let factory: SshHammerFactory;
  let summaryBefore: number | null;

  const hammer = (i: number): NodeHammer => {
    const n = nodes.nodes[i]!;
    return factory.create({ nodeId: i + 1, nodeName: n.name, username: n.username, endpoint: n.endpoint });
  };

  const context = (h: NodeHammer, name: string, role: string, inputs: JsonObject, signal?: AbortSignal) =>
    jigContext({ hammer: h, jig: 'puppet-sa', role, sourcePath: barclamp, workRoot: base, inputs, signal, node: { name } });

  const onNode = async (i: number, role: string, inputs: JsonObject, signal?: AbortSignal): Promise<JigHarness> =>
    context(hammer(i), nodes.nodes[i]!.name, role, { node_dir: nodes.nodes[i]!.workDir, ...inputs }, signal);

  const failure = (p: Promise<unknown>): Promise<JigFailure> =>
    p.then(
      () => {
        throw new Error('the run succeeded');
      },
      (e: unknown) => {
        expect(e).toBeInstanceOf(JigFailure);
        return e as JigFailure;
      },
    );

  beforeAll(async () => {
    if (unavailable) throw new Error(`CROWBAR_E2E=1 but the puppet jig e2e cannot run: ${unavailable}`);
    await rm(PWNED, { force: true });
    summaryBefore = existsSync(SYSTEM_SUMMARY) ? statSync(SYSTEM_SUMMARY).mtimeMs : null;
    base = await mkdtemp(path.join(os.tmpdir(), 'puppet-jig-'));
    barclamp = path.join(base, 'barclamp');
    for (const [role, files] of Object.entries(MANIFESTS)) {
      const dir = path.join(barclamp, 'puppet', 'roles', role);
      await mkdir(dir, { recursive: true });
      for (const [file, body] of Object.entries(files)) await writeFile(path.join(dir, file), body);
    }
    const mod = path.join(barclamp, 'puppet', 'modules', 'greeting', 'manifests');
    await mkdir(mod, { recursive: true });
    await writeFile(path.join(mod, 'init.pp'), GREETING_MODULE);
    const key = ensureInstallKey(path.join(base, 'data'));
    nodes = await SshdNodes.start(3, { authorizedKeys: [key.publicKey] });
    factory = createSshHammerFactory(path.join(base, 'data'), { killGraceMs: 2000 });
  }, 30_000);

  afterAll(async () => {
    await factory?.close();
    await nodes?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  describe.concurrent('runs', () => {
    it('renders files from injected Hiera data and facts (nested object, list, a module class); the wall comes back', async () => {
      const n = nodes.nodes[0]!;
      const { ctx, log } = await onNode(0, 'render', {
        threetier: { db: { name: 'app', port: 5432 }, servers: ['10.0.0.1', '10.0.0.2'] },
        tricky: TRICKY,
        'greeting::message': 'hello from hiera',
      });
      const result = await puppetJig.run(ctx);
      expect(result.wall).toEqual({
        rendered: `${n.workDir}/app.conf`,
        port: 5432,
        servers: ['10.0.0.1', '10.0.0.2'],
      });
      expect(await readFile(path.join(n.workDir, 'app.conf'), 'utf8')).toBe(
        'db=app:5432\nservers=10.0.0.1,10.0.0.2\nfirst=10.0.0.1\nfact_port=5432\nmotd=from the role dir',
      );
      expect(await readFile(path.join(n.workDir, 'greeting.txt'), 'utf8')).toBe('hello from hiera\n');
      // shell metacharacters, quotes, newlines and Hiera's %{} arrive verbatim; nothing executed
      expect(await readFile(path.join(n.workDir, 'tricky-hiera.txt'), 'utf8')).toBe(TRICKY);
      expect(await readFile(path.join(n.workDir, 'tricky-fact.txt'), 'utf8')).toBe(TRICKY);
      expect(existsSync(PWNED)).toBe(false);
      expect(log()).toMatch(/puppet apply succeeded: changes applied \(exit status 2\)/);
      const roleDir = /role dir: (\S+)/.exec(log())![1]!;
      expect(roleDir).toMatch(/^\/tmp\/puppetjig-[A-Za-z0-9]{6,}\/roles\/render$/);
      expect(existsSync(roleDir)).toBe(false);
    });

    it('succeeds with changes (exit 2), then with none (exit 0); site.pp is an entry point; no wall file → {}', async () => {
      const n = nodes.nodes[1]!;
      const inputs = { file_name: 'steady.txt', msg: 'steady state\n' };
      const first = await onNode(1, 'steady', inputs);
      expect(await puppetJig.run(first.ctx)).toEqual({ wall: {} });
      expect(first.log()).toMatch(/changes applied \(exit status 2\)/);
      expect(await readFile(path.join(n.workDir, 'steady.txt'), 'utf8')).toBe('steady state\n');
      const second = await onNode(1, 'steady', inputs);
      expect(await puppetJig.run(second.ctx)).toEqual({ wall: {} });
      expect(second.log()).toMatch(/no changes \(exit status 0\)/);
    });

    it('fails a manifest that does not compile with the Error line, naming the barclamp file and line', async () => {
      const { ctx } = await onNode(2, 'broken', {});
      const err = await failure(puppetJig.run(ctx));
      expect(err.exitStatus).toBe(1);
      const file = path.join(barclamp, 'puppet', 'roles', 'broken', 'init.pp');
      expect(err.message).toContain(`role broken on node ${nodes.nodes[2]!.name}: puppet apply failed (exit status 1):\nError: `);
      expect(err.message).toContain(`(file: ${file}, line: 3`);
      expect(err.message).not.toMatch(/puppetjig-|Facter/);
    });

    it('fails when resources fail: exit 4 alone, exit 6 with changes, with the Error lines', async () => {
      const [only, mixed] = await Promise.all([
        onNode(2, 'fails-only', {}).then(({ ctx }) => failure(puppetJig.run(ctx))),
        onNode(0, 'fails-and-changes', {}).then(({ ctx }) => failure(puppetJig.run(ctx))),
      ]);
      expect(only.exitStatus).toBe(4);
      expect(only.message).toMatch(/puppet apply failed: resources failed \(exit status 4\):\nError: .*\/bin\/false/);
      expect(mixed.exitStatus).toBe(6);
      expect(mixed.message).toMatch(/resources failed \(others were changed\) \(exit status 6\):\nError: /);
      expect(mixed.message).toContain("'/bin/false' returned 1 instead of one of [0]");
    });

    it('fails when the declared wall file is not a JSON object', async () => {
      const { ctx } = await onNode(1, 'wall-array', {});
      const err = await failure(puppetJig.run(ctx));
      expect(err.message).toMatch(/the wall file crowbar_wall_file \(\/tmp\/puppetjig-\w+\/wall\.json\) must hold a JSON object, not an array/);
    });

    it('runs three applies at once on one host (two on one node) without colliding', async () => {
      const runs = await Promise.all(
        [2, 2, 0].map((i, k) => onNode(i, 'steady', { file_name: `parallel-${k}.txt`, msg: `run ${k}` })),
      );
      const results = await Promise.all(runs.map((r) => puppetJig.run(r.ctx)));
      expect(results).toEqual([{ wall: {} }, { wall: {} }, { wall: {} }]);
      for (const [k, i] of [2, 2, 0].entries()) {
        expect(await readFile(path.join(nodes.nodes[i]!.workDir, `parallel-${k}.txt`), 'utf8')).toBe(`run ${k}`);
      }
      for (const r of runs) expect(r.log()).toMatch(/changes applied \(exit status 2\)/);
    });

    it('stops puppet promptly on abort and still removes the temp dir', async () => {
      const marker = `700.${process.pid}${Date.now() % 1000}`;
      const ac = new AbortController();
      const { ctx, log } = await onNode(1, 'slow', { marker }, ac.signal);
      const pgrep = (): string => {
        try {
          return execFileSync('pgrep', ['-f', `^/bin/sleep ${marker}$`], { encoding: 'utf8' });
        } catch {
          return '';
        }
      };
      const running = failure(puppetJig.run(ctx));
      const deadline = Date.now() + 30_000;
      while (!pgrep() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(pgrep()).not.toBe('');
      const t0 = Date.now();
      ac.abort(new Error('test abort'));
      const err = await running;
      expect(Date.now() - t0).toBeLessThan(8000);
      expect(err.message).toMatch(/aborted \(test abort\); puppet was stopped/);
      await new Promise((r) => setTimeout(r, 300));
      expect(pgrep()).toBe('');
      const roleDir = /role dir: (\S+)/.exec(log())![1]!;
      expect(existsSync(path.dirname(path.dirname(roleDir)))).toBe(false);
    });

    it('runs through the local hammer too', async () => {
      const dir = await mkdtemp(path.join(base, 'local-node-'));
      const { ctx, log } = await context(new LocalHammer(), 'admin.local', 'steady', {
        node_dir: dir,
        file_name: 'local.txt',
        msg: 'local run',
      });
      expect(await puppetJig.run(ctx)).toEqual({ wall: {} });
      expect(await readFile(path.join(dir, 'local.txt'), 'utf8')).toBe('local run');
      expect(log()).toMatch(/exit status 2/);
    });

    it('runs through the sim hammer, inside the node\'s sandbox, with the wall', async () => {
      const sim = new SimHammer(path.join(base, 'sim'), 'node-00001.sim.test');
      const dir = path.join(sim.sandbox, 'root');
      const { ctx } = await context(sim, 'node-00001.sim.test', 'render', {
        node_dir: dir,
        threetier: { db: { name: 'sim', port: 1 }, servers: ['a'] },
        tricky: 'x',
      });
      expect((await puppetJig.run(ctx)).wall).toEqual({ rendered: `${dir}/app.conf`, port: 1, servers: ['a'] });
      expect(await readFile(path.join(dir, 'greeting.txt'), 'utf8')).toBe('default\n');
      expect((await readdir(path.join(sim.sandbox, 'tmp'))).filter((f) => f.startsWith('puppetjig-'))).toEqual([]);
    });

    it('refuses a missing role dir (naming the path) and a role dir with both init.pp and site.pp', async () => {
      const missing = await failure(onNode(0, 'nope', {}).then(({ ctx }) => puppetJig.run(ctx)));
      expect(missing.message).toContain(path.join(barclamp, 'puppet', 'roles', 'nope'));
      const both = await failure(onNode(0, 'both', {}).then(({ ctx }) => puppetJig.run(ctx)));
      expect(both.message).toMatch(/has both init\.pp and site\.pp/);
    });

    it('says so when puppet cannot be started on the node', async () => {
      const jig = createPuppetJig({ puppetCommand: ['no-such-puppet-xyz'] });
      const err = await failure(onNode(2, 'no-wall', {}).then(({ ctx }) => jig.run(ctx)));
      expect(err.exitStatus).toBe(127);
      expect(err.message).toMatch(/puppet could not be started \(is it installed on the node\?\) \(exit status 127\)[^]*no-such-puppet-xyz/);
    });
  });

  it("wrote nothing into puppet's system directories", () => {
    const after = existsSync(SYSTEM_SUMMARY) ? statSync(SYSTEM_SUMMARY).mtimeMs : null;
    expect(after).toBe(summaryBefore);
  });
});
