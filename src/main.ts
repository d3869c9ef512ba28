/**
 * The composition root: the only module that knows every other. Opens the store, builds the
 * engine, registers jigs and hammers, bootstraps, and starts the annealer.
 */
import { join } from 'node:path';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { openStore, type StoreHandle } from './store/db.js';
import { Engine } from './engine/engine.js';
import { WAKE_CHANNEL } from './engine/context.js';
import { bootstrap, type BootstrapResult } from './engine/bootstrap.js';
import { seedUsers } from './engine/users.js';
import { Annealer } from './annealer/annealer.js';
import { JigRegistry } from './jigs/registry.js';
import { noopJig } from './jigs/builtin/noop.js';
import { testJig } from './jigs/builtin/test.js';
import { RoleHandlerRegistry, roleProvidedJig } from './jigs/builtin/role-provided.js';
import { testAsyncHandler } from './jigs/builtin/test-async.js';
import { scriptJig } from './jigs/script/index.js';
import { puppetJig } from './jigs/puppet/index.js';
import { ansibleJig } from './jigs/ansible/index.js';
import { HammerRegistry } from './hammers/index.js';
import { createLocalHammerFactory } from './hammers/local.js';
import { createSimHammerFactory } from './hammers/sim.js';
import { createSshHammerFactory, ensureInstallKey } from './hammers/ssh.js';
import { getNodeLite, nodeHammers } from './store/nodes.js';
import type { NodeHammer } from './hammers/types.js';
import type { CrowbarConfig } from './config.js';

export interface Crowbar {
  config: CrowbarConfig;
  store: StoreHandle;
  engine: Engine;
  annealer: Annealer;
  jigs: JigRegistry;
  hammers: HammerRegistry;
  log: Logger;
  boot: BootstrapResult;
  close(): Promise<void>;
}

export function sqlitePath(config: CrowbarConfig): string {
  return join(config.dataDir, 'crowbar.sqlite');
}

export interface StartOptions {
  /** start the annealer loop (default true) */
  anneal?: boolean;
  /** skip creating an admin node (tests that want an empty fleet) */
  noAdmin?: boolean;
  log?: Logger;
}

export async function startCrowbar(config: CrowbarConfig, o: StartOptions = {}): Promise<Crowbar> {
  const log = o.log ?? pino({ level: config.logLevel });
  const store = await openStore({ databaseUrl: config.databaseUrl, sqlitePath: sqlitePath(config), pgSchema: config.pgSchema });
  try {
    const engine = new Engine(store.db, store.caps, {
      dev: config.dev,
      haltNodeOnError: config.haltNodeOnError,
      resetOnNodeDeath: config.resetOnNodeDeath,
    });
    const handlers = new RoleHandlerRegistry().add('test-async', testAsyncHandler(join(config.dataDir, 'tmp')));
    const jigs = new JigRegistry().add(noopJig, testJig, roleProvidedJig(handlers), scriptJig, ansibleJig, puppetJig);
    const ssh = createSshHammerFactory(config.dataDir);
    const hammers = new HammerRegistry().add(createLocalHammerFactory()).add(createSimHammerFactory(join(config.dataDir, 'sim'))).add(ssh);
    const hammerFor = async (nodeId: number): Promise<NodeHammer> => {
      const node = await getNodeLite(store.db, nodeId);
      if (!node) throw new Error(`node ${nodeId} no longer exists`);
      const bound = (await nodeHammers(store.db, nodeId)).filter((h) => hammers.has(h.name));
      const h = bound[0];
      if (!h) throw new Error(`node '${node.name}' has no usable hammer (bound: ${(await nodeHammers(store.db, nodeId)).map((x) => x.name).join(', ') || 'none'}; this server has: ${hammers.names().join(', ')})`);
      return hammers.get(h.name).create({ nodeId, nodeName: node.name, username: h.username, endpoint: h.endpoint, authenticator: h.authenticator });
    };
    // nodes running the crowbar-access role get the key this server's ssh hammer logs in with
    const accessKeys = { [`crowbar@${hostname()}`]: ensureInstallKey(config.dataDir).publicKey };
    const boot = await bootstrap(engine, { barclampDirs: config.barclampDirs, adminName: o.noAdmin ? null : config.adminName, accessKeys });
    await seedUsers(store.db, { dev: config.dev, adminPassword: config.adminPassword, log });
    const annealer = new Annealer(engine, jigs, hammerFor, {
      concurrency: config.concurrency,
      perNode: config.perNode,
      batch: 2000,
      tickMs: config.tickMs,
      leaseMs: 60_000,
      shutdownGraceMs: 10_000,
      workRoot: join(config.dataDir, 'runs'),
      timeoutOverrideSeconds: config.runTimeoutSeconds,
    }, log.child({ module: 'annealer' }));
    const listen = store.listen;
    if (listen) annealer.listen = (onNotify) => listen(WAKE_CHANNEL, onNotify);
    if (o.anneal !== false) await annealer.start();
    return {
      config, store, engine, annealer, jigs, hammers, log, boot,
      async close() {
        await annealer.stop();
        await ssh.close();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
