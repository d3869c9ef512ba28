/**
 * wants-attribs with `collect: true`: the wanting node-role receives the attrib from every
 * ancestor node-role of the owning role (e.g. every member of a cluster role) as a list,
 * instead of from one. Existing wants keep the original one-parent behaviour (0).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('role_require_attribs')
    .addColumn('collect', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
