/**
 * The ansible jig, end to end: real `ansible-playbook` against 3 real OpenSSH servers on
 * loopback (src/testing/sshd-nodes.ts) through the real ssh hammer, and against the admin host
 * through the local hammer. A fixture barclamp in a temp dir holds the roles and a playbook.
 * Skipped without sshd/root or ansible-playbook, except under CROWBAR_E2E=1 where that fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import { createLocalHammerFactory } from '../../src/hammers/local.js';
import { createSimHammerFactory } from '../../src/hammers/sim.js';
import { createSshHammerFactory, ensureInstallKey, knownHostsLine } from '../../src/hammers/ssh.js';
import type { SshHammerFactory } from '../../src/hammers/ssh.js';
import { isTransportFailure } from '../../src/hammers/types.js';
import type { NodeHammer } from '../../src/hammers/types.js';
import { ansibleJig, createAnsibleJig, resolveCallbackDir } from '../../src/jigs/ansible/index.js';
import { ansibleCfg, cfgValue, unsafeYaml } from '../../src/jigs/ansible/run-files.js';
import { JigFailure } from '../../src/jigs/types.js';
import { SshdNodes, sshdUnavailableReason } from '../../src/testing/sshd-nodes.js';
import { jigContext } from '../helpers/jig-context.js';

function ansibleUnavailableReason(): string | null {
  try {
    execFileSync('which', ['ansible-playbook'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'ansible-playbook is not installed (apt-get install ansible)';
  }
}

const required = process.env['CROWBAR_E2E'] === '1';
const noAnsible = ansibleUnavailableReason();
const noNodes = sshdUnavailableReason() ?? noAnsible;
if (noAnsible && !required) console.warn(`ansible jig e2e skipped: ${noAnsible}`);
else if (noNodes && !required) console.warn(`ansible jig over sshd skipped: ${noNodes}`);

const PWNED = `/tmp/ansible-jig-pwned-${process.pid}`;
const TRICKY = `$(touch ${PWNED}) \`touch ${PWNED}\` it's "quoted" {{ lookup('pipe', 'touch ${PWNED}') }} {% raw %} \\ ; | & ünï ✓`;

/** The fixture barclamp: roles (one depending on another), a playbook, a failing and a slow role. */
const FILES: Record<string, string> = {
  'ansible/roles/common/tasks/main.yml': `
- name: record that the dependency ran
  ansible.builtin.set_stats:
    data: { common: { ran: true } }
`,
  'ansible/roles/render/meta/main.yml': `
dependencies: [common]
`,
  'ansible/roles/render/defaults/main.yml': `
app: { name: default-name, port: 1 }
`,
  'ansible/roles/render/tasks/main.yml': `
- name: choose the node's directory
  ansible.builtin.set_fact:
    dest: "{{ out_dir if out_dir is defined else ansible_env.CROWBAR_NODE_DIR }}/app.conf"
- name: render the config
  ansible.builtin.template:
    src: app.conf.j2
    dest: "{{ dest }}"
    mode: "0644"
- name: report
  ansible.builtin.set_stats:
    data:
      render:
        file: "{{ dest }}"
        port: 5432
        port_text: "{{ app.port }}"
        servers: "{{ app.servers }}"
        tricky: "{{ app.tricky }}"
        enabled: true
        ratio: 0.25
        nested: { deep: { list: [1, "two", false, null] } }
- name: report per host
  ansible.builtin.set_stats:
    per_host: true
    data:
      render: { host: "{{ inventory_hostname }}" }
`,
  'ansible/roles/render/templates/app.conf.j2': `# managed by crowbar
name={{ app.name }}
port={{ app.port }}
servers={{ app.servers | join(',') }}
tricky={{ app.tricky }}
`,
  'ansible/roles/failing/tasks/main.yml': `
- name: a step that works
  ansible.builtin.command: "true"
- name: read the missing config
  ansible.builtin.command: cat /nonexistent/crowbar-ansible-test.conf
- name: never reached
  ansible.builtin.set_stats:
    data: { reached: true }
`,
  'ansible/roles/broken/tasks/main.yml': `
- name: use a module that does not exist
  no_such_namespace.no_such_collection.no_such_module: { x: 1 }
`,
  'ansible/roles/sleeper/tasks/main.yml': `
- name: sleep for a long time
  ansible.builtin.command:
    argv: [sleep, "{{ marker }}"]
`,
  'ansible/roles/byplaybook/tasks/main.yml': `
- name: the role itself
  ansible.builtin.set_stats:
    data: { source: role }
`,
  'ansible/playbooks/byplaybook.yml': `
- name: the barclamp's own playbook
  hosts: all
  gather_facts: false
  tasks:
    - name: say where we are
      ansible.builtin.set_stats:
        data: { source: playbook, answer: 42 }
`,
};

