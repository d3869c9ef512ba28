/**
 * Authentication for every route but the login form. Four ways in, all checked against the
 * users table, and a locked user gets in by none of them:
 *
 * 1. HTTP Digest, realm `Crowbar`, MD5 (and MD5-sess), qop=auth or none (RFC 2069), with
 *    stateless nonces: base64url("<issued ms>:<HMAC(server secret, issued)>"). The secret lives
 *    in the database, so every server on one PostgreSQL accepts every other's nonces. A nonce
 *    older than NONCE_TTL_MS with a correct response gets a fresh challenge with `stale=true`
 *    (clients retry without asking for the password again). A (nonce, nc) pair seen before is
 *    refused the same way; RFC 2069 requests carry no counter, so within a nonce's lifetime
 *    they can be replayed — the price of serving old clients. Tolerated client quirks: quoted or
 *    bare parameter values, `uri` differing from the request only by query string,
 *    percent-encoding or scheme://host, qop sent as `"auth"`, algorithm omitted.
 * 2. HTTP Basic (what the Python cb2_api client sends).
 * 3. A session cookie (`_crowbar_session`, HttpOnly, SameSite=Strict) from the form login
 *    `POST /my/users/sign_in` (`user[username]`, `user[password]`; form or JSON body), ended by
 *    `DELETE /my/users/sign_out`. A successful Digest or Basic `GET /api/v2/digest` also starts
 *    a session, as the original's did.
 * 4. Bearer API tokens (`Authorization: Bearer crowbar_…`), see routes/users.ts.
 *
 * Every unauthenticated request gets 401 with a Digest challenge and a vendor-typed JSON body.
 * The user is on `req.user` (and how they came in on `req.authMethod`). A route opts out of
 * authentication with `config: { public: true }` — only the login form does.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from './app.js';
import { send } from './wire.js';
import { userJson } from './serializers.js';
import { PasswordChecker, REALM } from '../engine/users.js';
import {
  authSecret, createSession, deleteSession, findApiToken, findSession, purgeExpiredSessions, touchApiToken, userCredentials,
  TOKEN_PREFIX, type User,
} from '../store/users.js';

export type AuthMethod = 'digest' | 'basic' | 'session' | 'token';

declare module 'fastify' {
  interface FastifyRequest {
    /** the authenticated user; null only on public routes */
    user: User | null;
    authMethod: AuthMethod | null;
  }
  interface FastifyContextConfig {
    /** reachable without authentication (the login form only) */
    public?: boolean;
  }
}

export const SESSION_COOKIE = '_crowbar_session';
export const NONCE_TTL_MS = 5 * 60_000;
export const SESSION_TTL_MS = 24 * 3600_000;
const TOKEN_TOUCH_MS = 60_000;

/** 403 for an authenticated user who may not do this. */
export class ForbiddenError extends Error {
  readonly statusCode = 403;
}

/** The authenticated user (throws on a public route, where there may be none). */
export function currentUser(req: FastifyRequest): User {
  if (!req.user) throw Object.assign(new Error('authentication required'), { statusCode: 401 });
  return req.user;
}

export function requireAdmin(req: FastifyRequest, what: string): User {
  const u = currentUser(req);
  if (!u.is_admin) throw new ForbiddenError(`only an admin may ${what}; '${u.username}' is not one`);
  return u;
}

export function requireSelfOrAdmin(req: FastifyRequest, userId: number, what: string): User {
  const u = currentUser(req);
  if (u.id !== userId && !u.is_admin) throw new ForbiddenError(`only the user themself or an admin may ${what}`);
  return u;
}

// Digest primitives //////////////////////////////////////////////////////////////////////

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const hmac = (secret: Buffer, s: string) => createHmac('sha256', secret).update(s).digest('base64url');

/** A nonce issued at `issuedMs`; verifiable by any server that has `secret`. */
export function makeNonce(secret: Buffer, issuedMs: number): string {
  return Buffer.from(`${issuedMs}:${hmac(secret, `nonce:${issuedMs}`).slice(0, 32)}`).toString('base64url');
}

