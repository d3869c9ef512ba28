/**
 * Authentication state: the per-user Digest HA1 (see `digest_ha1` in src/store/users.ts for the
 * trade-off), bearer API tokens and form-login sessions (both stored as SHA-256 of the secret,
 * never the secret), and server-wide secrets (the Digest nonce key, shared by every server on
 * one database so a nonce issued by one is accepted by the others).
 */
import type { CreateTableBuilder, Kysely } from 'kysely';
import type { MigrationContext } from './index.js';

type T = CreateTableBuilder<string, never>;

export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const table = (name: string, build: (t: T) => T) => build(ctx.autoId(db.schema.createTable(name)) as T).execute();

  await db.schema.alterTable('users').addColumn('digest_ha1', 'text').execute();

  await table('api_tokens', (t) =>
    t
      .addColumn('user_id', 'integer', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_used_at', 'text'),
  );

  await table('sessions', (t) =>
    t
      .addColumn('user_id', 'integer', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull()),
  );

  await db.schema
    .createTable('auth_secrets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema.createIndex('api_tokens_user').on('api_tokens').columns(['user_id']).execute();
  await db.schema.createIndex('sessions_user').on('sessions').columns(['user_id']).execute();
  await db.schema.createIndex('node_groups_group').on('node_groups').columns(['group_id', 'node_id']).execute();
}