let base: string;
let barclamp: string;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'ansible-jig-'));
  barclamp = path.join(base, 'barclamp');
  for (const [file, body] of Object.entries(FILES)) {
    await mkdir(path.dirname(path.join(barclamp, file)), { recursive: true });
    await writeFile(path.join(barclamp, file), body);
  }
});
afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
  await rm(PWNED, { force: true });
});

const context = (hammer: NodeHammer, role: string, node: { id: number; name: string }, inputs?: JsonObject, signal?: AbortSignal) =>
  jigContext({ hammer, jig: 'ansible', role, sourcePath: barclamp, workRoot: base, inputs, signal, node });

async function failureOf(p: Promise<unknown>): Promise<JigFailure> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JigFailure);
  return err as JigFailure;
}

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-af', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

describe('ansible jig: run files', () => {
  it('writes every string of the inputs as !unsafe YAML, numbers as YAML 1.1 numbers', () => {
    expect(unsafeYaml({ a: "x 'y' {{ z }}", n: [1, 2.5, 1e21, -1e-7], b: true, z: null })).toBe(
      `{"a": !unsafe "x 'y' {{ z }}", "n": [1, 2.5, 1.0e+21, -1.0e-7], "b": true, "z": null}`,
    );
    expect(unsafeYaml({ 'new\nline': 'tab\there\u007f' })).toBe('{"new\\nline": !unsafe "tab\\there\\u007f"}');
  });
  it('escapes % and refuses values configparser or Ansible would misread', () => {
    expect(cfgValue('/srv/100%/roles', 'roles path', true)).toBe('/srv/100%%/roles');
    expect(() => cfgValue('/a:/b', 'roles path', true)).toThrow(/cannot be written into ansible\.cfg/);
    expect(() => cfgValue('/a\n[defaults]', 'temp dir', false)).toThrow(/cannot/);
    expect(() => cfgValue('/a ;b', 'temp dir', false)).toThrow(/cannot/);
    const cfg = ansibleCfg({
      header: 'h',
      rolesPath: '/r',
      callbackDir: '/c',
      localTmp: '/t',
      controlPathDir: '/cp',
      knownHostsFile: "/k h/it's",
      connectTimeoutSeconds: 10,
    });
    expect(cfg).toContain(`-o UserKnownHostsFile='/k h/it'\\''s'`);
    expect(cfg).toMatch(/^forks = 1$/m);
    expect(cfg).toMatch(/^pipelining = True$/m);
    expect(cfg).toMatch(/^host_key_checking = True$/m);
    expect(cfg).toContain('KexAlgorithms=curve25519-sha256,');
  });
});

describe('ansible jig: callback plugin location', () => {
  it('is found from the compiled dist/ layout as well as from src/', () => {
    const repo = path.resolve(import.meta.dirname, '..', '..');
    const fromSrc = resolveCallbackDir(new URL(`file://${repo}/src/jigs/ansible/ansible-jig.ts`).href);
    const fromDist = resolveCallbackDir(new URL(`file://${repo}/dist/jigs/ansible/ansible-jig.js`).href);
    expect(fromSrc).toBe(path.join(repo, 'src', 'jigs', 'ansible', 'callback'));
    expect(fromDist).toBe(fromSrc);
    expect(existsSync(path.join(fromSrc, 'crowbar_wall.py'))).toBe(true);
  });
});

describe('ansible jig: what it refuses before running', () => {
  it('fails naming both expected paths when the role has neither playbook nor role dir', async () => {
    const h = await context(createLocalHammerFactory().create({ nodeId: 1, nodeName: 'admin', username: 'root' }), 'nothing-here', {
      id: 1,
      name: 'admin.test',
    });
    const err = await failureOf(ansibleJig.run(h.ctx));
    expect(err.message).toContain(path.join(barclamp, 'ansible', 'playbooks', 'nothing-here.yml'));
    expect(err.message).toContain(path.join(barclamp, 'ansible', 'roles', 'nothing-here'));
  });
  it('needs an ssh or local hammer', async () => {
    const sim = createSimHammerFactory(path.join(base, 'sim')).create({ nodeId: 5, nodeName: 'n5.sim.test', username: 'root' });
    const h = await context(sim, 'render', { id: 5, name: 'n5.sim.test' });
    const err = await failureOf(ansibleJig.run(h.ctx));
    expect(err.message).toContain('the ansible jig needs a node reachable by ssh (or the admin node); node n5.sim.test uses hammer sim');
  });
  it("refuses inputs that would override Ansible's own variables", async () => {
    const local = createLocalHammerFactory().create({ nodeId: 1, nodeName: 'admin', username: 'root' });
    const h = await context(local, 'render', { id: 1, name: 'admin.test' }, { ansible_connection: 'ssh' });
    expect((await failureOf(ansibleJig.run(h.ctx))).message).toContain("input attribute 'ansible_connection'");
  });
});

