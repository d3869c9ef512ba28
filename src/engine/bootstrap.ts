/**
 * First-start bootstrap (idempotent): the `system` deployment (id 1) with its phantom node,
 * the built-in barclamps (and any extra ones), and an admin node for this machine with its
 * bootstrap roles bound and committed.
 */
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getDeployment } from '../store/deployments.js';
import { sql } from '../store/db.js';
import type { Ctx } from './context.js';
import { importBarclampDir, type ImportResult } from './barclamp-import.js';
import type { Engine } from './engine.js';
import { createDeployment } from './deployments.js';
import { createNode, commitNode } from './nodes.js';
import { getAttribValue, setAttribValue } from './attribs.js';
import { getAttrib } from '../store/attribs.js';
import { isObject } from '../domain/json.js';

/** `barclamps/` at the repository root: `crowbar` first, then every other directory with a crowbar.yml. */
export async function builtinBarclampDirs(): Promise<string[]> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../barclamps');
  const dirs = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'crowbar.yml'))).map((d) => d.name);
  return ['crowbar', ...dirs.filter((d) => d !== 'crowbar').sort()].filter((d) => dirs.includes(d)).map((d) => join(root, d));
}

/** An FQDN for this machine with at least three labels (node names require it). */
export function defaultAdminName(): string {
  const h = hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-');
  return h.split('.').length >= 3 ? h : `${h.split('.')[0]}.crowbar.local`;
}

export interface BootstrapResult {
  imported: ImportResult[];
  adminNode?: string;
  created: boolean;
}

export interface BootstrapOptions {
  barclampDirs?: string[];
  adminName?: string | null;
  /**
   * SSH public keys this server logs in with, by name (e.g. `crowbar@<host>` → the install
   * key): merged into the `crowbar-access_keys` attrib of the `crowbar-access` role, whose
   * script installs them on every node it is bound to.
   */
  accessKeys?: Record<string, string>;
}

export async function bootstrap(engine: Engine, opts: BootstrapOptions): Promise<BootstrapResult> {
  // several servers may bootstrap one new database at once: check-then-create under a lock
  const created = await engine.tx(async (ctx) => {
    await takeTurns(engine, ctx);
    if (await getDeployment(ctx.tx, 1)) return false;
    await createDeployment(ctx, { name: 'system', description: 'the system deployment', system: true });
    return true;
  });
  const imported: ImportResult[] = [];
  for (const dir of [...(await builtinBarclampDirs()), ...(opts.barclampDirs ?? [])]) {
    imported.push(...(await importBarclampDir(engine.db, dir, { mode: engine.opts.dev ? 'development' : 'production' })));
  }
  if (opts.accessKeys && Object.keys(opts.accessKeys).length > 0) await publishAccessKeys(engine, opts.accessKeys);
  let adminNode: string | undefined;
  if (opts.adminName !== null) {
    adminNode = await engine.tx(async (ctx) => {
      await takeTurns(engine, ctx);
      const existing = await ctx.tx.selectFrom('nodes').select('name').where('admin', '=', 1).executeTakeFirst();
      if (existing) return existing.name;
      const name = opts.adminName ?? defaultAdminName();
      await createNode(ctx, { name, description: 'the admin node (this machine)', admin: true, alive: true, available: true, bootenv: 'local', hammers: ['local'] });
      await commitNode(ctx, name);
      return name;
    });
  }
  return { imported, adminNode, created };
}

/** Merges `keys` into the crowbar-access role's `crowbar-access_keys` (a change pokes its node-roles). */
async function publishAccessKeys(engine: Engine, keys: Record<string, string>): Promise<void> {
  await engine.tx(async (ctx) => {
    const attrib = await getAttrib(ctx.tx, ACCESS_KEYS_ATTRIB);
    if (!attrib) return; // a database without the crowbar barclamp
    const target = { kind: 'role', id: ACCESS_ROLE } as const;
    const current = await getAttribValue(ctx.tx, attrib, target, 'all');
    const have = isObject(current) ? current : {};
    if (Object.entries(keys).every(([k, v]) => have[k] === v)) return;
    await setAttribValue(ctx, attrib, target, { ...have, ...keys }, 'system');
  });
}

const ACCESS_KEYS_ATTRIB = 'crowbar-access_keys';
const ACCESS_ROLE = 'crowbar-access';

/** PostgreSQL advisory lock key serializing bootstraps across processes ("CRBS") */
const BOOTSTRAP_LOCK_KEY = 0x43524253;

/** With several writers (PostgreSQL), holds the bootstrap lock until `ctx`'s transaction ends. */
async function takeTurns(engine: Engine, ctx: Ctx): Promise<void> {
  if (engine.caps.concurrentWriters) await sql`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`.execute(ctx.tx);
}
