/**
 * Test stores for every dialect: SQLite in memory always, PostgreSQL too when DATABASE_URL is
 * set (one fresh schema per opened store, dropped on cleanup). `forEachDialect` runs a suite
 * once per dialect with a store opened before and cleaned up after it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { dropSchema, openStore, sql, type StoreHandle } from '../../src/store/db.js';

export type TestDialect = 'sqlite' | 'postgres';

export interface TestStore {
  dialect: TestDialect;
  handle: StoreHandle;
  /** closes the store and, on PostgreSQL, drops its schema */
  cleanup(): Promise<void>;
}

/** `sqlite` always, `postgres` when DATABASE_URL is set. */
export function storeDialects(): TestDialect[] {
  return process.env['DATABASE_URL'] ? ['sqlite', 'postgres'] : ['sqlite'];
}

/** Opens an empty, migrated store; on PostgreSQL in a new schema `<prefix>_<random>`. */
export async function openTestStore(dialect: TestDialect, prefix = 't'): Promise<TestStore> {
  if (dialect === 'sqlite') {
    const handle = await openStore({ sqlitePath: ':memory:' });
    return { dialect, handle, cleanup: () => handle.close() };
  }
  const databaseUrl = process.env['DATABASE_URL'];
  if (!databaseUrl) throw new Error('postgres test store needs DATABASE_URL');
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const handle = await openStore({ databaseUrl, pgSchema: schema });
  return {
    dialect,
    handle,
    async cleanup() {
      await handle.close();
      await dropSchema(databaseUrl, schema);
    },
  };
}

/** Empties every table (ids restart), so one store can serve many tests. */
export async function truncateAll(handle: StoreHandle): Promise<void> {
  const tables = (await handle.db.introspection.getTables())
    .map((t) => t.name)
    .filter((n) => !n.startsWith('kysely_'));
  if (handle.caps.dialect === 'postgres') {
    await sql.raw(`TRUNCATE ${tables.map((t) => `"${t}"`).join(', ')} RESTART IDENTITY`).execute(handle.db);
    return;
  }
  for (const t of tables) await sql.raw(`DELETE FROM "${t}"`).execute(handle.db);
  const seq = await sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_sequence'`.execute(handle.db);
  if (Number(seq.rows[0]?.n) > 0) await sql.raw(`DELETE FROM sqlite_sequence`).execute(handle.db);
}

/**
 * Declares `describe('<dialect>: <name>')` per dialect; `fn` gets a getter for the store,
 * which is opened in beforeAll and cleaned up in afterAll.
 */
export function forEachDialect(name: string, fn: (store: () => TestStore, dialect: TestDialect) => void, prefix = 't'): void {
  for (const dialect of storeDialects()) {
    describe(`${dialect}: ${name}`, () => {
      let store: TestStore | undefined;
      beforeAll(async () => {
        store = await openTestStore(dialect, prefix);
      });
      afterAll(async () => {
        await store?.cleanup();
      });
      fn(() => {
        if (!store) throw new Error('test store is not open yet (use it inside a test or hook)');
        return store;
      }, dialect);
    });
  }
}

/** One store location (a SQLite file, or a PostgreSQL schema) that can be opened more than once. */
export interface ReopenableStore {
  dialect: TestDialect;
  /** opens (and migrates) the location; every handle is closed by cleanup() if still open */
  open(): Promise<StoreHandle>;
  /** PostgreSQL schema name, or the SQLite file path */
  where: string;
  /** closes what open() returned and removes the file or drops the schema */
  cleanup(): Promise<void>;
}

/** A not-yet-created store location for `dialect`: a temp SQLite file, or a fresh PG schema name. */
export function reopenableStore(dialect: TestDialect, prefix = 'r'): ReopenableStore {
  const handles: StoreHandle[] = [];
  const track = (h: StoreHandle): StoreHandle => {
    let closed: Promise<void> | undefined;
    const wrapped: StoreHandle = { ...h, close: () => (closed ??= h.close()) };
    handles.push(wrapped);
    return wrapped;
  };
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'crowbar-store-'));
    const file = join(dir, 'crowbar.sqlite');
    return {
      dialect,
      where: file,
      open: async () => track(await openStore({ sqlitePath: file })),
      async cleanup() {
        await Promise.all(handles.map((h) => h.close()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const databaseUrl = process.env['DATABASE_URL'];
  if (!databaseUrl) throw new Error('postgres test store needs DATABASE_URL');
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  return {
    dialect,
    where: schema,
    open: async () => track(await openStore({ databaseUrl, pgSchema: schema })),
    async cleanup() {
      await Promise.all(handles.map((h) => h.close()));
      await dropSchema(databaseUrl, schema);
    },
  };
}
