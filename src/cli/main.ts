/**
 * The `crowbar` command. `serve` runs the server (store, bootstrap, annealer, HTTP); `sim`
 * registers simulated nodes on an embedded data dir and anneals them to convergence with
 * progress. Resource commands that talk to the API arrive with it.
 */
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { compileConfig, type CrowbarConfig } from '../config.js';
// the server side (store, engine, HTTP app) loads only for `serve` and embedded `sim`, so
// commands that talk to the API start fast
const server = () => import('../main.js');
const httpApp = () => import('../api/app.js');
const simRegister = () => import('../sim/register.js');
import { takeDataDirLock } from './lock.js';
import { NodeRoleState, stateName } from '../domain/states.js';
import { coerceError } from '../domain/errors.js';
import type { JsonObject } from '../domain/json.js';
import type { Engine } from '../engine/engine.js';
import { registerApiCommands, simClient, simViaApi } from './commands/index.js';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};

const seconds = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number of seconds`);
  return n;
};

function serverOptions(cmd: Command): Command {
  return cmd
    .option('-d, --data-dir <dir>', 'data directory: SQLite file, run scratch, sim sandboxes (default: $CROWBAR_DATA_DIR or ./data)')
    .option('--database <url>', 'PostgreSQL URL (default: DATABASE_URL, else the embedded SQLite file)')
    .option('--dev', 'development mode: the test jig is active and stands in for inactive jigs (default: $CROWBAR_DEV=1)')
    .option('--concurrency <n>', 'global limit of concurrent runs', int('--concurrency'))
    .option('--per-node <n>', 'runs in flight per node', int('--per-node'))
    .option('--barclamps <dir...>', 'extra barclamp directories to import')
    .option('--run-timeout <seconds>', 'override every run timeout', int('--run-timeout'))
    .option('--log-level <level>', 'fatal, error, warn, info, debug (default: $CROWBAR_LOG_LEVEL or info)');
}

function configFrom(o: Record<string, any>): CrowbarConfig {
  return compileConfig({
    dataDir: o.dataDir,
    databaseUrl: o.database,
    dev: o.dev,
    port: o.port,
    host: o.host,
    concurrency: o.concurrency,
    perNode: o.perNode,
    barclampDirs: o.barclamps,
    runTimeoutSeconds: o.runTimeout,
    logLevel: o.logLevel,
  });
}

export function program(): Command {
  const p = new Command('crowbar').description('OpenCrowbar: take servers to a configured ready state and keep them there').showHelpAfterError();

  serverOptions(p.command('serve').description('run the server: store, barclamps, bootstrap, annealer and HTTP API'))
    .option('-p, --port <port>', 'HTTP port (default: $CROWBAR_PORT or 3000)', int('--port'))
    .option('--host <addr>', 'HTTP bind address (default: $CROWBAR_HOST or 127.0.0.1)')
    .action(async (o) => {
      const config = configFrom(o);
      const release = config.databaseUrl ? () => undefined : takeDataDirLock(config.dataDir, 'crowbar serve');
      const log = pino({ level: config.logLevel });
      const { startCrowbar } = await server();
      const { buildApp } = await httpApp();
      const cb = await startCrowbar(config, { log });
      const app = await buildApp({ engine: cb.engine, log, hammers: cb.hammers });
      await app.listen({ port: config.port, host: config.host });
      log.info({ store: cb.store.location, admin: cb.boot.adminNode, dev: config.dev }, `crowbar serving on http://${config.host}:${config.port}`);
      let stopping = false;
      const stop = async (sig: string) => {
        if (stopping) return;
        stopping = true;
        log.info(`${sig}: finishing in-flight runs and shutting down`);
        await app.close();
        await cb.close();
        release();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });

  serverOptions(
    p
      .command('sim')
      .description('register simulated nodes (real script execution in per-node sandboxes) and anneal them')
      .requiredOption('-n, --nodes <n>', 'number of nodes to add', int('--nodes')),
  )
    .option('--deployment <name>', 'deployment for the nodes (created and committed if missing)')
    .option('--roles <roles>', 'comma-separated roles to bind on every node', (v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--no-wait', 'register and commit only; do not anneal')
    .option('--no-commit', 'register (and bind) only: leave nodes and deployment proposed')
    .option('--test-delay <seconds>', "set the `delay` of every test-* role's template (the test jig pauses that long; 0 = fast)", seconds('--test-delay'))
    .action(async (o, cmd: Command) => {
      // a configured server URL (and no --data-dir/--database): register through its API
      const client = simClient(cmd);
      if (client) return simViaApi(client, cmd);
      const config = configFrom(o);
      const release = config.databaseUrl ? () => undefined : takeDataDirLock(config.dataDir, 'crowbar sim');
      const log = pino({ level: o.logLevel ?? process.env.CROWBAR_LOG_LEVEL ?? 'warn' });
      const { startCrowbar } = await server();
      const { registerSimNodes } = await simRegister();
      const cb = await startCrowbar(config, { log, anneal: false });
      const out = (s: string) => process.stdout.write(s);
      try {
        if (o.testDelay !== undefined) await setTestDelays(cb.engine, o.testDelay);
        if (o.wait) await cb.annealer.start();
        const t0 = Date.now();
        const res = await registerSimNodes(cb.engine, {
          nodes: o.nodes,
          deployment: o.deployment,
          roles: o.roles,
          commit: o.commit,
          progress: (d, t) => process.stderr.isTTY && process.stderr.write(`\rregistering nodes ${d}/${t}`),
        });
        if (process.stderr.isTTY) process.stderr.write('\n');
        out(`registered ${res.nodes.length} simulated nodes in deployment '${res.deployment}' (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
        if (!o.wait) return;
        const timer = setInterval(async () => out(`${await summary(cb.engine.db)}\n`), 2000);
        await cb.annealer.settle();
        clearInterval(timer);
        const final = await stateCounts(cb.engine.db);
        // settled = nothing left to run; converged = and nothing left unfinished (ERROR, TODO, …)
        const converged = final.every((r) => r.state === NodeRoleState.ACTIVE || r.state === NodeRoleState.PROPOSED);
        out(`${converged ? 'converged' : 'settled without converging'} in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${formatCounts(final)}\n`);
        const errors = await cb.engine.db.selectFrom('node_roles as nr').innerJoin('roles as r', 'r.id', 'nr.role_id').innerJoin('nodes as n', 'n.id', 'nr.node_id').select(['nr.id', 'r.name as role', 'n.name as node', 'nr.runlog']).where('nr.state', '=', -1).limit(5).execute();
        for (const e of errors) out(`ERROR node-role ${e.id} ${e.role} on ${e.node}:\n  ${e.runlog.trim().split('\n').slice(-3).join('\n  ')}\n`);
        if (errors.length) process.exitCode = 1;
      } finally {
        await cb.close();
        release();
      }
    });
  return registerApiCommands(p);
}

/** Sets `delay` in the template of every `test-*` role (other template keys are kept). */
async function setTestDelays(engine: Engine, delay: number): Promise<void> {
  const roles = await engine.db.selectFrom('roles').select(['name', 'template']).where('name', 'like', 'test-%').execute();
  for (const r of roles) await engine.setRoleTemplate(r.name, { ...(JSON.parse(r.template || '{}') as JsonObject), delay });
}

async function stateCounts(db: import('../store/db.js').DB): Promise<Array<{ state: number; n: number }>> {
  return db.selectFrom('node_roles').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('state').orderBy('state').execute();
}

function formatCounts(rows: Array<{ state: number; n: number }>): string {
  return rows.map((r) => `${stateName(r.state)}=${r.n}`).join(' ');
}

async function summary(db: import('../store/db.js').DB): Promise<string> {
  return formatCounts(await stateCounts(db));
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    process.stderr.write(`crowbar: ${coerceError(e).message}\n`);
    process.exitCode = 1;
  }
}