/** The issue time of a nonce this server family made, or undefined for anything else. */
export function nonceIssuedAt(secret: Buffer, nonce: string): number | undefined {
  const [ts, mac] = Buffer.from(nonce, 'base64url').toString().split(':');
  if (!ts || !mac || !/^\d{1,15}$/.test(ts)) return undefined;
  const want = Buffer.from(hmac(secret, `nonce:${ts}`).slice(0, 32));
  const got = Buffer.from(mac);
  return got.length === want.length && timingSafeEqual(got, want) ? Number(ts) : undefined;
}

/** `key=value, key="quoted \"value\""` → lower-cased keys, unquoted values. */
export function parseAuthParams(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
  return out;
}

/** Digest `uri` vs the request target: equal up to query string, percent-encoding or an absolute form. */
export function digestUriMatches(digestUri: string, requestUrl: string): boolean {
  if (digestUri === requestUrl) return true;
  let d = digestUri;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(d)) {
    try {
      const u = new URL(d);
      d = u.pathname + u.search;
    } catch {
      return false;
    }
  }
  const norm = (x: string) => {
    const path = x.split('?')[0]!;
    try {
      return decodeURIComponent(path);
    } catch {
      return path;
    }
  };
  return d === requestUrl || norm(d) === norm(requestUrl);
}

const safeEqualHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a.toLowerCase()), Buffer.from(b.toLowerCase()));

/** Remembers (nonce, nc) pairs so a captured qop=auth request cannot be replayed. */
class NonceCounts {
  private readonly seen = new Map<string, Set<string>>();
  /** false if this pair was seen before */
  use(nonce: string, nc: string): boolean {
    let s = this.seen.get(nonce);
    if (!s) {
      if (this.seen.size >= 10_000) this.seen.delete(this.seen.keys().next().value!);
      s = new Set();
      this.seen.set(nonce, s);
    }
    const n = nc.toLowerCase();
    if (s.has(n)) return false;
    if (s.size < 100_000) s.add(n);
    return true;
  }
}

// the hook ///////////////////////////////////////////////////////////////////////////////