describe.skipIf(noAnsible !== null && !required)('ansible jig on the admin host (local hammer)', () => {
  beforeAll(() => {
    if (noAnsible) throw new Error(`CROWBAR_E2E=1 but the ansible jig cannot run: ${noAnsible}`);
  });

  it('runs the role with ansible_connection=local', async () => {
    const out = await mkdtemp(path.join(base, 'local-out-'));
    const local = createLocalHammerFactory().create({ nodeId: 1, nodeName: 'admin.test', username: 'root' });
    const inputs = { out_dir: out, app: { name: 'on-admin', port: 8080, servers: ['a'], tricky: TRICKY } };
    const h = await context(local, 'render', { id: 1, name: 'admin.test' }, inputs);
    const { wall } = await ansibleJig.run(h.ctx);
    expect(await readFile(path.join(out, 'app.conf'), 'utf8')).toBe(
      `# managed by crowbar\nname=on-admin\nport=8080\nservers=a\ntricky=${TRICKY}\n`,
    );
    expect(wall).toMatchObject({ common: { ran: true }, render: { port_text: '8080', host: 'admin.test', tricky: TRICKY } });
    expect(h.log()).toContain('ansible_connection=local');
    expect(existsSync(PWNED)).toBe(false);
  });

  it("fails with ansible-playbook's own ERROR! text when the play cannot even start", async () => {
    const local = createLocalHammerFactory().create({ nodeId: 1, nodeName: 'admin.test', username: 'root' });
    const h = await context(local, 'broken', { id: 1, name: 'admin.test' });
    const err = await failureOf(ansibleJig.run(h.ctx));
    expect(err.message).toMatch(/^role broken on node admin\.test: ansible-playbook failed \(exit status [1-9]\d*\): ERROR! /);
    expect(err.message).toContain('no_such_namespace.no_such_collection.no_such_module');
  });
});

