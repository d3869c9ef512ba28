/**
 * User rules: password hashing (scrypt, self-describing), the Digest HA1 that goes with it,
 * validation of usernames and passwords, "always keep one admin who can sign in", and the
 * first-start seeding of the `crowbar` (and in dev `developer`) users.
 */
import { createHash, createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Logger } from 'pino';
import { ConflictError, InvalidError } from '../domain/errors.js';
import type { DB, Tx } from '../store/db.js';
import {
  countActiveAdmins, deleteUser, insertUser, insertUserIfMissing, requireUser, updateUser, userCredentials,
  type User, type UserCredentials, type UserRowPatch,
} from '../store/users.js';

export const REALM = 'Crowbar';

// passwords ////////////////////////////////////////////////////////////////////////////////

/** scrypt cost as log2(N); 2^15 × r=8 is ~32 MB and tens of ms per check on a server core. */
const DEFAULT_LN = 15;
/** The published dev passwords gain nothing from a slow hash; a cheap one keeps test starts fast. */
const DEV_LN = 10;

function scrypt(password: string, salt: Buffer, keylen: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((res, rej) => scryptCb(password.normalize('NFC'), salt, keylen, o, (e, k) => (e ? rej(e) : res(k))));
}

/** `$scrypt$ln=15,r=8,p=1$<salt b64>$<key b64>`: the parameters travel with the hash. */
export async function hashPassword(password: string, ln = DEFAULT_LN): Promise<string> {
  const salt = randomBytes(16);
  const r = 8;
  const p = 1;
  const key = await scrypt(password, salt, 32, { N: 2 ** ln, r, p, maxmem: 256 * 2 ** ln * r });
  return `$scrypt$ln=${ln},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  const m = stored && /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 1 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const want = Buffer.from(m[5]!, 'base64');
  const got = await scrypt(password, Buffer.from(m[4]!, 'base64'), want.length, { N: 2 ** ln, r, p, maxmem: 256 * 2 ** ln * r * p + 1024 });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** HA1 for HTTP Digest (RFC 2617): MD5(username:realm:password). See store/users.ts for why it is kept. */
export function digestHa1(username: string, password: string): string {
  return createHash('md5').update(`${username}:${REALM}:${password}`).digest('hex');
}

/** A hash to compare against when the user does not exist, so timing does not tell. */
let dummyHash: Promise<string> | undefined;

/**
 * Checks passwords against users, remembering recent successes for a few minutes: Basic auth
 * sends the password with every request and a scrypt per request would be the server's
 * bottleneck. The memo holds only keyed digests of (user, password, stored hash), so changing
 * the password (or the hash) invalidates it; locked/deleted users are re-checked by the caller.
 */
export class PasswordChecker {
  private readonly key = randomBytes(32);
  private readonly ok = new Map<string, number>();
  private readonly db: DB;
  private readonly o: { ttlMs?: number; max?: number };

  constructor(db: DB, o: { ttlMs?: number; max?: number } = {}) {
    this.db = db;
    this.o = o;
  }

  /** The user if `password` is theirs (locked users included: the caller decides). */
  async check(username: string, password: string): Promise<UserCredentials | undefined> {
    const u = await userCredentials(this.db, { username });
    if (!u || !u.password_hash) {
      await verifyPassword(password, await (dummyHash ??= hashPassword('not a password')));
      return undefined;
    }
    const memo = createHmac('sha256', this.key).update(`${u.id}\0${u.password_hash}\0${password}`).digest('base64');
    const until = this.ok.get(memo);
    if (until === undefined || until <= Date.now()) {
      if (!(await verifyPassword(password, u.password_hash))) return undefined;
      if (this.ok.size >= (this.o.max ?? 1000)) this.ok.delete(this.ok.keys().next().value!);
      this.ok.set(memo, Date.now() + (this.o.ttlMs ?? 5 * 60_000));
    }
    // a rename clears the Digest HA1 (it is bound to the username): the next password login restores it
    if (!u.digest_ha1) await updateUser(this.db, u.id, { digest_ha1: digestHa1(u.username, password) });
    return u;
  }
}

// validation ///////////////////////////////////////////////////////////////////////////////

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.@+-]*$/;

export function validateUsername(username: string): string {
  if (username.length > 255 || !USERNAME.test(username) || /^\d+$/.test(username)) {
    throw new InvalidError(`'username' must start with a letter or digit and contain only letters, digits, '_', '.', '@', '+' or '-' (and not only digits): ${JSON.stringify(username)}`, { field: 'username' });
  }
  return username;
}

export function validateEmail(email: string | null | undefined): string | null | undefined {
  if (email === undefined || email === null || email === '') return email === '' ? null : email;
  if (email.length > 255 || !/^[^\s@]+@[^\s@]+$/.test(email)) throw new InvalidError(`'email' is not an email address: ${JSON.stringify(email)}`, { field: 'email' });
  return email;
}

/** Password policy (Devise's default length bounds) and the confirmation, when one is given. */
export function validatePassword(password: string, confirmation?: string): string {
  if (password.length < 8 || password.length > 128) throw new InvalidError("'password' must be 8 to 128 characters long", { field: 'password' });
  if (confirmation !== undefined && confirmation !== password) throw new InvalidError("'password_confirmation' does not match 'password'", { field: 'password_confirmation' });
  return password;
}

// operations ///////////////////////////////////////////////////////////////////////////////

export interface NewUser {
  username: string;
  email?: string | null;
  password?: string;
  password_confirmation?: string;
  is_admin?: boolean;
  is_locked?: boolean;
}

/**
 * Creates a user. Without a password the user exists but cannot sign in until one is set.
 * Hashing happens before any statement: a scrypt inside a transaction would hold SQLite's
 * single connection for its whole duration.
 */
export async function createUser(db: DB, u: NewUser): Promise<User> {
  const username = validateUsername(u.username);
  const email = validateEmail(u.email);
  let password_hash: string | null = null;
  let digest_ha1: string | null = null;
  if (u.password !== undefined) {
    const pw = validatePassword(u.password, u.password_confirmation);
    password_hash = await hashPassword(pw);
    digest_ha1 = digestHa1(username, pw);
  } else if (u.password_confirmation !== undefined) {
    throw new InvalidError("'password' is required with 'password_confirmation'", { field: 'password' });
  }
  return insertUser(db, { username, email, password_hash, digest_ha1, is_admin: u.is_admin, is_locked: u.is_locked });
}

export interface UserPatch {
  username?: string;
  email?: string | null;
  is_admin?: boolean;
  is_locked?: boolean;
}

/** Changes a user's fields, refusing any change that would leave no admin able to sign in. */
export async function changeUser(db: DB, key: number | string, p: UserPatch): Promise<User> {
  if (p.username !== undefined) validateUsername(p.username);
  const email = p.email === undefined ? undefined : (validateEmail(p.email) ?? null);
  return db.transaction().execute(async (tx) => {
    const u = await requireUser(tx, key);
    const patch: UserRowPatch = {};
    if (p.username !== undefined && p.username !== u.username) {
      patch.username = p.username;
      patch.digest_ha1 = null; // HA1 is bound to the username; the next password login restores it
    }
    if (email !== undefined) patch.email = email;
    if (p.is_admin !== undefined) patch.is_admin = p.is_admin;
    if (p.is_locked !== undefined) patch.is_locked = p.is_locked;
    if (u.is_admin && !u.is_locked && (p.is_admin === false || p.is_locked === true)) {
      await keepAnAdmin(tx, u, p.is_admin === false ? 'remove the admin flag of' : 'lock');
    }
    if (Object.keys(patch).length) await updateUser(tx, u.id, patch);
    return requireUser(tx, u.id);
  });
}

/** Sets a user's password (and with it the Digest HA1). */
export async function setPassword(db: DB, key: number | string, password: string, confirmation?: string): Promise<User> {
  const pw = validatePassword(password, confirmation);
  const u = await requireUser(db, key);
  const password_hash = await hashPassword(pw);
  await updateUser(db, u.id, { password_hash, digest_ha1: digestHa1(u.username, pw) });
  return requireUser(db, u.id);
}

/** Deletes a user (with tokens and sessions), refusing to delete the last admin who can sign in. */
export async function removeUser(db: DB, key: number | string): Promise<User> {
  return db.transaction().execute(async (tx) => {
    const u = await requireUser(tx, key);
    await keepAnAdmin(tx, u, 'delete');
    await deleteUser(tx, u.id);
    return u;
  });
}

/** Refuses (409) when `u` is the last admin who can sign in. */
export async function keepAnAdmin(tx: Tx, u: User, what: string): Promise<void> {
  if (u.is_admin && !u.is_locked && (await countActiveAdmins(tx)) <= 1) {
    throw new ConflictError(`cannot ${what} '${u.username}': it is the last unlocked admin; make another user admin first`, { user: u.username });
  }
}

// seeding //////////////////////////////////////////////////////////////////////////////////

export interface SeedOptions {
  /** development/test mode: `crowbar`/`crowbar` and `developer`/`Cr0wbar!`, both admin */
  dev: boolean;
  /** the `crowbar` user's first password (CROWBAR_ADMIN_PASSWORD); generated and logged when absent outside dev */
  adminPassword?: string;
  log: Logger;
}

/**
 * Seeds the users the original tooling expects. Existing users are never touched (a changed
 * password stays changed). Outside dev, `crowbar` gets CROWBAR_ADMIN_PASSWORD or a generated
 * password that is logged once, by the server that created the user.
 */
export async function seedUsers(db: DB, o: SeedOptions): Promise<void> {
  const seed = async (username: string, password: string, ln: number) =>
    insertUserIfMissing(db, { username, password_hash: await hashPassword(password, ln), digest_ha1: digestHa1(username, password), is_admin: true });
  const generated = !o.dev && o.adminPassword === undefined;
  const crowbarPassword = o.adminPassword ?? (o.dev ? 'crowbar' : randomBytes(18).toString('base64url'));
  // skip the hashing when the users exist already (every start after the first); crowbar first, so it gets the lower id
  const missing = async (name: string) => !(await userCredentials(db, { username: name }));
  if (await missing('crowbar')) {
    const created = await seed('crowbar', crowbarPassword, o.dev && o.adminPassword === undefined ? DEV_LN : DEFAULT_LN);
    if (created && generated) {
      o.log.warn({ username: 'crowbar' }, `created admin user 'crowbar' with the generated password ${crowbarPassword} — it is shown only this once; change it with PUT /api/v2/users/crowbar/reset_password (or set CROWBAR_ADMIN_PASSWORD before the first start)`);
    } else if (created) {
      o.log.info({ username: 'crowbar' }, "created admin user 'crowbar'");
    }
  }
  if (o.dev && (await missing('developer'))) await seed('developer', 'Cr0wbar!', DEV_LN);
}
