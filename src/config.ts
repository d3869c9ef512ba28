/**
 * Server configuration: one documented shape, filled from flags and CROWBAR_* / DATABASE_URL
 * environment variables, compiled once (paths absolute, durations in ms). Modules receive the
 * compiled config and never read process.env themselves.
 */
import { resolve } from 'node:path';

export interface CrowbarConfig {
  /** where the SQLite file, run scratch space and sim sandboxes live (default `./data`) */
  dataDir: string;
  /** PostgreSQL URL; when absent the embedded SQLite file `<dataDir>/crowbar.sqlite` is used */
  databaseUrl?: string;
  /** PostgreSQL schema (isolates test runs; default `public`) */
  pgSchema?: string;
  /** development mode: test jig active, `developer` user seeded (api-compat) */
  dev: boolean;
  /** HTTP port (default 3000) */
  port: number;
  /** HTTP bind address (default 127.0.0.1) */
  host: string;
  /** global limit of concurrent non-inline runs (default 64) */
  concurrency: number;
  /** runs in flight per node (default 1) */
  perNode: number;
  /** name of the admin node created for this machine on first start */
  adminName?: string;
  /** extra barclamp directories to import at start, after the built-in ones */
  barclampDirs: string[];
  /** annealer tick (default 1000 ms) */
  tickMs: number;
  /** overrides every run timeout (seconds) */
  runTimeoutSeconds?: number;
  /** restore the original: one ERROR halts every run of its node */
  haltNodeOnError: boolean;
  /** restore the original: a node going not-alive resets its node-roles */
  resetOnNodeDeath: boolean;
  logLevel: string;
  /** first password of the `crowbar` admin user (CROWBAR_ADMIN_PASSWORD); generated and logged once when absent outside dev */
  adminPassword?: string;
}

export function compileConfig(partial: Partial<CrowbarConfig>, env: NodeJS.ProcessEnv = process.env): CrowbarConfig {
  const num = (v: string | undefined, d: number) => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d);
  return {
    dataDir: resolve(partial.dataDir ?? env.CROWBAR_DATA_DIR ?? 'data'),
    databaseUrl: partial.databaseUrl ?? (env.DATABASE_URL || undefined),
    pgSchema: partial.pgSchema ?? (env.CROWBAR_PG_SCHEMA || undefined),
    dev: partial.dev ?? env.CROWBAR_DEV === '1',
    port: partial.port ?? num(env.CROWBAR_PORT ?? env.PORT, 3000),
    host: partial.host ?? env.CROWBAR_HOST ?? '127.0.0.1',
    concurrency: partial.concurrency ?? num(env.CROWBAR_CONCURRENCY, 64),
    perNode: partial.perNode ?? num(env.CROWBAR_PER_NODE, 1),
    adminName: partial.adminName ?? env.CROWBAR_ADMIN_NAME,
    barclampDirs: (partial.barclampDirs ?? (env.CROWBAR_BARCLAMPS ? env.CROWBAR_BARCLAMPS.split(':') : [])).map((d) => resolve(d)),
    tickMs: partial.tickMs ?? num(env.CROWBAR_TICK_MS, 1000),
    runTimeoutSeconds: partial.runTimeoutSeconds ?? (env.CROWBAR_RUN_TIMEOUT ? num(env.CROWBAR_RUN_TIMEOUT, 1800) : undefined),
    haltNodeOnError: partial.haltNodeOnError ?? env.CROWBAR_HALT_NODE_ON_ERROR === '1',
    resetOnNodeDeath: partial.resetOnNodeDeath ?? env.CROWBAR_RESET_ON_NODE_DEATH === '1',
    logLevel: partial.logLevel ?? env.CROWBAR_LOG_LEVEL ?? 'info',
    adminPassword: partial.adminPassword ?? (env.CROWBAR_ADMIN_PASSWORD || undefined),
  };
}
