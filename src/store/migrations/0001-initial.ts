/**
 * The initial schema. One migration stream serves both dialects: the only dialect-specific
 * piece is the auto-increment id column, chosen by `ctx.autoId`.
 */
import type { CreateTableBuilder, Kysely } from 'kysely';
import type { MigrationContext } from './index.js';

type T = CreateTableBuilder<string, never>;

export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const table = (name: string, build: (t: T) => T) => build(ctx.autoId(db.schema.createTable(name)) as T).execute();
  const stamps = (t: T) =>
    t.addColumn('created_at', 'text', (c) => c.notNull()).addColumn('updated_at', 'text', (c) => c.notNull());

  await table('barclamps', (t) =>
    stamps(
      t
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('barclamp_id', 'integer')
        .addColumn('version', 'text', (c) => c.notNull().defaultTo('0.0'))
        .addColumn('build_version', 'text', (c) => c.notNull().defaultTo('0.0'))
        .addColumn('source_url', 'text')
        .addColumn('source_path', 'text')
        .addColumn('commit', 'text')
        .addColumn('build_on', 'text')
        .addColumn('cfg_data', 'text', (c) => c.notNull().defaultTo('{}')),
    ),
  );

  await table('jigs', (t) =>
    stamps(
      t
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('order', 'integer', (c) => c.notNull().defaultTo(10000))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('active', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('client_role_name', 'text')
        .addColumn('server', 'text')
        .addColumn('client_name', 'text')
        .addColumn('key', 'text')
        .addColumn('barclamp_id', 'integer'),
    ),
  );

  await table('roles', (t) => {
    let r = t
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('type', 'text', (c) => c.notNull().defaultTo('Role'))
      .addColumn('template', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('jig_name', 'text', (c) => c.notNull())
      .addColumn('barclamp_id', 'integer', (c) => c.notNull())
      .addColumn('cohort', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('provides', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('conflicts', 'text', (c) => c.notNull().defaultTo('[]'));
    for (const flag of ['library', 'implicit', 'bootstrap', 'discovery', 'cluster', 'destructive', 'abstract', 'milestone', 'powersave', 'service']) {
      r = r.addColumn(flag, 'integer', (c) => c.notNull().defaultTo(0));
    }
    return stamps(r.addColumn('timeout', 'integer').addColumn('notes', 'text', (c) => c.notNull().defaultTo('{}')));
  });

  await table('role_requires', (t) =>
    stamps(
      t
        .addColumn('role_id', 'integer', (c) => c.notNull())
        .addColumn('requires', 'text', (c) => c.notNull())
        .addColumn('required_role_id', 'integer')
        .addUniqueConstraint('role_requires_uniq', ['role_id', 'requires']),
    ),
  );

  await table('role_require_attribs', (t) =>
    stamps(
      t
        .addColumn('role_id', 'integer', (c) => c.notNull())
        .addColumn('attrib_name', 'text', (c) => c.notNull())
        .addColumn('attrib_at', 'text')
        .addUniqueConstraint('role_require_attribs_uniq', ['role_id', 'attrib_name']),
    ),
  );

  await table('attribs', (t) =>
    stamps(
      t
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('barclamp_id', 'integer', (c) => c.notNull())
        .addColumn('role_id', 'integer')
        .addColumn('type', 'text', (c) => c.notNull().defaultTo('Attrib'))
        .addColumn('order', 'integer', (c) => c.notNull().defaultTo(10000))
        .addColumn('map', 'text', (c) => c.notNull())
        .addColumn('schema', 'text')
        .addColumn('writable', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('ui_renderer', 'text', (c) => c.notNull().defaultTo('attribs/default'))
        .addColumn('default', 'text', (c) => c.notNull().defaultTo('{"value":null}')),
    ),
  );

  await table('deployments', (t) =>
    stamps(
      t
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('system', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('parent_id', 'integer')
        .addColumn('state', 'integer', (c) => c.notNull().defaultTo(0)),
    ),
  );

  await table('deployment_roles', (t) =>
    stamps(
      t
        .addColumn('deployment_id', 'integer', (c) => c.notNull())
        .addColumn('role_id', 'integer', (c) => c.notNull())
        .addColumn('committed_data', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('proposed_data', 'text')
        .addColumn('wall', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('notes', 'text', (c) => c.notNull().defaultTo('{}'))
        .addUniqueConstraint('deployment_roles_uniq', ['deployment_id', 'role_id']),
    ),
  );

  await table('nodes', (t) =>
    stamps(
      t
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('order', 'integer', (c) => c.notNull().defaultTo(10000))
        .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('system', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('target_role_id', 'integer')
        .addColumn('deployment_id', 'integer', (c) => c.notNull())
        .addColumn('discovery', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('hint', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('notes', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('quirks', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('allocated', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('alive', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('available', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('bootenv', 'text', (c) => c.notNull().defaultTo('sledgehammer')),
    ),
  );

  await table('node_roles', (t) =>
    stamps(
      t
        .addColumn('deployment_id', 'integer', (c) => c.notNull())
        .addColumn('role_id', 'integer', (c) => c.notNull())
        .addColumn('node_id', 'integer', (c) => c.notNull())
        .addColumn('state', 'integer', (c) => c.notNull().defaultTo(4))
        .addColumn('cohort', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('run_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('rerun', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('replay_of', 'integer')
        .addColumn('status', 'text')
        .addColumn('runlog', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('available', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('order', 'integer', (c) => c.notNull().defaultTo(10000))
        .addColumn('proposed_data', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('committed_data', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('sysdata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('wall', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('notes', 'text', (c) => c.notNull().defaultTo('{}'))
        .addUniqueConstraint('node_roles_role_node_uniq', ['role_id', 'node_id']),
    ),
  );

  await db.schema
    .createTable('node_role_pcms')
    .addColumn('parent_id', 'integer', (c) => c.notNull())
    .addColumn('child_id', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('node_role_pcms_pk', ['parent_id', 'child_id'])
    .execute();

  await table('node_role_attrib_links', (t) =>
    t
      .addColumn('parent_id', 'integer', (c) => c.notNull())
      .addColumn('child_id', 'integer', (c) => c.notNull())
      .addColumn('attrib_id', 'integer', (c) => c.notNull())
      .addUniqueConstraint('node_role_attrib_links_uniq', ['parent_id', 'child_id', 'attrib_id']),
  );

  await table('runs', (t) =>
    t
      .addColumn('node_role_id', 'integer', (c) => c.notNull())
      .addColumn('node_id', 'integer', (c) => c.notNull())
      .addColumn('jig', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('worker', 'text')
      .addColumn('lease_until', 'text')
      .addColumn('deadline', 'text')
      .addColumn('inputs', 'text')
      .addColumn('provenance', 'text')
      .addColumn('wall', 'text')
      .addColumn('log', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('exit_status', 'integer')
      .addColumn('error', 'text')
      .addColumn('replay_of', 'integer')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text')
      .addColumn('ended_at', 'text'),
  );

  await table('available_hammers', (t) =>
    stamps(
      t
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('klass', 'text', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0)),
    ),
  );

  await table('hammers', (t) =>
    stamps(
      t
        .addColumn('node_id', 'integer', (c) => c.notNull())
        .addColumn('available_hammer_id', 'integer', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('endpoint', 'text')
        .addColumn('username', 'text', (c) => c.notNull().defaultTo('root'))
        .addColumn('authenticator', 'text')
        .addUniqueConstraint('hammers_node_type_uniq', ['node_id', 'type']),
    ),
  );

  await table('groups', (t) =>
    stamps(
      t
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('category', 'text', (c) => c.notNull().defaultTo('ui'))
        .addColumn('order', 'integer', (c) => c.notNull().defaultTo(10000))
        .addUniqueConstraint('groups_name_category_uniq', ['name', 'category']),
    ),
  );

  await db.schema
    .createTable('node_groups')
    .addColumn('node_id', 'integer', (c) => c.notNull())
    .addColumn('group_id', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('node_groups_pk', ['node_id', 'group_id'])
    .execute();

  await table('users', (t) =>
    stamps(
      t
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('email', 'text')
        .addColumn('password_hash', 'text')
        .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('is_locked', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}')),
    ),
  );

  await table('events', (t) =>
    t
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull()),
  );

  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();

  const index = (name: string, tbl: string, cols: string[]) => db.schema.createIndex(name).on(tbl).columns(cols).execute();
  await index('node_roles_state_cohort', 'node_roles', ['state', 'cohort', 'id']);
  await index('node_roles_node_state', 'node_roles', ['node_id', 'state']);
  await index('node_roles_deployment', 'node_roles', ['deployment_id']);
  await index('node_roles_role_deployment', 'node_roles', ['role_id', 'deployment_id']);
  await index('node_role_pcms_child', 'node_role_pcms', ['child_id']);
  await index('node_role_attrib_links_child', 'node_role_attrib_links', ['child_id']);
  await index('runs_node_role', 'runs', ['node_role_id', 'id']);
  await index('runs_status', 'runs', ['status']);
  await index('runs_node', 'runs', ['node_id', 'status']);
  await index('role_requires_required', 'role_requires', ['required_role_id']);
  await index('role_requires_name', 'role_requires', ['requires']);
  await index('attribs_role', 'attribs', ['role_id']);
  await index('nodes_deployment', 'nodes', ['deployment_id']);
  await index('hammers_node', 'hammers', ['node_id']);
}
