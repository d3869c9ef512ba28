/**
 * /api/v2/users (spec §11.2): CRUD + sample/match by id or username, admin and lock flags,
 * password reset, and per-user bearer API tokens. Users and their tokens are visible to every
 * authenticated user; creating, deleting, flagging and locking users takes an admin; a user may
 * change their own email and password and manage their own tokens. No change may leave the
 * system without an unlocked admin (409).
 */
import type { FastifyRequest } from 'fastify';
import type { RoutePlugin } from '../app.js';
import { body, key, optBool, optString, reqString, send, sendDeleted, sendList, sendObj, type Body } from '../wire.js';
import { userJson } from '../serializers.js';
import { currentUser, parseCookies, requireAdmin, requireSelfOrAdmin, SESSION_COOKIE } from '../auth.js';
import { changeUser, createUser, removeUser, setPassword, validatePassword } from '../../engine/users.js';
import {
  createApiToken, deleteApiToken, deleteUserSessions, listApiTokens, listUsers, requireUser, USER_PUBLIC_COLUMNS,
  type ApiToken,
} from '../../store/users.js';
import { InvalidError } from '../../domain/errors.js';

/** A body whose fields may also come wrapped as `{user: {...}}` (Rails form style). */
export function wrappedBody(req: FastifyRequest, wrapper: string): Body {
  const b = patchBody(req);
  const inner = b[wrapper];
  return inner && typeof inner === 'object' && !Array.isArray(inner) ? { ...b, ...(inner as Body) } : b;
}

/** A PUT/PATCH body: an object, or an RFC 6902 array of add/replace/remove ops on top-level keys. */
export function patchBody(req: FastifyRequest): Body {
  if (!Array.isArray(req.body)) return body(req);
  const out: Body = {};
  for (const op of req.body as unknown[]) {
    const o = (op ?? {}) as { op?: unknown; path?: unknown; value?: unknown };
    const path = typeof o.path === 'string' ? o.path : '';
    if (!/^\/[^/]+$/.test(path)) throw new InvalidError(`JSON Patch path ${JSON.stringify(o.path)} must name one top-level key, like "/description"`, { field: 'path' });
    const field = path.slice(1).replace(/~1/g, '/').replace(/~0/g, '~');
    if (o.op === 'add' || o.op === 'replace') out[field] = o.value;
    else if (o.op === 'remove') out[field] = null;
    else if (o.op !== 'test') throw new InvalidError(`JSON Patch op ${JSON.stringify(o.op)} is not supported here (add, replace, remove, test)`, { field: 'op' });
  }
  return out;
}

type ColumnKind = 'int' | 'bool' | 'string';

/** `POST /x/match`: an equality filter on known columns, scalars coerced like every body. */
export function matchFilter(b: Body, columns: Record<string, ColumnKind>): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {};
  for (const k of Object.keys(b)) {
    const kind = columns[k];
    if (!kind) throw new InvalidError(`cannot match on '${k}'; known keys: ${Object.keys(columns).join(', ')}`, { field: k });
    if (b[k] === null) out[k] = null;
    else if (kind === 'bool') out[k] = optBool(b, k) ? 1 : 0;
    else if (kind === 'int') {
      const v = b[k];
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
      if (!Number.isInteger(n)) throw new InvalidError(`'${k}' must be an integer, not ${JSON.stringify(v)}`, { field: k });
      out[k] = n;
    } else out[k] = optString(b, k)!;
  }
  return out;
}

const USER_COLUMNS: Record<(typeof USER_PUBLIC_COLUMNS)[number], ColumnKind> = {
  id: 'int', username: 'string', email: 'string', is_admin: 'bool', is_locked: 'bool', created_at: 'string', updated_at: 'string',
};

function tokenJson(t: ApiToken) {
  return { id: t.id, user_id: t.user_id, name: t.name, created_at: t.created_at, last_used_at: t.last_used_at };
}

/** `email` may be cleared with null or "". */
function optEmail(b: Body): string | null | undefined {
  if (b.email === null) return null;
  return optString(b, 'email');
}