describe.skipIf(noNodes !== null && !required)('ansible jig over 3 real sshd nodes', () => {
  let dataDir: string;
  let nodes: SshdNodes;
  let factory: SshHammerFactory;
  const hammer = (i: number): NodeHammer => {
    const n = nodes.nodes[i]!;
    return factory.create({ nodeId: i + 1, nodeName: n.name, username: n.username, endpoint: n.endpoint });
  };
  const nodeOf = (i: number) => ({ id: i + 1, name: nodes.nodes[i]!.name });

  beforeAll(async () => {
    if (noNodes) throw new Error(`CROWBAR_E2E=1 but the ansible jig cannot run over sshd: ${noNodes}`);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'ansible-jig-data-'));
    const key = ensureInstallKey(dataDir);
    nodes = await SshdNodes.start(3, { authorizedKeys: [key.publicKey] });
    factory = createSshHammerFactory(dataDir, { killGraceMs: 1000 });
  }, 30_000);
  afterAll(async () => {
    await factory?.close();
    await nodes?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('renders a template from injected inputs into the node\'s dir and returns set_stats as the wall', async () => {
    const n = nodes.nodes[0]!;
    const inputs = { app: { name: 'demo', port: 5432, servers: ['10.0.0.1', '10.0.0.2'], tricky: TRICKY } };
    const h = await context(hammer(0), 'render', nodeOf(0), inputs);
    const { wall } = await ansibleJig.run(h.ctx);
    const file = path.join(n.workDir, 'app.conf');
    expect(readFileSync(file, 'utf8')).toBe(
      `# managed by crowbar\nname=demo\nport=5432\nservers=10.0.0.1,10.0.0.2\ntricky=${TRICKY}\n`,
    );
    expect(wall).toEqual({
      common: { ran: true },
      render: {
        file,
        port: 5432,
        // Ansible's templating renders a lone {{ number }} as text; containers and booleans keep their type
        port_text: '5432',
        servers: ['10.0.0.1', '10.0.0.2'],
        tricky: TRICKY,
        enabled: true,
        ratio: 0.25,
        nested: { deep: { list: [1, 'two', false, null] } },
        host: n.name,
      },
    });
    // nothing in the value was run: not by a shell, not by Jinja
    expect(existsSync(PWNED)).toBe(false);
    // the play's output streamed to the log, line by line
    expect(h.chunks.every((c) => c.indexOf('\n') === c.length - 1)).toBe(true);
    const log = h.log();
    expect(log).toContain('TASK [render : render the config]');
    expect(log).toContain(`changed: [${n.name}]`);
    expect(log).toMatch(/PLAY RECAP/);
    // no master connection or ansible process outlives the run
    expect(pgrep(h.ctx.workDir)).toBe('');
  });

  it("uses the barclamp's ansible/playbooks/<role>.yml instead of the role when present", async () => {
    const h = await context(hammer(1), 'byplaybook', nodeOf(1));
    const { wall } = await ansibleJig.run(h.ctx);
    expect(wall).toEqual({ source: 'playbook', answer: 42 });
    expect(h.log()).toContain(path.join(barclamp, 'ansible', 'playbooks', 'byplaybook.yml'));
  });

  it('fails naming the failed task and its error', async () => {
    const h = await context(hammer(1), 'failing', nodeOf(1));
    const err = await failureOf(ansibleJig.run(h.ctx));
    expect(err.exitStatus).toBe(2);
    expect(err.message).toContain(`role failing on node ${nodes.nodes[1]!.name}: ansible-playbook failed (exit status 2)`);
    expect(err.message).toContain('task "failing : read the missing config" failed');
    expect(err.message).toContain('cat: /nonexistent/crowbar-ansible-test.conf: No such file or directory');
    expect(err.message).toMatch(/^fatal: \[node-1\.sshd\.test\]: FAILED!/m);
    expect(isTransportFailure(err)).toBe(false);
  });

  it('stops ansible-playbook and the task on the node promptly on abort, leaving no process', async () => {
    const marker = `900.${process.pid}${Date.now() % 100000}`;
    const ac = new AbortController();
    const h = await context(hammer(0), 'sleeper', nodeOf(0), { marker }, ac.signal);
    const running = ansibleJig.run(h.ctx);
    const deadline = Date.now() + 20_000;
    while (!pgrep(`^sleep ${marker}$`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(pgrep(`^sleep ${marker}$`)).not.toBe('');
    expect(pgrep(`ansible-playbook.*${h.ctx.workDir}`)).not.toBe('');
    const t0 = Date.now();
    ac.abort(new Error('test abort'));
    const err = await failureOf(running);
    expect(Date.now() - t0).toBeLessThan(4500);
    expect(err.message).toContain('run aborted (test abort); ansible-playbook was stopped');
    await new Promise((r) => setTimeout(r, 300));
    expect(pgrep(marker)).toBe('');
    expect(pgrep(h.ctx.workDir)).toBe('');
  });

  it('says the node is unreachable with ssh\'s message when Ansible cannot connect', async () => {
    // a hammer that vouches for the node but sends Ansible to a port where nothing listens
    const real = hammer(2);
    const access = await real.sshAccess!();
    const port = await closedPort();
    const elsewhere: NodeHammer = {
      name: 'ssh',
      actions: real.actions,
      run: (argv, opts) => real.run(argv, opts),
      copyTo: (a, b) => real.copyTo(a, b),
      copyFrom: (a, b) => real.copyFrom(a, b),
      power: (a) => real.power(a),
      sshAccess: async () => {
        const key = access.knownHostsLine.split(' ').slice(1).join(' ');
        return { ...access, port, knownHostsLine: knownHostsLine(access.host, port, key) };
      },
    };
    const h = await context(elsewhere, 'render', nodeOf(2), { app: { name: 'x', port: 1, servers: [], tricky: '' } });
    const err = await failureOf(ansibleJig.run(h.ctx));
    expect(err.exitStatus).toBe(4);
    expect(err.message).toContain('the node is unreachable');
    expect(err.message).toMatch(/the node is unreachable: .*ssh: connect to host 127\.[0-9.]+ port \d+: Connection refused/);
    expect(isTransportFailure(err)).toBe(true);
  });

  it('fails within seconds, before running ansible, when sshd is down', async () => {
    await nodes.stopNode(1);
    try {
      const h = await context(hammer(1), 'render', nodeOf(1));
      const t0 = Date.now();
      const err = await failureOf(ansibleJig.run(h.ctx));
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(err.message).toMatch(/ansible-playbook not started: ssh to node node-1\.sshd\.test .*ECONNREFUSED/);
      expect(isTransportFailure(err)).toBe(true);
      expect(h.log()).not.toContain('TASK [');
    } finally {
      await nodes.startNode(1);
    }
  });

  it('refuses a changed host key with the pinning error before ansible runs', async () => {
    const quick = createAnsibleJig({ killGraceMs: 500 });
    const first = await context(hammer(2), 'byplaybook', nodeOf(2));
    await quick.run(first.ctx);
    const oldFp = nodes.hostKeyFingerprint(2);
    await nodes.restartWithNewHostKey(2);
    const h = await context(hammer(2), 'byplaybook', nodeOf(2));
    const err = await failureOf(quick.run(h.ctx));
    expect(err.message).toContain('the host key has CHANGED');
    expect(err.message).toContain(`pinned ${oldFp}`);
    expect(err.message).toContain(`offered ${nodes.hostKeyFingerprint(2)}`);
    expect(isTransportFailure(err)).toBe(false);
    expect(h.log()).not.toContain('TASK [');
  });
});

/** A TCP port on 127.0.0.1 where nothing listens (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}