type Outcome = { user: User; method: AuthMethod } | { fail: string; stale?: boolean; presented: boolean };

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export async function registerAuth(app: FastifyInstance, { engine }: ApiDeps): Promise<void> {
  const db = engine.db;
  const passwords = new PasswordChecker(db);
  const counts = new NonceCounts();
  let secretP: Promise<Buffer> | undefined;
  const secret = () => (secretP ??= authSecret(db, 'digest-nonce').catch((e) => {
    secretP = undefined;
    throw e;
  }));

  const challenge = async (stale: boolean) => {
    const s = await secret();
    return `Digest realm="${REALM}", qop="auth", algorithm=MD5, nonce="${makeNonce(s, Date.now())}", opaque="${hmac(s, 'opaque').slice(0, 32)}"${stale ? ', stale=true' : ''}`;
  };

  const unauthorized = async (reply: FastifyReply, message: string, stale = false) => {
    reply.header('www-authenticate', await challenge(stale));
    return send(reply, 'error', 'error', { message, status: 401 }, 401);
  };

  const usable = (u: User | undefined, method: AuthMethod): Outcome =>
    !u ? { fail: 'invalid credentials', presented: true }
      : u.is_locked ? { fail: `user '${u.username}' is locked`, presented: true }
        : { user: u, method };

  async function digest(req: FastifyRequest, p: Record<string, string>): Promise<Outcome> {
    const { username, realm, nonce, uri, response } = p;
    const algorithm = (p.algorithm ?? 'MD5').toUpperCase();
    const qop = p.qop?.toLowerCase();
    if (!username || !nonce || !uri || !response) return { fail: 'Digest credentials need username, nonce, uri and response', presented: true };
    if (realm !== REALM) return { fail: `Digest realm must be '${REALM}'`, presented: true };
    if (algorithm !== 'MD5' && algorithm !== 'MD5-SESS') return { fail: `Digest algorithm ${algorithm} is not supported; use MD5`, presented: true };
    if (qop !== undefined && qop !== 'auth') return { fail: `Digest qop ${qop} is not supported; use auth`, presented: true };
    if (qop && (!p.nc || !p.cnonce)) return { fail: 'Digest qop=auth needs nc and cnonce', presented: true };
    if (algorithm === 'MD5-SESS' && !p.cnonce) return { fail: 'Digest MD5-sess needs cnonce', presented: true };
    if (!digestUriMatches(uri, req.url)) return { fail: 'Digest uri does not match the request', presented: true };
    const issued = nonceIssuedAt(await secret(), nonce);
    if (issued === undefined) return { fail: 'unknown Digest nonce', stale: false, presented: true };
    const creds = await userCredentials(db, { username });
    if (!creds?.digest_ha1) return { fail: 'invalid credentials', presented: true };
    const ha1 = algorithm === 'MD5-SESS' ? md5(`${creds.digest_ha1}:${nonce}:${p.cnonce}`) : creds.digest_ha1;
    const ha2 = md5(`${req.method}:${uri}`);
    const want = qop ? md5(`${ha1}:${nonce}:${p.nc}:${p.cnonce}:${qop}:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
    if (!safeEqualHex(response, want)) return { fail: 'invalid credentials', presented: true };
    const age = Date.now() - issued;
    if (age > NONCE_TTL_MS || age < -60_000) return { fail: 'the Digest nonce is stale; retry with the new one', stale: true, presented: true };
    if (qop && !counts.use(`${username}\0${nonce}`, p.nc!)) return { fail: 'this Digest nonce count was used already; retry with the new nonce', stale: true, presented: true };
    const { password_hash: _p, digest_ha1: _d, ...user } = creds;
    return usable(user, 'digest');
  }

  async function basic(encoded: string): Promise<Outcome> {
    const text = Buffer.from(encoded.trim(), 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i < 0) return { fail: 'malformed Basic credentials', presented: true };
    const creds = await passwords.check(text.slice(0, i), text.slice(i + 1));
    if (!creds) return { fail: 'invalid credentials', presented: true };
    const { password_hash: _p, digest_ha1: _d, ...user } = creds;
    return usable(user, 'basic');
  }

  async function bearer(token: string): Promise<Outcome> {
    if (!token.startsWith(TOKEN_PREFIX)) return { fail: 'invalid API token', presented: true };
    const found = await findApiToken(db, token);
    if (!found) return { fail: 'invalid API token', presented: true };
    const last = found.token.last_used_at ? Date.parse(found.token.last_used_at) : 0;
    if (Date.now() - last > TOKEN_TOUCH_MS) await touchApiToken(db, found.token.id);
    return usable(found.user, 'token');
  }

  async function authenticate(req: FastifyRequest): Promise<Outcome> {
    const header = req.headers.authorization;
    if (header) {
      const sp = header.indexOf(' ');
      const scheme = (sp < 0 ? header : header.slice(0, sp)).toLowerCase();
      const rest = sp < 0 ? '' : header.slice(sp + 1);
      if (scheme === 'digest') return digest(req, parseAuthParams(rest));
      if (scheme === 'basic') return basic(rest);
      if (scheme === 'bearer') return bearer(rest.trim());
    }
    const cookie = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (cookie) {
      const s = await findSession(db, cookie);
      return s ? usable(s.user, 'session') : { fail: 'the session has expired or was ended; sign in again', presented: true };
    }
    return {
      fail: `authentication required: HTTP Digest (realm ${REALM}), Basic, a session from POST /my/users/sign_in, or an API token (Authorization: Bearer)`,
      presented: false,
    };
  }

  app.decorateRequest('user', null);
  app.decorateRequest('authMethod', null);

  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public) return;
    const r = await authenticate(req);
    if ('user' in r) {
      req.user = r.user;
      req.authMethod = r.method;
      return;
    }
    if (r.presented) req.log.info({ method: req.method, url: req.url, reason: r.fail }, 'authentication failed');
    return unauthorized(reply, r.fail, r.stale);
  });

  // form bodies (the login form, and any client that posts forms) ///////////////////////
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, text, done) => done(null, parseForm(String(text))));
  }

  // login, logout, digest check ///////////////////////////////////////////////////////////
  const cookieFor = (req: FastifyRequest, value: string, maxAgeS: number) =>
    `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${req.protocol === 'https' ? '; Secure' : ''}`;

  const startSession = async (req: FastifyRequest, reply: FastifyReply, u: User) => {
    const s = await createSession(db, u.id, SESSION_TTL_MS);
    reply.header('set-cookie', cookieFor(req, s.secret, Math.floor(SESSION_TTL_MS / 1000)));
  };

  app.get('/my/users/sign_in', { config: { public: true } }, async (_req, reply) =>
    reply.code(200).header('content-type', 'text/html; charset=utf-8').send(SIGN_IN_FORM));

  app.post('/my/users/sign_in', { config: { public: true } }, async (req, reply) => {
    const b = (req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? req.body : {}) as Record<string, unknown>;
    const nested = (b.user && typeof b.user === 'object' ? b.user : {}) as Record<string, unknown>;
    const username = nested.username ?? b.username;
    const password = nested.password ?? b.password;
    if (typeof username !== 'string' || username === '') return send(reply, 'error', 'error', { message: "'user[username]' is required", status: 422, details: { field: 'user[username]' } }, 422);
    if (typeof password !== 'string' || password === '') return send(reply, 'error', 'error', { message: "'user[password]' is required", status: 422, details: { field: 'user[password]' } }, 422);
    const creds = await passwords.check(username, password);
    if (!creds || creds.is_locked) {
      req.log.info({ username, reason: creds ? 'locked' : 'invalid credentials' }, 'sign in refused');
      return unauthorized(reply, creds ? `user '${username}' is locked` : 'invalid username or password');
    }
    await purgeExpiredSessions(db);
    const { password_hash: _p, digest_ha1: _d, ...user } = creds;
    await startSession(req, reply, user);
    // a browser posting the HTML form goes home, as Devise did; API clients get the user
    const accept = String(req.headers.accept ?? '');
    if (accept.includes('text/html') && !accept.includes('json')) {
      reply.header('location', '/');
      return send(reply, 'user', 'empty', { message: `signed in as ${user.username}` }, 302);
    }
    return send(reply, 'user', 'obj', userJson(user));
  });

  app.delete('/my/users/sign_out', async (req, reply) => {
    const cookie = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (cookie) await deleteSession(db, cookie);
    reply.header('set-cookie', cookieFor(req, '', 0));
    return send(reply, 'user', 'empty', { message: `signed out ${currentUser(req).username}` });
  });

  app.get('/api/v2/digest', async (req, reply) => {
    const u = currentUser(req);
    if (req.authMethod === 'digest' || req.authMethod === 'basic') await startSession(req, reply, u);
    return send(reply, 'user', 'obj', { message: 'success', username: u.username });
  });
}

/** `user[username]=a&user[password]=b` → `{ user: { username: 'a', password: 'b' } }`; `a[]=1&a[]=2` → arrays. */
export function parseForm(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [rawKey, value] of new URLSearchParams(text)) {
    const parts = rawKey.replace(/\]/g, '').split('[');
    if (parts.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) continue;
    const isArray = parts.length > 1 && parts[parts.length - 1] === '';
    if (isArray) parts.pop();
    const last = parts.pop()!;
    let o = out;
    for (const k of parts) {
      if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) o[k] = {};
      o = o[k] as Record<string, unknown>;
    }
    o[last] = isArray ? [...(Array.isArray(o[last]) ? (o[last] as unknown[]) : []), value] : value;
  }
  return out;
}

const SIGN_IN_FORM = `<!doctype html>
<html><head><meta charset="utf-8"><title>Crowbar: sign in</title></head>
<body>
<h1>Sign in to Crowbar</h1>
<form method="post" action="/my/users/sign_in">
<p><label>Username <input name="user[username]" autocomplete="username" required autofocus></label></p>
<p><label>Password <input name="user[password]" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Sign in</button></p>
</form>
</body></html>
`;
