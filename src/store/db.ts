/**
 * Opens the store: Kysely over better-sqlite3 (embedded default, WAL) or over pg, runs the
 * migrations, and describes what the dialect can do as capability flags (callers never ask
 * "is this Postgres?"). Owns connections and transactions; knows nothing of the domain.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import type { Database } from './schema.js';
import { migrationProvider } from './migrations/index.js';

export type DB = Kysely<Database>;
export type Tx = Transaction<Database> | Kysely<Database>;

export interface Capabilities {
  /** `FOR UPDATE SKIP LOCKED` claims (several annealers on one database) */
  skipLocked: boolean;
  /** several processes may write at once without a single-writer lock */
  concurrentWriters: boolean;
  /** LISTEN/NOTIFY: a commit can wake other processes' annealers at once */
  notify: boolean;
  /** max bound parameters per statement */
  maxParams: number;
  dialect: 'sqlite' | 'postgres';
}

export interface StoreHandle {
  db: DB;
  caps: Capabilities;
  /** where the data lives, for messages: a file path or a URL without password */
  location: string;
  /**
   * Subscribes to a notification channel (PostgreSQL LISTEN on a dedicated connection that
   * reconnects); returns an unsubscribe function. Absent where the dialect cannot notify.
   */
  listen?(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * Refreshes the planner's statistics after a bulk load (thousands of nodes bound in a minute grow
 * the tables faster than PostgreSQL's autovacuum re-analyzes them, and stale statistics turn the
 * graph queries into scans); on SQLite, `PRAGMA optimize` does the same job.
 */
export async function refreshStatistics(db: DB, caps: Capabilities): Promise<void> {
  if (caps.dialect === 'postgres') await sql`ANALYZE node_roles, node_role_pcms, nodes, deployment_roles`.execute(db);
  else await sql`PRAGMA optimize`.execute(db);
}

export interface OpenOptions {
  /** `postgres://…` URL; when absent the embedded SQLite file is used */
  databaseUrl?: string;
  /** SQLite file (or ':memory:') when no databaseUrl */
  sqlitePath?: string;
  /** PostgreSQL schema to use (created if missing); isolates test runs */
  pgSchema?: string;
}

export async function openStore(opts: OpenOptions): Promise<StoreHandle> {
  let handle: StoreHandle;
  if (opts.databaseUrl) {
    const schema = opts.pgSchema;
    if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid PostgreSQL schema name '${schema}'`);
    if (schema) {
      const admin = new pg.Client({ connectionString: opts.databaseUrl });
      await admin.connect();
      try {
        await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (e) {
        // two processes creating the schema at once: IF NOT EXISTS does not stop the loser
        // from failing on pg_namespace's unique index; the schema being there is all we need
        const there = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
        if (there.rowCount === 0) throw e;
      } finally {
        await admin.end();
      }
    }
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: 10,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const listeners = new Set<pg.Client>();
    handle = {
      db,
      async listen(channel, onNotify) {
        if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`invalid channel name '${channel}'`);
        let client: pg.Client | undefined;
        let closed = false;
        const connect = async (): Promise<void> => {
          const c = new pg.Client({ connectionString: opts.databaseUrl });
          c.on('notification', () => onNotify());
          c.on('error', () => {
            listeners.delete(c);
            if (!closed) setTimeout(() => void connect().catch(() => undefined), 1000).unref();
          });
          await c.connect();
          await c.query(`LISTEN ${channel}`);
          client = c;
          listeners.add(c);
        };
        await connect();
        return async () => {
          closed = true;
          if (client) {
            listeners.delete(client);
            await client.end().catch(() => undefined);
          }
        };
      },
      caps: { skipLocked: true, concurrentWriters: true, notify: true, maxParams: 30000, dialect: 'postgres' },
      location: redact(opts.databaseUrl) + (schema ? ` (schema ${schema})` : ''),
      async close() {
        for (const c of listeners) await c.end().catch(() => undefined);
        await db.destroy();
      },
    };
  } else {
    const file = opts.sqlitePath ?? ':memory:';
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SqliteDatabase(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 10000');
    // the default 2 MB page cache thrashes once a fleet's node-roles and runs outgrow it
    sqlite.pragma('cache_size = -131072');
    sqlite.pragma('temp_store = MEMORY');
    sqlite.pragma('mmap_size = 1073741824');
    // checkpoint in bigger steps: a page rewritten by many anneal cycles is copied back once
    sqlite.pragma('wal_autocheckpoint = 10000');
    sqlite.pragma('foreign_keys = OFF');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
    handle = {
      db,
      caps: { skipLocked: false, concurrentWriters: false, notify: false, maxParams: 30000, dialect: 'sqlite' },
      location: file,
      close: () => db.destroy(),
    };
  }
  await migrate(handle, opts.databaseUrl ? opts.pgSchema : undefined);
  return handle;
}

/**
 * Kysely prepares every query afresh; on better-sqlite3 preparing costs more than running a
 * small query. The same SQL text (parameters are bound, not inlined) reuses its statement.
 */
function withStatementCache(sqlite: SqliteDatabase.Database): SqliteDatabase.Database {
  const cache = new Map<string, SqliteDatabase.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  return new Proxy(sqlite, {
    get(target, prop, receiver) {
      if (prop !== 'prepare') return Reflect.get(target, prop, receiver);
      return (source: string) => {
        let stmt = cache.get(source);
        if (!stmt) {
          stmt = prepare(source);
          if (cache.size >= 2000) cache.delete(cache.keys().next().value!);
          cache.set(source, stmt);
        }
        return stmt;
      };
    },
  });
}

async function migrate(h: StoreHandle, pgSchema: string | undefined): Promise<void> {
  const autoId = h.caps.dialect === 'postgres'
    ? (t: any) => t.addColumn('id', 'serial', (c: any) => c.primaryKey())
    : (t: any) => t.addColumn('id', 'integer', (c: any) => c.primaryKey().autoIncrement());
  // Kysely looks for its bookkeeping tables in *every* schema unless told which one: without
  // this, a schema opened next to an already-migrated one skips creating them and then fails
  const migrator = new Migrator({
    db: h.db,
    provider: migrationProvider({ autoId }),
    ...(pgSchema ? { migrationTableSchema: pgSchema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migrating ${h.location} failed at ${failed}: ${(error as Error).message}`, { cause: error });
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres';
  }
}

/** Drops a PostgreSQL schema made by `openStore({pgSchema})` (test and benchmark stores). */
export async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid PostgreSQL schema name '${schema}'`);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** ISO timestamp, the one format stored for every time column. */
export function now(): string {
  return new Date().toISOString();
}

export function toJson(v: unknown): string {
  return JSON.stringify(v ?? {});
}

export function fromJson<T = any>(s: string | null | undefined, fallback: T): T {
  if (s === null || s === undefined || s === '') return fallback;
  return JSON.parse(s) as T;
}

/** Splits a list into chunks so `IN (…)` lists stay under the dialect's parameter limit. */
export function chunks<T>(items: readonly T[], size = 5000): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export { sql };
