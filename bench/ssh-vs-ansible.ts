/**
 * The real-SSH benchmark (DESIGN.md §4): N real sshd nodes (default 50, BENCH_SSH_NODES) × the
 * same 4 small shell tasks, done once by an in-process Crowbar (script jig over the `ssh`
 * hammer, a 4-role chain bound on every node in one deployment, default global concurrency) and
 * once by `ansible-playbook` (the same script bodies as `ansible.builtin.shell` tasks, forks =
 * our concurrency, pipelining, ControlPersist, curve25519 kex, no fact gathering). Both start
 * with no open connection: a fresh Crowbar (new data dir, so a new ssh hammer factory) per run,
 * a fresh ControlPersist directory per Ansible run, whose masters are closed afterwards.
 *
 * Timed: ours from the deployment commit to every node-role ACTIVE; Ansible the whole
 * `ansible-playbook` process. After every run each node's status file is checked (exit codes
 * are not trusted) and the nodes' work dirs are emptied. Runs come in pairs, the order
 * alternating (BENCH_SSH_PAIRS, default 3); the result is the median of each side. The
 * machine CPU figures count every process on the host (other load included).
 * BENCH_SSH_PROFILE=1 also times every hammer call of ours (one launch per run; a cleanup only
 * after a run that could not clean up itself).
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import YAML from 'yaml';
import { compileConfig } from '../src/config.js';
import { startCrowbar } from '../src/main.js';
import { createNode } from '../src/engine/nodes.js';
import { bindRole } from '../src/engine/binding.js';
import { createDeployment, commitDeployment } from '../src/engine/deployments.js';
import { setAttribValue } from '../src/engine/attribs.js';
import { requireAttrib } from '../src/store/attribs.js';
import { ensureInstallKey, fingerprint, type InstallKey, type SshHammerFactory } from '../src/hammers/ssh.js';
import type { HammerTarget, NodeHammer } from '../src/hammers/types.js';
import { SshdNodes, sshdUnavailableReason, type SshdNode } from '../src/testing/sshd-nodes.js';

const here = dirname(fileURLToPath(import.meta.url));
const BARCLAMP = join(here, 'ssh-barclamp');
const ROLES = ['sshbench-config', 'sshbench-tree', 'sshbench-sum', 'sshbench-verify'] as const;
const DEPLOYMENT = 'sshbench';
const TOKEN_LINE = 'TOKEN=$(read_attribute sshbench/token)';
const BUDGET = 0.3;

/** Why the scenario cannot run here, or null. */
export function sshVsAnsibleUnavailable(): string | null {
  const sshd = sshdUnavailableReason();
  if (sshd) return sshd;
  for (const tool of ['ansible-playbook', 'jq', 'ssh']) {
    if (!onPath(tool)) return `${tool} is not installed (apt-get install ${tool === 'ansible-playbook' ? 'ansible' : tool === 'ssh' ? 'openssh-client' : tool})`;
  }
  return null;
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => {
    try {
      accessSync(join(d || '.', tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

interface RunResult {
  seconds: number;
  /** busy CPU-seconds of the whole machine during the timed part (/proc/stat) */
  machineCpuS: number;
  /** CPU-seconds of this process during the timed part (ours only) */
  ownCpuS?: number;
  notes: string[];
}

export async function sshVsAnsible(): Promise<Record<string, string | number>> {
  const count = Number(process.env.BENCH_SSH_NODES ?? 50);
  const pairs = Number(process.env.BENCH_SSH_PAIRS ?? 3);
  if (!Number.isInteger(count) || count < 1 || count > 250) throw new Error(`BENCH_SSH_NODES must be 1..250, got ${process.env.BENCH_SSH_NODES}`);
  if (!Number.isInteger(pairs) || pairs < 1 || pairs > 10) throw new Error(`BENCH_SSH_PAIRS must be 1..10, got ${process.env.BENCH_SSH_PAIRS}`);
  const concurrency = compileConfig({}, {}).concurrency; // the server's default, also Ansible's forks
  const deadlineMs = Number(process.env.BENCH_SSH_DEADLINE_S ?? 300) * 1000;
  const tasks = ROLES.map((r) => readFileSync(join(BARCLAMP, 'script', 'roles', r, '10-task.sh'), 'utf8'));

  const root = mkdtempSync(join(tmpdir(), 'ssh-vs-ansible-'));
  let nodes: SshdNodes | undefined;
  try {
    const key = ensureInstallKey(join(root, 'install'));
    const t0 = performance.now();
    nodes = await SshdNodes.start(count, { authorizedKeys: [key.publicKey], startTimeoutMs: 30_000 });
    console.log(`  ${count} sshd nodes up in ${((performance.now() - t0) / 1000).toFixed(1)} s (${nodes.nodes[0]!.address} …); concurrency/forks ${concurrency}; ${pairs} pair(s)`);
    const hostKeys = nodes.nodes.map((n) => readFileSync(join(n.dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' '));
    for (const n of nodes.nodes) cleanNode(n);

    const ours: RunResult[] = [];
    const theirs: RunResult[] = [];
    for (let p = 0; p < pairs; p++) {
      const order: Array<'ours' | 'ansible'> = p % 2 === 0 ? ['ours', 'ansible'] : ['ansible', 'ours'];
      for (const tool of order) {
        const token = `tok-${randomBytes(6).toString('hex')}`;
        for (const n of nodes.nodes) if (readdirSync(n.workDir).length) throw new Error(`work dir of ${n.name} is not empty before the ${tool} run`);
        const r = tool === 'ours'
          ? await runOurs(root, key, nodes.nodes, hostKeys, token, deadlineMs)
          : await runAnsible(root, key, nodes.nodes, hostKeys, tasks, token, concurrency, deadlineMs);
        verify(nodes.nodes, token, tool);
        for (const n of nodes.nodes) cleanNode(n);
        (tool === 'ours' ? ours : theirs).push(r);
        const own = r.ownCpuS !== undefined ? `, crowbar process ${r.ownCpuS.toFixed(1)} CPU-s` : '';
        console.log(`  pair ${p + 1} ${tool === 'ours' ? 'crowbar' : 'ansible'}: ${r.seconds.toFixed(2)} s, machine ${r.machineCpuS.toFixed(1)} CPU-s${own}; all ${count} status files verified`);
        for (const line of r.notes) console.log(`    ${line}`);
      }
    }
    const oursS = median(ours.map((r) => r.seconds));
    const ansibleS = median(theirs.map((r) => r.seconds));
    const ratio = oursS / ansibleS;
    const pairRatios = ours.map((r, i) => (r.seconds / theirs[i]!.seconds).toFixed(3));
    console.log(`  median: crowbar ${oursS.toFixed(2)} s (machine ${median(ours.map((r) => r.machineCpuS)).toFixed(1)} CPU-s), ansible ${ansibleS.toFixed(2)} s (machine ${median(theirs.map((r) => r.machineCpuS)).toFixed(1)} CPU-s); per-pair ratios ${pairRatios.join(', ')}`);
    console.log(`  budget: crowbar <= ${BUDGET} x ansible: ratio ${ratio.toFixed(3)} — ${ratio <= BUDGET ? 'MET' : 'NOT MET'}${count !== 50 ? ` (with ${count} nodes; the budget is stated for 50)` : ''}`);
    return { nodes: count, ours_s: oursS.toFixed(2), ansible_s: ansibleS.toFixed(2), ratio: ratio.toFixed(3) };
  } finally {
    await nodes?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

// Ours ///////////////////////////////////////////////////////////////////////////////////////

async function runOurs(root: string, key: InstallKey, nodes: SshdNode[], hostKeys: string[], token: string, deadlineMs: number): Promise<RunResult> {
  // a fresh install whose key is the one the nodes trust, host keys pinned up front (no TOFU)
  const dataDir = mkdtempSync(join(root, 'crowbar-'));
  mkdirSync(join(dataDir, 'ssh'), { mode: 0o700 });
  copyFileSync(key.path, join(dataDir, 'ssh', 'id_ed25519'));
  copyFileSync(`${key.path}.pub`, join(dataDir, 'ssh', 'id_ed25519.pub'));
  const pinned = Object.fromEntries(nodes.map((n, i) => [n.endpoint, fingerprint(Buffer.from(hostKeys[i]!.split(' ')[1]!, 'base64'))]));
  writeFileSync(join(dataDir, 'ssh', 'known_hosts.json'), `${JSON.stringify(pinned, null, 2)}\n`, { mode: 0o600 });

  const cb = await startCrowbar(compileConfig({ dataDir, barclampDirs: [BARCLAMP], dev: false, logLevel: 'warn', adminPassword: randomBytes(12).toString('hex') }, {}), {
    anneal: false,
    noAdmin: true,
    log: pino({ level: 'warn' }),
  });
  const notes: string[] = [];
  try {
    const { engine } = cb;
    const factory = cb.hammers.get('ssh') as SshHammerFactory;
    if (ensureInstallKey(dataDir).publicKey !== key.publicKey) throw new Error('the fresh install did not take the benchmark key');
    const profile = process.env.BENCH_SSH_PROFILE === '1' ? profileHammers(factory) : undefined;
    await engine.tx(async (ctx) => {
      await createDeployment(ctx, { name: DEPLOYMENT });
      await setAttribValue(ctx, await requireAttrib(ctx.tx, 'sshbench-token'), { kind: 'deployment', id: DEPLOYMENT }, token, 'user');
      for (const n of nodes) {
        const node = await createNode(ctx, { name: n.name, deployment: DEPLOYMENT, alive: true, available: true });
        // what PUT /api/v2/hammers/:id does with an endpoint
        const set = await ctx.tx.updateTable('hammers').set({ endpoint: n.endpoint, username: n.username }).where('node_id', '=', node.id).where('name', '=', 'ssh').executeTakeFirst();
        if (Number(set.numUpdatedRows) !== 1) throw new Error(`node ${n.name} has no ssh hammer to point at ${n.endpoint}`);
        // proposed until the one deployment commit below (which also commits the token)
        await bindRole(ctx, ROLES[ROLES.length - 1], n.name, DEPLOYMENT);
      }
    });
    const bound = await engine.db.selectFrom('node_roles').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    if (Number(bound.n) !== nodes.length * ROLES.length) throw new Error(`expected ${nodes.length * ROLES.length} node-roles, found ${bound.n}`);
    if (factory.connectionCount !== 0) throw new Error(`the ssh factory already holds ${factory.connectionCount} connection(s) before the timed part`);

    const cpu0 = process.cpuUsage();
    const busy0 = machineBusy();
    const t1 = performance.now();
    await engine.tx((ctx) => commitDeployment(ctx, DEPLOYMENT));
    await cb.annealer.start();
    await withDeadline(cb.annealer.settle(), deadlineMs, 'crowbar convergence');
    const seconds = (performance.now() - t1) / 1000;
    const machineCpuS = machineBusy() - busy0;
    const cpu = process.cpuUsage(cpu0);

    const states = await engine.db.selectFrom('node_roles').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('state').execute();
    const active = Number(states.find((s) => s.state === 0)?.n ?? 0);
    if (active !== nodes.length * ROLES.length) {
      const failed = await engine.db.selectFrom('runs').select(['error']).where('status', '!=', 'done').limit(3).execute();
      throw new Error(`crowbar did not converge: states ${JSON.stringify(states)}; first errors: ${failed.map((f) => f.error).join(' | ')}`);
    }
    notes.push(`${factory.connectionCount} connection(s) open at the end (one per node expected)`);
    if (profile) notes.push(...profile());
    const runs = await engine.db.selectFrom('runs').select(['started_at', 'ended_at']).execute();
    const durations = runs.filter((r) => r.started_at && r.ended_at).map((r) => Date.parse(String(r.ended_at)) - Date.parse(String(r.started_at)));
    if (durations.length) notes.push(`${durations.length} runs, each start→end: median ${median(durations).toFixed(0)} ms, max ${Math.max(...durations)} ms`);
    return { seconds, machineCpuS, ownCpuS: (cpu.user + cpu.system) / 1e6, notes };
  } finally {
    await cb.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Wraps every ssh hammer the factory makes so each call is timed by kind; returns the report. */
function profileHammers(factory: SshHammerFactory): () => string[] {
  const stats = new Map<string, number[]>();
  const time = async <T>(kind: string, p: Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await p;
    } finally {
      const list = stats.get(kind) ?? [];
      list.push(performance.now() - t);
      stats.set(kind, list);
    }
  };
  const create = factory.create.bind(factory);
  factory.create = (target: HammerTarget): NodeHammer => {
    const h = create(target);
    const wrapped: NodeHammer = {
      name: h.name,
      actions: h.actions,
      run: (argv, opts) => time(argv[0] === 'bash' ? 'run scripts' : `run ${argv[0]}`, h.run(argv, opts)),
      copyTo: (l, r) => time(`copyTo ${r.split('/').pop()}`, h.copyTo(l, r)),
      copyFrom: (r, l) => time('copyFrom attrs', h.copyFrom(r, l)),
      power: (a) => h.power(a),
      close: () => h.close?.() ?? Promise.resolve(),
    };
    return wrapped;
  };
  return () => [...stats].map(([k, v]) => `hammer ${k}: ${v.length}× median ${median(v).toFixed(1)} ms, sum ${(v.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s`);
}

// Ansible ////////////////////////////////////////////////////////////////////////////////////

async function runAnsible(
  root: string, key: InstallKey, nodes: SshdNode[], hostKeys: string[], tasks: string[], token: string, forks: number, deadlineMs: number,
): Promise<RunResult> {
  const dir = mkdtempSync(join(root, 'ansible-'));
  const cp = join(dir, 'cp'); // fresh ControlPersist sockets: no connection survives from earlier runs
  mkdirSync(cp, { mode: 0o700 });
  const keyFile = join(dir, 'id_ed25519');
  copyFileSync(key.path, keyFile);
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, nodes.map((n, i) => `${n.port === 22 ? n.address : `[${n.address}]:${n.port}`} ${hostKeys[i]}\n`).join(''), { mode: 0o600 });
  writeFileSync(join(dir, 'inventory.ini'), `[sshbench]\n${nodes.map((n) => `${n.name} ansible_host=${n.address} ansible_port=${n.port} ansible_user=${n.username}`).join('\n')}\n`);
  const sshArgs = [
    '-F /dev/null', // neither ~/.ssh/config nor /etc/ssh/ssh_config
    '-o ControlMaster=auto -o ControlPersist=60s',
    '-o KexAlgorithms=curve25519-sha256', // the kex our ssh hammer prefers
    `-o UserKnownHostsFile=${knownHosts} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes`,
    '-o IdentitiesOnly=yes',
  ].join(' ');
  writeFileSync(join(dir, 'ansible.cfg'), [
    '[defaults]',
    `inventory = ${join(dir, 'inventory.ini')}`,
    `forks = ${forks}`,
    'host_key_checking = True',
    'gathering = explicit',
    'interpreter_python = /usr/bin/python3',
    `private_key_file = ${keyFile}`,
    'retry_files_enabled = False',
    'nocolor = True',
    `local_tmp = ${join(dir, 'tmp')}`,
    `home = ${join(dir, 'home')}`,
    '',
    '[ssh_connection]',
    'pipelining = True',
    `control_path_dir = ${cp}`,
    `ssh_args = ${sshArgs}`,
    '',
  ].join('\n'));
  const play = [{
    name: 'sshbench',
    hosts: 'sshbench',
    gather_facts: false,
    vars: { token },
    environment: { TOKEN: '{{ token }}', LC_ALL: 'C', LANG: 'C' },
    tasks: tasks.map((body, i) => ({ name: `task ${i + 1} (${ROLES[i]})`, 'ansible.builtin.shell': { cmd: ansibleBody(body), executable: '/bin/bash' } })),
  }];
  const playbook = join(dir, 'playbook.yml');
  writeFileSync(playbook, YAML.stringify(play, { blockQuote: 'literal', lineWidth: 0 }));

  const logFile = join(dir, 'ansible.log');
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANSIBLE_')));
  env.ANSIBLE_CONFIG = join(dir, 'ansible.cfg');
  const notes: string[] = [];
  try {
    const busy0 = machineBusy();
    const t0 = performance.now();
    const exit = await runBounded('ansible-playbook', [playbook], env, logFile, deadlineMs);
    const seconds = (performance.now() - t0) / 1000;
    const machineCpuS = machineBusy() - busy0;
    const log = readFileSync(logFile, 'utf8');
    const recap = log.split('\n').filter((l) => /^\S+\s+: ok=/.test(l));
    const bad = recap.filter((l) => !/ failed=0 /.test(l) || !/ unreachable=0 /.test(l));
    if (exit !== 0 || bad.length || recap.length !== nodes.length) {
      throw new Error(`ansible-playbook exited ${exit}, ${recap.length} host(s) in the recap, ${bad.length} failed; last lines:\n${log.split('\n').slice(-15).join('\n')}`);
    }
    return { seconds, machineCpuS, notes };
  } finally {
    await closeMasters(cp);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same script body for ansible.builtin.shell: the runner's errexit, the token from the environment. */
function ansibleBody(script: string): string {
  if (/\{\{|\{%|\{#/.test(script)) throw new Error('a task script contains Jinja2 markup; Ansible would template it');
  const lines = script.split('\n').filter((l) => l !== TOKEN_LINE);
  return ['set -o errexit -o pipefail', ...lines].join('\n');
}

/** Runs a command in its own process group, output to a file; kills the group at the deadline. */
function runBounded(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, deadlineMs: number): Promise<number | null> {
  const fd = openSync(logFile, 'w');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', fd, fd], detached: true });
    const timer = setTimeout(() => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      reject(new Error(`${cmd} did not finish within ${deadlineMs / 1000} s; killed`));
    }, deadlineMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  }).finally(() => closeSync(fd)) as Promise<number | null>;
}

/** Ends the ControlPersist masters Ansible left behind (`ssh -O exit` on each socket). */
async function closeMasters(cp: string): Promise<void> {
  if (!existsSync(cp)) return;
  const sockets = readdirSync(cp).slice(0, 1000);
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => {
    execFile('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(cp, s)}`, '-O', 'exit', 'bench'], { timeout: 5000 }, () => resolve());
  })));
}

// Shared /////////////////////////////////////////////////////////////////////////////////////

/** Every node's status file must name this run's token, with its manifest of 20 files. */
function verify(nodes: SshdNode[], token: string, tool: string): void {
  const bad: string[] = [];
  for (const n of nodes) {
    const app = join(n.workDir, 'app');
    const status = existsSync(join(app, 'status')) ? readFileSync(join(app, 'status'), 'utf8') : '(missing)';
    const manifest = existsSync(join(app, 'manifest.sha256')) ? readFileSync(join(app, 'manifest.sha256'), 'utf8').trim().split('\n').length : 0;
    if (status !== `ok token=${token} files=20\n` || manifest !== 20) bad.push(`${n.name}: status ${JSON.stringify(status)}, manifest ${manifest} lines`);
  }
  if (bad.length) throw new Error(`${tool}: ${bad.length} of ${nodes.length} node(s) did not finish the tasks: ${bad.slice(0, 5).join('; ')}`);
}

function cleanNode(n: SshdNode): void {
  for (const e of readdirSync(n.workDir)) rmSync(join(n.workDir, e), { recursive: true, force: true });
}

/** Busy CPU-seconds of the whole machine so far (user+nice+system+irq+softirq+steal). */
function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / 100;
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