export const usersRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'user';
  const db = engine.db;
  const one = (k: string) => requireUser(db, key(k));
  const ownCookie = (req: FastifyRequest) => (req.authMethod === 'session' ? parseCookies(req.headers.cookie)[SESSION_COOKIE] : undefined);

  app.get('/api/v2/users', async (_req, reply) => sendList(reply, T, (await listUsers(db)).map(userJson)));

  app.get('/api/v2/users/sample', async (_req, reply) => send(reply, T, 'obj', { username: '', email: null, is_admin: false, is_locked: false }));

  app.post('/api/v2/users/match', async (req, reply) => sendList(reply, T, (await listUsers(db, matchFilter(wrappedBody(req, 'user'), USER_COLUMNS))).map(userJson)));

  app.get<{ Params: { id: string } }>('/api/v2/users/:id', async (req, reply) => sendObj(reply, T, userJson(await one(req.params.id))));

  app.post('/api/v2/users', async (req, reply) => {
    requireAdmin(req, 'create users');
    const b = wrappedBody(req, 'user');
    const u = await createUser(db, {
      username: reqString(b, 'username'),
      email: optEmail(b),
      password: optString(b, 'password'),
      password_confirmation: optString(b, 'password_confirmation'),
      is_admin: optBool(b, 'is_admin'),
      is_locked: optBool(b, 'is_locked'),
    });
    return sendObj(reply, T, userJson(u));
  });

  for (const method of ['put', 'patch'] as const) {
    app[method]<{ Params: { id: string } }>('/api/v2/users/:id', async (req, reply) => {
      const u = await one(req.params.id);
      requireSelfOrAdmin(req, u.id, `change user '${u.username}'`);
      const b = wrappedBody(req, 'user');
      const is_admin = optBool(b, 'is_admin');
      const is_locked = optBool(b, 'is_locked');
      if ((is_admin !== undefined && is_admin !== u.is_admin) || (is_locked !== undefined && is_locked !== u.is_locked)) {
        requireAdmin(req, 'change the admin or lock flags');
      }
      const password = optString(b, 'password');
      // validate everything before the first write: no half-applied change
      if (password !== undefined) validatePassword(password, optString(b, 'password_confirmation'));
      let out = await changeUser(db, u.id, { username: optString(b, 'username'), email: optEmail(b), is_admin, is_locked });
      if (password !== undefined) {
        out = await setPassword(db, u.id, password, optString(b, 'password_confirmation'));
        await deleteUserSessions(db, u.id, ownCookie(req));
      }
      if (is_locked) await deleteUserSessions(db, u.id);
      return sendObj(reply, T, userJson(out));
    });
  }

  app.delete<{ Params: { id: string } }>('/api/v2/users/:id', async (req, reply) => {
    requireAdmin(req, 'delete users');
    const u = await removeUser(db, key(req.params.id));
    return sendDeleted(reply, T, `user ${u.username}`);
  });

  for (const [flag, field] of [['admin', 'is_admin'], ['lock', 'is_locked']] as const) {
    app.post<{ Params: { id: string } }>(`/api/v2/users/:id/${flag}`, async (req, reply) => {
      requireAdmin(req, `${flag === 'admin' ? 'make users admin' : 'lock users'}`);
      const u = await changeUser(db, key(req.params.id), { [field]: true });
      if (field === 'is_locked') await deleteUserSessions(db, u.id);
      return sendObj(reply, T, userJson(u));
    });
    app.delete<{ Params: { id: string } }>(`/api/v2/users/:id/${flag}`, async (req, reply) => {
      requireAdmin(req, `${flag === 'admin' ? 'remove the admin flag' : 'unlock users'}`);
      return sendObj(reply, T, userJson(await changeUser(db, key(req.params.id), { [field]: false })));
    });
  }

  app.put<{ Params: { id: string } }>('/api/v2/users/:id/reset_password', async (req, reply) => {
    const u = await one(req.params.id);
    requireSelfOrAdmin(req, u.id, `reset the password of '${u.username}'`);
    const b = wrappedBody(req, 'user');
    const out = await setPassword(db, u.id, reqString(b, 'password'), reqString(b, 'password_confirmation'));
    // other sessions of this user end; the caller's own session (if it is theirs) survives
    await deleteUserSessions(db, u.id, currentUser(req).id === u.id ? ownCookie(req) : undefined);
    return sendObj(reply, T, userJson(out));
  });

  // the original's NaCl-encrypted password change protocol is not carried over
  app.get('/api/v2/users/:id/start_password_reset', async (_req, reply) =>
    send(reply, 'error', 'error', { message: 'start_password_reset is not implemented; use PUT /api/v2/users/:id/reset_password', status: 501 }, 501));
  app.post('/api/v2/users/:id/complete_password_reset', async (_req, reply) =>
    send(reply, 'error', 'error', { message: 'complete_password_reset is not implemented; use PUT /api/v2/users/:id/reset_password', status: 501 }, 501));

  // API tokens //////////////////////////////////////////////////////////////////////////
  const TT = 'api_token';

  app.get<{ Params: { id: string } }>('/api/v2/users/:id/tokens', async (req, reply) => {
    const u = await one(req.params.id);
    requireSelfOrAdmin(req, u.id, `list the API tokens of '${u.username}'`);
    return sendList(reply, TT, (await listApiTokens(db, u.id)).map(tokenJson));
  });

  app.post<{ Params: { id: string } }>('/api/v2/users/:id/tokens', async (req, reply) => {
    const u = await one(req.params.id);
    requireSelfOrAdmin(req, u.id, `create API tokens for '${u.username}'`);
    const name = optString(body(req), 'name') ?? '';
    if (name.length > 255) throw new InvalidError("'name' must be at most 255 characters", { field: 'name' });
    const { token, row } = await createApiToken(db, u.id, name);
    // the secret is shown this once; only its SHA-256 is stored
    return sendObj(reply, TT, { ...tokenJson(row), token });
  });

  app.delete<{ Params: { id: string; token_id: string } }>('/api/v2/users/:id/tokens/:token_id', async (req, reply) => {
    const u = await one(req.params.id);
    requireSelfOrAdmin(req, u.id, `revoke API tokens of '${u.username}'`);
    if (!/^\d+$/.test(req.params.token_id)) throw new InvalidError(`token id must be a number, not '${req.params.token_id}'`, { field: 'token_id' });
    const t = await deleteApiToken(db, u.id, Number(req.params.token_id));
    return sendDeleted(reply, TT, `API token ${t.id}${t.name ? ` (${t.name})` : ''}`);
  });
};
