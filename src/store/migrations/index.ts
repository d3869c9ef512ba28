/**
 * The migration list and the tiny context that lets one migration stream serve SQLite and
 * PostgreSQL (Kysely's Migrator takes the PG advisory lock, so concurrent starts are safe).
 */
import type { CreateTableBuilder, Kysely, Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-initial.js';
import * as m0002 from './0002-auth.js';
import * as m0003 from './0003-collect-wants.js';

export interface MigrationContext {
  /** adds the dialect's auto-increment primary key column `id` */
  autoId<T extends string>(t: CreateTableBuilder<T, never>): CreateTableBuilder<T, 'id'>;
}

type Step = { up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> };
const steps: Record<string, Step> = { '0001-initial': m0001, '0002-auth': m0002, '0003-collect-wants': m0003 };

export function migrationProvider(ctx: MigrationContext): MigrationProvider {
  return {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, step] of Object.entries(steps)) out[name] = { up: (db) => step.up(db, ctx) };
      return out;
    },
  };
}
