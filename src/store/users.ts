/**
 * Users and their credentials: the users table, bearer API tokens, form-login sessions and the
 * server-wide auth secrets. Rows only: hashing, password policy and the "keep one admin" rules
 * live in src/engine/users.ts. Secrets are stored as SHA-256 digests, never as given.
 *
 * `digest_ha1` — why we keep it. HTTP Digest (realm `Crowbar`) proves knowledge of
 * HA1 = MD5(username:Crowbar:password); a server that keeps only a slow salted hash (scrypt)
 * cannot check a Digest response at all. The original kept exactly this HA1 as its password
 * fallback, and its tooling speaks Digest, so we keep it too — but only for Digest: Basic, the
 * form login and password changes verify the scrypt hash. The cost, stated plainly: HA1 is
 * password-equivalent for Digest on this realm (whoever reads the users table can authenticate
 * by Digest as that user without cracking anything), and it is an unsalted fast hash, so a weak
 * password falls to a dictionary attack much sooner than its scrypt hash would. It never leaves
 * the server (serializers pick the public keys), it is bound to the username (renaming a user
 * clears it until the next password login restores it), and null means "no Digest for this
 * user". Treat the database as a credential store.
 */
import type { Selectable } from 'kysely';
import { createHash, randomBytes } from 'node:crypto';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import { now, type Tx } from './db.js';
import { keyAsId } from './rows.js';
import type { ApiTokenTable, UserTable } from './schema.js';

export interface User {
  id: number;
  username: string;
  email: string | null;
  is_admin: boolean;
  is_locked: boolean;
  created_at: string;
  updated_at: string;
}

/** A user with its credential columns; only the auth code reads these. */
export interface UserCredentials extends User {
  password_hash: string | null;
  digest_ha1: string | null;
}

