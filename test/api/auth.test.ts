import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { basicAuth, startTestApi, type TestApi } from '../helpers/api.js';
import { makeNonce } from '../../src/api/auth.js';
import { authSecret } from '../../src/store/users.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const ERROR_TYPE = 'application/vnd.crowbar.error.error+json; version=2.0';
const CHALLENGE = /^Digest realm="Crowbar", qop="auth", algorithm=MD5, nonce="[A-Za-z0-9_-]+", opaque="[A-Za-z0-9_-]+"(, stale=true)?$/;

/** A WWW-Authenticate challenge's parameters (independent of the server's parser). */
function challengeParams(h: string | null | undefined): Record<string, string> {
  expect(h, 'a WWW-Authenticate header').toBeTruthy();
  const out: Record<string, string> = {};
  for (const m of String(h).replace(/^Digest\s+/, '').matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) out[m[1]!] = m[2] ?? m[3]!;
  return out;
}

interface DigestInput {
  method: string;
  uri: string;
  username: string;
  password: string;
  nonce: string;
  opaque?: string;
  nc?: number;
  /** false: RFC 2069 (no qop) */
  qop?: boolean;
  algorithm?: 'MD5' | 'MD5-sess';
  realm?: string;
}

/** A small Digest client: the Authorization header for one request. */
function digest(i: DigestInput): string {
  const realm = i.realm ?? 'Crowbar';
  const cnonce = md5(String(Math.random())).slice(0, 16);
  const nc = (i.nc ?? 1).toString(16).padStart(8, '0');
  let ha1 = md5(`${i.username}:${realm}:${i.password}`);
  if (i.algorithm === 'MD5-sess') ha1 = md5(`${ha1}:${i.nonce}:${cnonce}`);
  const ha2 = md5(`${i.method}:${i.uri}`);
  const qop = i.qop !== false;
  const response = qop ? md5(`${ha1}:${i.nonce}:${nc}:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${i.nonce}:${ha2}`);
  const parts = [`username="${i.username}"`, `realm="${realm}"`, `nonce="${i.nonce}"`, `uri="${i.uri}"`, `response="${response}"`];
  if (i.algorithm) parts.push(`algorithm=${i.algorithm}`);
  if (i.opaque) parts.push(`opaque="${i.opaque}"`);
  if (qop) parts.push('qop=auth', `nc=${nc}`, `cnonce="${cnonce}"`);
  return `Digest ${parts.join(', ')}`;
}