export interface ApiToken {
  id: number;
  user_id: number;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

/** Columns a `match` may filter on: the public ones (never the credential columns). */
export const USER_PUBLIC_COLUMNS = ['id', 'username', 'email', 'is_admin', 'is_locked', 'created_at', 'updated_at'] as const;

const PUBLIC = USER_PUBLIC_COLUMNS;

function toUser(r: Pick<Selectable<UserTable>, (typeof PUBLIC)[number]>): User {
  return { id: r.id, username: r.username, email: r.email, is_admin: r.is_admin === 1, is_locked: r.is_locked === 1, created_at: r.created_at, updated_at: r.updated_at };
}

function toCredentials(r: Selectable<UserTable>): UserCredentials {
  return { ...toUser(r), password_hash: r.password_hash, digest_ha1: r.digest_ha1 };
}

function toToken(r: Selectable<ApiTokenTable>): ApiToken {
  return { id: r.id, user_id: r.user_id, name: r.name, created_at: r.created_at, last_used_at: r.last_used_at };
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const isId = (key: number | string) => keyAsId(key) !== null;

// users //////////////////////////////////////////////////////////////////////////////////

export async function getUser(tx: Tx, key: number | string): Promise<User | undefined> {
  const q = tx.selectFrom('users').select(PUBLIC);
  const row = await (isId(key) ? q.where('id', '=', Number(key)) : q.where('username', '=', String(key))).executeTakeFirst();
  return row && toUser(row);
}

export async function requireUser(tx: Tx, key: number | string): Promise<User> {
  const u = await getUser(tx, key);
  if (!u) throw new NotFoundError('user', key);
  return u;
}

export async function userCredentials(tx: Tx, key: { id: number } | { username: string }): Promise<UserCredentials | undefined> {
  const q = tx.selectFrom('users').selectAll();
  const row = await ('id' in key ? q.where('id', '=', key.id) : q.where('username', '=', key.username)).executeTakeFirst();
  return row && toCredentials(row);
}

export async function listUsers(tx: Tx, filter: Partial<Record<(typeof PUBLIC)[number], string | number | null>> = {}): Promise<User[]> {
  let q = tx.selectFrom('users').select(PUBLIC).orderBy('id');
  for (const [col, v] of Object.entries(filter)) {
    const c = col as (typeof PUBLIC)[number];
    q = v === null ? q.where(c, 'is', null) : q.where(c, '=', v as never);
  }
  return (await q.execute()).map(toUser);
}

export interface NewUserRow {
  username: string;
  email?: string | null;
  password_hash: string | null;
  digest_ha1: string | null;
  is_admin?: boolean;
  is_locked?: boolean;
}

/** Inserts a user; a taken username is a ConflictError. */
export async function insertUser(tx: Tx, u: NewUserRow): Promise<User> {
  if (await getUser(tx, u.username)) throw new ConflictError(`user '${u.username}' already exists`, { field: 'username' });
  const t = now();
  try {
    const row = await tx
      .insertInto('users')
      .values({
        username: u.username, email: u.email ?? null, password_hash: u.password_hash, digest_ha1: u.digest_ha1,
        is_admin: u.is_admin ? 1 : 0, is_locked: u.is_locked ? 1 : 0, settings: '{}', created_at: t, updated_at: t,
      })
      .returning(PUBLIC)
      .executeTakeFirstOrThrow();
    return toUser(row);
  } catch (e) {
    if (isUniqueViolation(e)) throw new ConflictError(`user '${u.username}' already exists`, { field: 'username' });
    throw e;
  }
}

/** Inserts a user unless the username is taken; never touches an existing user. True if inserted. */
export async function insertUserIfMissing(tx: Tx, u: NewUserRow): Promise<boolean> {
  const t = now();
  const row = await tx
    .insertInto('users')
    .values({
      username: u.username, email: u.email ?? null, password_hash: u.password_hash, digest_ha1: u.digest_ha1,
      is_admin: u.is_admin ? 1 : 0, is_locked: u.is_locked ? 1 : 0, settings: '{}', created_at: t, updated_at: t,
    })
    .onConflict((oc) => oc.column('username').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

export interface UserRowPatch {
  username?: string;
  email?: string | null;
  is_admin?: boolean;
  is_locked?: boolean;
  password_hash?: string | null;
  digest_ha1?: string | null;
}

export async function updateUser(tx: Tx, id: number, p: UserRowPatch): Promise<void> {
  const set: Record<string, unknown> = { updated_at: now() };
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue;
    set[k] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  try {
    await tx.updateTable('users').set(set).where('id', '=', id).execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw new ConflictError(`user '${p.username}' already exists`, { field: 'username' });
    throw e;
  }
}

/** Deletes a user with its tokens and sessions. */
export async function deleteUser(tx: Tx, id: number): Promise<void> {
  await tx.deleteFrom('api_tokens').where('user_id', '=', id).execute();
  await tx.deleteFrom('sessions').where('user_id', '=', id).execute();
  await tx.deleteFrom('users').where('id', '=', id).execute();
}

/** Admins that can still sign in. */
export async function countActiveAdmins(tx: Tx): Promise<number> {
  const r = await tx.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('is_admin', '=', 1).where('is_locked', '=', 0).executeTakeFirst();
  return Number(r?.n ?? 0);
}

// API tokens ///////////////////////////////////////////////////////////////////////////////

export const TOKEN_PREFIX = 'crowbar_';

/** Creates a token; the secret is returned once and only its SHA-256 is kept. */
export async function createApiToken(tx: Tx, userId: number, name: string): Promise<{ token: string; row: ApiToken }> {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const row = await tx
    .insertInto('api_tokens')
    .values({ user_id: userId, name, token_hash: sha256(token), created_at: now(), last_used_at: null })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { token, row: toToken(row) };
}

export async function listApiTokens(tx: Tx, userId: number): Promise<ApiToken[]> {
  return (await tx.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).orderBy('id').execute()).map(toToken);
}

/** Revokes one of a user's tokens; NotFoundError if that user has no such token. */
export async function deleteApiToken(tx: Tx, userId: number, tokenId: number): Promise<ApiToken> {
  const row = await tx.selectFrom('api_tokens').selectAll().where('id', '=', tokenId).where('user_id', '=', userId).executeTakeFirst();
  if (!row) throw new NotFoundError('token', tokenId);
  await tx.deleteFrom('api_tokens').where('id', '=', tokenId).execute();
  return toToken(row);
}

/** The token and its user for a presented secret. */
export async function findApiToken(tx: Tx, secret: string): Promise<{ token: ApiToken; user: User } | undefined> {
  const row = await tx.selectFrom('api_tokens').selectAll().where('token_hash', '=', sha256(secret)).executeTakeFirst();
  if (!row) return undefined;
  const user = await getUser(tx, row.user_id);
  return user && { token: toToken(row), user };
}

export async function touchApiToken(tx: Tx, id: number, at: string = now()): Promise<void> {
  await tx.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
}

// sessions /////////////////////////////////////////////////////////////////////////////////

/** Starts a session; returns the cookie secret (only its SHA-256 is kept). */
export async function createSession(tx: Tx, userId: number, ttlMs: number): Promise<{ secret: string; expiresAt: string }> {
  const secret = randomBytes(32).toString('base64url');
  const t = Date.now();
  const expiresAt = new Date(t + ttlMs).toISOString();
  await tx.insertInto('sessions').values({ user_id: userId, token_hash: sha256(secret), created_at: new Date(t).toISOString(), expires_at: expiresAt }).execute();
  return { secret, expiresAt };
}

/** The user of an unexpired session. */
export async function findSession(tx: Tx, secret: string): Promise<{ sessionId: number; user: User } | undefined> {
  const row = await tx.selectFrom('sessions').select(['id', 'user_id']).where('token_hash', '=', sha256(secret)).where('expires_at', '>', now()).executeTakeFirst();
  if (!row) return undefined;
  const user = await getUser(tx, row.user_id);
  return user && { sessionId: row.id, user };
}

export async function deleteSession(tx: Tx, secret: string): Promise<void> {
  await tx.deleteFrom('sessions').where('token_hash', '=', sha256(secret)).execute();
}

/** Ends a user's sessions, but `keepSecret`'s (the caller's own). */
export async function deleteUserSessions(tx: Tx, userId: number, keepSecret?: string): Promise<void> {
  let q = tx.deleteFrom('sessions').where('user_id', '=', userId);
  if (keepSecret) q = q.where('token_hash', '!=', sha256(keepSecret));
  await q.execute();
}

export async function purgeExpiredSessions(tx: Tx): Promise<void> {
  await tx.deleteFrom('sessions').where('expires_at', '<=', now()).execute();
}

// server secrets ///////////////////////////////////////////////////////////////////////////

/** A named server-wide secret, created (random, 32 bytes) by whichever server asks first. */
export async function authSecret(tx: Tx, name: string): Promise<Buffer> {
  await tx
    .insertInto('auth_secrets')
    .values({ name, value: randomBytes(32).toString('hex'), created_at: now() })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await tx.selectFrom('auth_secrets').select('value').where('name', '=', name).executeTakeFirstOrThrow();
  return Buffer.from(row.value, 'hex');
}

// helpers //////////////////////////////////////////////////////////////////////////////////

/** A unique-constraint violation on either dialect. */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