for (const dialect of storeDialects()) {
  describe(`authentication (${dialect})`, () => {
    let api: TestApi;
    let base: string;
    /** every raw response body seen, to prove no secret ever leaves */
    const seen: string[] = [];
    const http = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(base + path, { redirect: 'manual', ...init });
      const text = await res.text();
      seen.push(text, JSON.stringify([...res.headers.entries()].filter(([k]) => k !== 'set-cookie')));
      return { res, text, json: () => JSON.parse(text) };
    };
    /** a fresh challenge from the server */
    const challenge = async () => challengeParams((await http('/api/v2/deployments')).res.headers.get('www-authenticate'));

    beforeAll(async () => {
      api = await startTestApi(dialect, { anneal: false });
      await api.app.listen({ port: 0, host: '127.0.0.1' });
      const addr = api.app.server.address();
      base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
      const r = await api.call('POST', '/api/v2/users', { username: 'alice', password: 'alice-secret-1', password_confirmation: 'alice-secret-1', email: 'alice@example.com' });
      expect(r.status).toBe(200);
    });
    afterAll(async () => {
      await api?.cleanup();
    });

    it('answers every unauthenticated request with 401, a Digest challenge, a vendor type and a JSON body', async () => {
      for (const [method, path] of [['GET', '/api/v2/deployments'], ['DELETE', '/api/v2/deployments/system'], ['POST', '/api/v2/users'], ['PUT', '/api/v2/users/crowbar/reset_password'], ['GET', '/api/v2/no/such/route'], ['GET', '/api/v2/digest'], ['DELETE', '/my/users/sign_out'], ['GET', '/api/status/heartbeat']]) {
        const { res, text } = await http(path!, { method, ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{"username":"mallory"}' } : {}) });
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.headers.get('content-type')).toBe(ERROR_TYPE);
        expect(res.headers.get('www-authenticate')).toMatch(CHALLENGE);
        expect(res.headers.get('www-authenticate')).not.toMatch(/stale/);
        expect(JSON.parse(text)).toMatchObject({ status: 401, message: expect.stringMatching(/authentication required/) });
      }
      expect((await api.call('GET', '/api/v2/users', undefined, { auth: false })).status).toBe(401);
      expect((await api.call('GET', '/api/v2/users/mallory', undefined, { auth: false })).status).toBe(401);
      // nothing was written by the refused POST
      expect((await api.call('GET', '/api/v2/users/mallory')).status).toBe(404);
    });

    it('accepts HTTP Digest (qop=auth) over real HTTP, with a reused nonce and counter, query strings and encodings', async () => {
      const ch = await challenge();
      const get = (uri: string, path: string, nc: number, extra: Partial<DigestInput> = {}) =>
        http(path, { headers: { authorization: digest({ method: 'GET', uri, username: 'crowbar', password: 'crowbar', nonce: ch.nonce!, opaque: ch.opaque, nc, ...extra }) } });

      const ok = await get('/api/v2/deployments', '/api/v2/deployments', 1);
      expect(ok.res.status).toBe(200);
      expect(ok.json()[0].name).toBe('system');
      expect((await get('/api/v2/deployments/system?x=1', '/api/v2/deployments/system?x=1', 2)).res.status).toBe(200);
      // uri without the query string (some clients), percent-encoded, absolute form
      expect((await get('/api/v2/deployments/system', '/api/v2/deployments/system?y=2', 3)).res.status).toBe(200);
      expect((await get('/api/v2/deployments/%73ystem', '/api/v2/deployments/system', 4)).res.status).toBe(200);
      expect((await get(`${base}/api/v2/deployments/system`, '/api/v2/deployments/system', 5)).res.status).toBe(200);
      expect((await get('/api/v2/deployments', '/api/v2/deployments', 6, { algorithm: 'MD5-sess' })).res.status).toBe(200);
      // a uri for another resource is refused
      expect((await get('/api/v2/users', '/api/v2/deployments', 7)).res.status).toBe(401);

      // a replayed (nonce, nc) gets a fresh challenge marked stale
      const replay = await get('/api/v2/deployments', '/api/v2/deployments', 1);
      expect(replay.res.status).toBe(401);
      expect(replay.res.headers.get('www-authenticate')).toMatch(/, stale=true$/);
    });

    it('accepts RFC 2069 Digest (no qop), DELETE and POST with Digest, and refuses a wrong password or realm', async () => {
      const ch = await challenge();
      const r = await http('/api/v2/users', { headers: { authorization: digest({ method: 'GET', uri: '/api/v2/users', username: 'alice', password: 'alice-secret-1', nonce: ch.nonce!, qop: false }) } });
      expect(r.res.status).toBe(200);

      const post = await http('/api/v2/groups', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: digest({ method: 'POST', uri: '/api/v2/groups', username: 'crowbar', password: 'crowbar', nonce: ch.nonce!, nc: 1 }) },
        body: JSON.stringify({ name: 'digested' }),
      });
      expect(post.res.status).toBe(200);
      const del = await http('/api/v2/groups/digested', { method: 'DELETE', headers: { authorization: digest({ method: 'DELETE', uri: '/api/v2/groups/digested', username: 'crowbar', password: 'crowbar', nonce: ch.nonce!, nc: 2 }) } });
      expect(del.res.status).toBe(200);
      // the method is part of the response: a GET digest does not authorize a DELETE
      const wrongMethod = await http('/api/v2/groups/x', { method: 'DELETE', headers: { authorization: digest({ method: 'GET', uri: '/api/v2/groups/x', username: 'crowbar', password: 'crowbar', nonce: ch.nonce!, nc: 3 }) } });
      expect(wrongMethod.res.status).toBe(401);

      for (const bad of [{ password: 'wrong' }, { realm: 'Other' }, { username: 'nobody' }]) {
        const res = await http('/api/v2/users', { headers: { authorization: digest({ method: 'GET', uri: '/api/v2/users', username: 'crowbar', password: 'crowbar', nonce: ch.nonce!, nc: 9, ...bad }) } });
        expect(res.res.status, JSON.stringify(bad)).toBe(401);
        expect(res.res.headers.get('content-type')).toBe(ERROR_TYPE);
        expect(res.res.headers.get('www-authenticate')).toMatch(CHALLENGE);
        expect(res.res.headers.get('www-authenticate')).not.toMatch(/stale/);
      }
    });

    it('answers an expired nonce with a correct response by a challenge with stale=true, and a forged nonce without', async () => {
      const secret = await authSecret(api.cb.engine.db, 'digest-nonce');
      const old = makeNonce(secret, Date.now() - 10 * 60_000);
      const stale = await http('/api/v2/users', { headers: { authorization: digest({ method: 'GET', uri: '/api/v2/users', username: 'crowbar', password: 'crowbar', nonce: old }) } });
      expect(stale.res.status).toBe(401);
      const ch = challengeParams(stale.res.headers.get('www-authenticate'));
      expect(ch.stale).toBe('true');
      expect(ch.nonce).not.toBe(old);
      // the client retries with the new nonce without asking for the password again
      const retry = await http('/api/v2/users', { headers: { authorization: digest({ method: 'GET', uri: '/api/v2/users', username: 'crowbar', password: 'crowbar', nonce: ch.nonce! }) } });
      expect(retry.res.status).toBe(200);

      // an expired nonce with a wrong password is just refused
      const wrong = await http('/api/v2/users', { headers: { authorization: digest({ method: 'GET', uri: '/api/v2/users', username: 'crowbar', password: 'nope', nonce: old }) } });
      expect(wrong.res.headers.get('www-authenticate')).not.toMatch(/stale/);
      // a nonce signed with another key is refused
      const forged = makeNonce(Buffer.alloc(32, 7), Date.now());
      const f = await http('/api/v2/users', { headers: { authorization: digest({ method: 'GET', uri: '/api/v2/users', username: 'crowbar', password: 'crowbar', nonce: forged }) } });
      expect(f.res.status).toBe(401);
      expect(f.res.headers.get('www-authenticate')).not.toMatch(/stale/);
    });

    it('accepts HTTP Basic and refuses a wrong password or an unknown user', async () => {
      expect((await http('/api/v2/users', { headers: { authorization: basicAuth({ username: 'alice', password: 'alice-secret-1' }) } })).res.status).toBe(200);
      for (const c of [{ username: 'alice', password: 'alice-secret-2' }, { username: 'nobody', password: 'alice-secret-1' }, { username: 'alice', password: '' }]) {
        const r = await http('/api/v2/users', { headers: { authorization: basicAuth(c) } });
        expect(r.res.status).toBe(401);
        expect(r.res.headers.get('www-authenticate')).toMatch(CHALLENGE);
      }
      expect((await http('/api/v2/users', { headers: { authorization: 'Basic !!!' } })).res.status).toBe(401);
    });

    it('signs in with the form (urlencoded or JSON), then the cookie works until sign out', async () => {
      const form = await http('/my/users/sign_in');
      expect(form.res.status).toBe(200);
      expect(form.res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(form.text).toContain('name="user[password]"');

      const login = await http('/my/users/sign_in', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'utf8=%E2%9C%93&authenticity_token=x&user%5Busername%5D=alice&user%5Bpassword%5D=alice-secret-1&commit=Sign+in',
      });
      expect(login.res.status).toBe(200);
      expect(login.res.headers.get('content-type')).toBe('application/vnd.crowbar.user.obj+json; version=2.0');
      expect(login.json()).toMatchObject({ username: 'alice', is_admin: false });
      const setCookie = login.res.headers.get('set-cookie')!;
      expect(setCookie).toMatch(/^_crowbar_session=[A-Za-z0-9_-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
      const cookie = setCookie.split(';')[0]!;

      const me = await http('/api/v2/users/alice', { headers: { cookie: `other=1; ${cookie}` } });
      expect(me.res.status).toBe(200);
      expect(me.json().username).toBe('alice');
      // only a hash of the cookie is stored
      const rows = await api.cb.engine.db.selectFrom('sessions').select('token_hash').execute();
      expect(rows.some((r) => r.token_hash === cookie.split('=')[1])).toBe(false);

      const out = await http('/my/users/sign_out', { method: 'DELETE', headers: { cookie } });
      expect(out.res.status).toBe(200);
      expect(out.res.headers.get('content-type')).toBe('application/vnd.crowbar.user.empty+json; version=2.0');
      expect(out.res.headers.get('set-cookie')).toMatch(/^_crowbar_session=; .*Max-Age=0/);
      const after = await http('/api/v2/users/alice', { headers: { cookie } });
      expect(after.res.status).toBe(401);
      expect(after.res.headers.get('www-authenticate')).toMatch(CHALLENGE);

      const json = await http('/my/users/sign_in', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: { username: 'crowbar', password: 'crowbar' } }) });
      expect(json.res.status).toBe(200);
      expect((await http('/api/v2/deployments', { headers: { cookie: json.res.headers.get('set-cookie')!.split(';')[0]! } })).res.status).toBe(200);

      // a browser posting the form is sent home
      const browser = await http('/my/users/sign_in', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html,application/xhtml+xml,*/*;q=0.8' }, body: 'user[username]=crowbar&user[password]=crowbar' });
      expect(browser.res.status).toBe(302);
      expect(browser.res.headers.get('location')).toBe('/');
      expect(browser.res.headers.get('set-cookie')).toMatch(/^_crowbar_session=/);
    });

    it('refuses a form login with a wrong password (401 + challenge) or without fields (422 naming the field)', async () => {
      const bad = await http('/my/users/sign_in', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'user[username]=alice&user[password]=nope' });
      expect(bad.res.status).toBe(401);
      expect(bad.res.headers.get('www-authenticate')).toMatch(CHALLENGE);
      expect(bad.res.headers.get('set-cookie')).toBeNull();
      const missing = await http('/my/users/sign_in', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: { username: 'alice' } }) });
      expect(missing.res.status).toBe(422);
      expect(missing.json().message).toMatch(/user\[password\]/);
      expect((await http('/api/v2/users', { headers: { cookie: '_crowbar_session=made-up' } })).res.status).toBe(401);
    });

    it('accepts bearer API tokens until they are revoked; the secret is shown once and stored hashed', async () => {
      const c = await api.call('POST', '/api/v2/users/alice/tokens', { name: 'ci' });
      expect(c.status).toBe(200);
      expect(c.type).toBe('application/vnd.crowbar.api_token.obj+json; version=2.0');
      expect(Object.keys(c.body).sort()).toEqual(['created_at', 'id', 'last_used_at', 'name', 'token', 'user_id']);
      expect(c.body.token).toMatch(/^crowbar_[A-Za-z0-9_-]{40,}$/);
      const token: string = c.body.token;

      const use = await http('/api/v2/users/alice', { headers: { authorization: `Bearer ${token}` } });
      expect(use.res.status).toBe(200);
      const list = await api.call('GET', '/api/v2/users/alice/tokens');
      expect(list.type).toBe('application/vnd.crowbar.api_token.list+json; version=2.0');
      expect(list.body).toHaveLength(1);
      expect(Object.keys(list.body[0]).sort()).toEqual(['created_at', 'id', 'last_used_at', 'name', 'user_id']);
      expect(list.body[0].last_used_at).toEqual(expect.any(String));
      expect(list.raw).not.toContain(token);
      const stored = await api.cb.engine.db.selectFrom('api_tokens').select('token_hash').execute();
      expect(stored[0]!.token_hash).toBe(createHash('sha256').update(token).digest('hex'));

      for (const wrong of [`${token}x`, 'crowbar_nope', token.replace('crowbar_', 'other_')]) {
        expect((await http('/api/v2/users', { headers: { authorization: `Bearer ${wrong}` } })).res.status).toBe(401);
      }
      const del = await api.call('DELETE', `/api/v2/users/alice/tokens/${c.body.id}`);
      expect(del.status).toBe(200);
      expect(del.type).toBe('application/vnd.crowbar.api_token.empty+json; version=2.0');
      const after = await http('/api/v2/users', { headers: { authorization: `Bearer ${token}` } });
      expect(after.res.status).toBe(401);
      expect(after.res.headers.get('www-authenticate')).toMatch(CHALLENGE);
    });

    it('refuses a locked user by all four methods, and lets them in again once unlocked', async () => {
      const pw = 'locky-secret-1';
      expect((await api.call('POST', '/api/v2/users', { username: 'locky', password: pw, password_confirmation: pw })).status).toBe(200);
      const token = (await api.call('POST', '/api/v2/users/locky/tokens', { name: 't' })).body.token as string;
      const login = async () => http('/my/users/sign_in', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: { username: 'locky', password: pw } }) });
      const cookie = (await login()).res.headers.get('set-cookie')!.split(';')[0]!;
      const ways = async () => {
        const ch = await challenge();
        return Promise.all([
          http('/api/v2/users', { headers: { authorization: digest({ method: 'GET', uri: '/api/v2/users', username: 'locky', password: pw, nonce: ch.nonce! }) } }),
          http('/api/v2/users', { headers: { authorization: basicAuth({ username: 'locky', password: pw }) } }),
          http('/api/v2/users', { headers: { cookie } }),
          http('/api/v2/users', { headers: { authorization: `Bearer ${token}` } }),
        ]).then((rs) => rs.map((r) => r.res.status));
      };
      expect(await ways()).toEqual([200, 200, 200, 200]);

      const lock = await api.call('POST', '/api/v2/users/locky/lock');
      expect(lock.status).toBe(200);
      expect(lock.body.is_locked).toBe(true);
      expect(await ways()).toEqual([401, 401, 401, 401]);
      const relogin = await login();
      expect(relogin.res.status).toBe(401);
      expect(relogin.res.headers.get('set-cookie')).toBeNull();

      expect((await api.call('DELETE', '/api/v2/users/locky/lock')).body.is_locked).toBe(false);
      const s = await ways();
      expect(s.slice(0, 2)).toEqual([200, 200]);
      expect(s[2]).toBe(401); // locking ended the sessions
      expect(s[3]).toBe(200); // tokens survive a lock (they are revoked explicitly)
    });

    it('GET /api/v2/digest says success once authenticated, and a Digest login there starts a session', async () => {
      const ch = await challenge();
      const r = await http('/api/v2/digest', { headers: { authorization: digest({ method: 'GET', uri: '/api/v2/digest', username: 'crowbar', password: 'crowbar', nonce: ch.nonce! }) } });
      expect(r.res.status).toBe(200);
      expect(r.json()).toEqual({ message: 'success', username: 'crowbar' });
      const cookie = r.res.headers.get('set-cookie')!.split(';')[0]!;
      expect((await http('/api/v2/digest', { headers: { cookie } })).json().username).toBe('crowbar');
    });

    it('never sends a password, password hash or HA1 in any response', async () => {
      const rows = await api.cb.engine.db.selectFrom('users').select(['password_hash', 'digest_ha1']).execute();
      const all = seen.join('\n');
      for (const secret of ['alice-secret-1', 'locky-secret-1', 'Cr0wbar!', '$scrypt$', ...rows.flatMap((r) => [r.password_hash!, r.digest_ha1!])]) {
        expect(all).not.toContain(secret);
      }
      expect(all).not.toMatch(/password_hash|digest_ha1|token_hash/);
    });
  });
}
