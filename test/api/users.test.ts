import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { openTestStore, storeDialects } from '../helpers/stores.js';
import { startTestApi, type Credentials, type TestApi } from '../helpers/api.js';
import { seedUsers, verifyPassword } from '../../src/engine/users.js';
import { userCredentials } from '../../src/store/users.js';

const USER_KEYS = ['created_at', 'email', 'id', 'is_admin', 'is_locked', 'updated_at', 'username'];
const GROUP_KEYS = ['category', 'created_at', 'description', 'id', 'name', 'order', 'updated_at'];
const ct = (type: string, form: string) => `application/vnd.crowbar.${type}.${form}+json; version=2.0`;

for (const dialect of storeDialects()) {
  describe(`/api/v2/users (${dialect})`, () => {
    let api: TestApi;
    const bob: Credentials = { username: 'bob', password: 'bob-password-1' };
    beforeAll(async () => {
      api = await startTestApi(dialect, { anneal: false });
    });
    afterAll(async () => api?.cleanup());

    it('lists the seeded users with exactly the seven public keys', async () => {
      const r = await api.call('GET', '/api/v2/users');
      expect(r.status).toBe(200);
      expect(r.type).toBe(ct('user', 'list'));
      expect(r.raw).not.toMatch(/": /);
      expect(r.body.map((u: any) => [u.username, u.is_admin, u.is_locked])).toEqual([['crowbar', true, false], ['developer', true, false]]);
      for (const u of r.body) expect(Object.keys(u).sort()).toEqual(USER_KEYS);
      const byName = await api.call('GET', '/api/v2/users/developer');
      expect(byName.type).toBe(ct('user', 'obj'));
      expect((await api.call('GET', `/api/v2/users/${byName.body.id}`)).body).toEqual(byName.body);
      expect(await api.call('GET', '/api/v2/users/nobody')).toMatchObject({ status: 404, body: { status: 404, message: "user 'nobody' not found" } });
    });

    it('creates a user (string scalars coerced, wrapped or flat body), refuses duplicates and bad fields naming them', async () => {
      const c = await api.call('POST', '/api/v2/users', { user: { username: bob.username, email: 'bob@example.com', password: bob.password, password_confirmation: bob.password, is_admin: 'false' }, order: '1' });
      expect(c.status).toBe(200);
      expect(c.type).toBe(ct('user', 'obj'));
      expect(Object.keys(c.body).sort()).toEqual(USER_KEYS);
      expect(c.body).toMatchObject({ username: 'bob', email: 'bob@example.com', is_admin: false, is_locked: false });
      expect(c.raw).not.toContain(bob.password);
      expect((await api.call('GET', '/api/v2/users', undefined, { auth: bob })).status).toBe(200);

      expect((await api.call('POST', '/api/v2/users', { username: 'bob', password: 'another-pw-1' })).status).toBe(409);
      const cases: [Record<string, unknown>, number, RegExp][] = [
        [{ email: 'x@example.com' }, 422, /'username' is required/],
        [{ username: 'bad name!' }, 422, /'username'/],
        [{ username: '12345' }, 422, /'username'/],
        [{ username: 'carol', password: 'short' }, 422, /'password'/],
        [{ username: 'carol', password: 'long-enough-1', password_confirmation: 'different-1' }, 422, /'password_confirmation'/],
        [{ username: 'carol', email: 'not-an-email' }, 422, /'email'/],
        [{ username: 'carol', is_admin: 'maybe' }, 422, /'is_admin'/],
        [{ username: { a: 1 } }, 422, /'username'/],
      ];
      for (const [b, status, msg] of cases) {
        const r = await api.call('POST', '/api/v2/users', b);
        expect(r.status, JSON.stringify(b)).toBe(status);
        expect(r.type).toBe(ct('error', 'error'));
        expect(r.body.message).toMatch(msg);
      }
      expect((await api.call('GET', '/api/v2/users/carol')).status).toBe(404);
    });

    it('has sample and match (public columns only)', async () => {
      const s = await api.call('GET', '/api/v2/users/sample');
      expect(s.body).toEqual({ username: '', email: null, is_admin: false, is_locked: false });
      const m = await api.call('POST', '/api/v2/users/match', { is_admin: 'true' });
      expect(m.type).toBe(ct('user', 'list'));
      expect(m.body.map((u: any) => u.username)).toEqual(['crowbar', 'developer']);
      expect((await api.call('POST', '/api/v2/users/match', { username: 'bob', is_locked: false })).body).toHaveLength(1);
      for (const k of ['password_hash', 'digest_ha1', 'nope']) {
        const r = await api.call('POST', '/api/v2/users/match', { [k]: 'x' });
        expect(r.status).toBe(422);
        expect(r.body.message).toContain(`'${k}'`);
      }
    });

    it('updates email (PUT, PATCH as JSON Patch) and renames; non-admins may change only themselves', async () => {
      const put = await api.call('PUT', '/api/v2/users/bob', { email: 'bob@new.example', is_admin: false, id: 999, created_at: 'x' });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ username: 'bob', email: 'bob@new.example', is_admin: false });
      const patch = await api.call('PATCH', '/api/v2/users/bob', [{ op: 'replace', path: '/email', value: 'bob@patched.example' }]);
      expect(patch.body.email).toBe('bob@patched.example');
      expect((await api.call('PATCH', '/api/v2/users/bob', [{ op: 'move', from: '/a', path: '/email' }])).status).toBe(422);

      // bob changes his own email, but not his admin flag, and nobody else
      expect((await api.call('PUT', '/api/v2/users/bob', { email: 'self@example.com' }, { auth: bob })).status).toBe(200);
      const selfAdmin = await api.call('PUT', '/api/v2/users/bob', { is_admin: 'true' }, { auth: bob });
      expect(selfAdmin.status).toBe(403);
      expect(selfAdmin.body).toEqual({ message: expect.stringMatching(/admin/), status: 403 });
      expect((await api.call('POST', '/api/v2/users/bob/admin', undefined, { auth: bob })).status).toBe(403);
      expect((await api.call('PUT', '/api/v2/users/developer', { email: 'x@example.com' }, { auth: bob })).status).toBe(403);
      expect((await api.call('POST', '/api/v2/users', { username: 'eve' }, { auth: bob })).status).toBe(403);
      expect((await api.call('DELETE', '/api/v2/users/developer', undefined, { auth: bob })).status).toBe(403);
      expect((await api.call('GET', '/api/v2/users/bob')).body.is_admin).toBe(false);

      // a bad field changes nothing
      expect((await api.call('PUT', '/api/v2/users/bob', { email: 'nope', username: 'robert' })).status).toBe(422);
      expect((await api.call('PUT', '/api/v2/users/bob', { username: 'robert', password: 'short' })).status).toBe(422);
      expect((await api.call('GET', '/api/v2/users/bob')).body.email).toBe('self@example.com');

      // a rename keeps the password; Digest's HA1 is re-derived at the next password login
      const renamed = await api.call('PUT', '/api/v2/users/bob', { username: 'robert' });
      expect(renamed.body.username).toBe('robert');
      expect((await api.call('GET', '/api/v2/users/robert', undefined, { auth: { username: 'robert', password: bob.password } })).status).toBe(200);
      const creds = await userCredentials(api.cb.engine.db, { username: 'robert' });
      expect(creds?.digest_ha1).toMatch(/^[0-9a-f]{32}$/);
      expect((await api.call('PUT', '/api/v2/users/robert', { username: 'bob' })).status).toBe(200);
      expect((await api.call('PUT', '/api/v2/users/bob', { username: 'developer' })).status).toBe(409);
    });

    it('sets and clears the admin and lock flags, and never leaves the system without an unlocked admin', async () => {
      const a = await api.call('POST', '/api/v2/users/bob/admin');
      expect(a.status).toBe(200);
      expect(a.type).toBe(ct('user', 'obj'));
      expect(a.body.is_admin).toBe(true);
      expect((await api.call('DELETE', '/api/v2/users/bob/admin')).body.is_admin).toBe(false);
      expect((await api.call('POST', '/api/v2/users/bob/lock')).body.is_locked).toBe(true);
      expect((await api.call('DELETE', '/api/v2/users/bob/lock')).body.is_locked).toBe(false);

      expect((await api.call('DELETE', '/api/v2/users/developer/admin')).status).toBe(200);
      const last = await api.call('DELETE', '/api/v2/users/crowbar/admin');
      expect(last.status).toBe(409);
      expect(last.body.message).toMatch(/last unlocked admin/);
      expect((await api.call('POST', '/api/v2/users/crowbar/lock')).status).toBe(409);
      expect((await api.call('DELETE', '/api/v2/users/crowbar')).status).toBe(409);
      expect((await api.call('PUT', '/api/v2/users/crowbar', { is_locked: 'true' })).status).toBe(409);
      expect((await api.call('GET', '/api/v2/users/crowbar')).body).toMatchObject({ is_admin: true, is_locked: false });
      expect((await api.call('POST', '/api/v2/users/developer/admin')).body.is_admin).toBe(true);
      expect((await api.call('POST', '/api/v2/users/nobody/admin')).status).toBe(404);
    });

    it('resets a password (self or admin) with confirmation; the old one stops working', async () => {
      const bad = await api.call('PUT', '/api/v2/users/bob/reset_password', { password: 'new-password-1', password_confirmation: 'other-password-1' });
      expect(bad.status).toBe(422);
      expect(bad.body.message).toMatch(/'password_confirmation'/);
      expect((await api.call('PUT', '/api/v2/users/bob/reset_password', { password: 'new-password-1' })).body.message).toMatch(/'password_confirmation' is required/);
      const ok = await api.call('PUT', '/api/v2/users/bob/reset_password', { password: 'new-password-1', password_confirmation: 'new-password-1' });
      expect(ok.status).toBe(200);
      expect(Object.keys(ok.body).sort()).toEqual(USER_KEYS);
      expect((await api.call('GET', '/api/v2/users', undefined, { auth: bob })).status).toBe(401);
      const bob2 = { username: 'bob', password: 'new-password-1' };
      expect((await api.call('GET', '/api/v2/users', undefined, { auth: bob2 })).status).toBe(200);
      // bob resets his own; he may not reset someone else's
      expect((await api.call('PUT', '/api/v2/users/bob/reset_password', { password: bob.password, password_confirmation: bob.password }, { auth: bob2 })).status).toBe(200);
      expect((await api.call('PUT', '/api/v2/users/developer/reset_password', { password: 'hijacked-pw-1', password_confirmation: 'hijacked-pw-1' }, { auth: bob })).status).toBe(403);
      expect((await api.call('GET', '/api/v2/users/bob/start_password_reset')).status).toBe(501);
    });

    it('lets users manage their own tokens only (admins any), and 404s a token of someone else', async () => {
      const mine = await api.call('POST', '/api/v2/users/bob/tokens', {}, { auth: bob });
      expect(mine.status).toBe(200);
      expect(mine.body.name).toBe('');
      expect((await api.call('GET', '/api/v2/users/bob/tokens', undefined, { auth: bob })).body).toHaveLength(1);
      expect((await api.call('GET', '/api/v2/users/crowbar/tokens', undefined, { auth: bob })).status).toBe(403);
      expect((await api.call('POST', '/api/v2/users/crowbar/tokens', {}, { auth: bob })).status).toBe(403);
      expect((await api.call('DELETE', `/api/v2/users/crowbar/tokens/${mine.body.id}`)).status).toBe(404);
      expect((await api.call('DELETE', '/api/v2/users/bob/tokens/abc')).status).toBe(422);
      expect((await api.call('POST', '/api/v2/users/bob/tokens', { name: 'x'.repeat(300) })).body.message).toMatch(/'name'/);
      expect((await api.call('DELETE', `/api/v2/users/bob/tokens/${mine.body.id}`, undefined, { auth: bob })).status).toBe(200);
    });

    it('deletes a user with its tokens and sessions', async () => {
      const t = (await api.call('POST', '/api/v2/users/bob/tokens', { name: 'gone' })).body.token;
      const d = await api.call('DELETE', '/api/v2/users/bob');
      expect(d.status).toBe(200);
      expect(d.type).toBe(ct('user', 'empty'));
      expect(d.body).toEqual({ message: 'user bob deleted' });
      expect((await api.call('GET', '/api/v2/users/bob')).status).toBe(404);
      expect((await api.call('GET', '/api/v2/users', undefined, { authorization: `Bearer ${t}` })).status).toBe(401);
      expect(await api.cb.engine.db.selectFrom('api_tokens').selectAll().execute()).toEqual([]);
    });
  });

  describe(`/api/v2/groups (${dialect})`, () => {
    let api: TestApi;
    beforeAll(async () => {
      api = await startTestApi(dialect, { anneal: false });
    });
    afterAll(async () => api?.cleanup());

    it('creates, shows, lists, updates and deletes groups by id or name with exact keys', async () => {
      const c = await api.call('POST', '/api/v2/groups', { name: 'Rack1', description: 'first rack', category: 'rack', order: '5' });
      expect(c.status).toBe(200);
      expect(c.type).toBe(ct('group', 'obj'));
      expect(Object.keys(c.body).sort()).toEqual(GROUP_KEYS);
      expect(c.body).toMatchObject({ name: 'Rack1', description: 'first rack', category: 'rack', order: 5 });
      const d = await api.call('POST', '/api/v2/groups', { name: 'web' });
      expect(d.body).toMatchObject({ category: 'ui', order: 10000, description: '' });
      // the same name in another category is a different group
      expect((await api.call('POST', '/api/v2/groups', { name: 'web', category: 'tag' })).status).toBe(200);

      const list = await api.call('GET', '/api/v2/groups');
      expect(list.type).toBe(ct('group', 'list'));
      expect(list.body.map((g: any) => `${g.category}/${g.name}`)).toEqual(['rack/Rack1', 'ui/web', 'tag/web']);
      expect((await api.call('GET', '/api/v2/groups/Rack1')).body).toEqual(c.body);
      expect((await api.call('GET', `/api/v2/groups/${c.body.id}`)).body).toEqual(c.body);
      expect((await api.call('GET', '/api/v2/groups/web')).body.category).toBe('ui');

      const u = await api.call('PUT', '/api/v2/groups/Rack1', { description: 'renamed', name: 'Rack_2', order: 7 });
      expect(u.body).toMatchObject({ id: c.body.id, name: 'Rack_2', description: 'renamed', order: 7, category: 'rack' });
      const p = await api.call('PATCH', '/api/v2/groups/Rack_2', [{ op: 'replace', path: '/description', value: 'patched' }]);
      expect(p.body.description).toBe('patched');

      expect((await api.call('GET', '/api/v2/groups/sample')).body).toEqual({ name: '', description: '', category: 'ui', order: 10000 });
      expect((await api.call('POST', '/api/v2/groups/match', { name: 'web' })).body).toHaveLength(2);
      expect((await api.call('POST', '/api/v2/groups/match', { name: 'web', category: 'tag' })).body).toHaveLength(1);
      expect((await api.call('POST', '/api/v2/groups/match', { colour: 'red' })).body.message).toContain("'colour'");

      const del = await api.call('DELETE', '/api/v2/groups/Rack_2');
      expect(del.status).toBe(200);
      expect(del.type).toBe(ct('group', 'empty'));
      expect((await api.call('GET', '/api/v2/groups/Rack_2')).status).toBe(404);
    });

    it('refuses bad names and categories naming the field, and duplicates in a category with 409', async () => {
      const cases: [Record<string, unknown>, number, RegExp][] = [
        [{ description: 'no name' }, 422, /'name' is required/],
        [{ name: '1rack' }, 422, /'name'/],
        [{ name: 'has-dash' }, 422, /'name'/],
        [{ name: 'has.dot' }, 422, /'name'/],
        [{ name: 'ok', category: 'shelf' }, 422, /'category'/],
        [{ name: 'ok', order: 'first' }, 422, /'order'/],
        [{ name: 'web' }, 409, /already exists/],
      ];
      for (const [b, status, msg] of cases) {
        const r = await api.call('POST', '/api/v2/groups', b);
        expect(r.status, JSON.stringify(b)).toBe(status);
        expect(r.body.message).toMatch(msg);
      }
      expect((await api.call('PUT', '/api/v2/groups/web', { category: 'tag' })).status).toBe(409);
      expect((await api.call('PUT', '/api/v2/groups/web', { name: 'bad name' })).status).toBe(422);
      expect((await api.call('GET', '/api/v2/groups/web')).body).toMatchObject({ name: 'web', category: 'ui' });
    });

    it('adds, lists and removes nodes (by id or name, in the path or the body)', async () => {
      const nodes = (await api.call('GET', '/api/v2/nodes')).body as { id: number; name: string }[];
      expect(nodes.length).toBeGreaterThanOrEqual(2);
      const [n1, n2] = nodes as [{ id: number; name: string }, { id: number; name: string }];
      expect((await api.call('GET', '/api/v2/groups/web/nodes')).body).toEqual([]);
      const add = await api.call('POST', '/api/v2/groups/web/nodes', { node_id: String(n1.id) });
      expect(add.status).toBe(200);
      expect(add.type).toBe(ct('node', 'list'));
      expect(add.body.map((n: any) => n.id)).toEqual([n1.id]);
      await api.call('POST', '/api/v2/groups/web/nodes', { node: n2.name });
      expect((await api.call('POST', '/api/v2/groups/web/nodes', { node_id: n1.id })).status).toBe(200); // twice is fine
      const list = await api.call('GET', '/api/v2/groups/web/nodes');
      expect(list.body.map((n: any) => n.id)).toEqual([n1.id, n2.id]);
      expect(Object.keys(list.body[0])).toContain('alive');

      expect((await api.call('POST', '/api/v2/groups/web/nodes', {})).body.message).toMatch(/'node_id'/);
      expect((await api.call('POST', '/api/v2/groups/web/nodes', { node_id: 'no.such.node' })).status).toBe(404);
      expect((await api.call('POST', '/api/v2/groups/nogroup/nodes', { node_id: n1.id })).status).toBe(404);

      expect((await api.call('DELETE', `/api/v2/groups/web/nodes/${n1.name}`)).body.map((n: any) => n.id)).toEqual([n2.id]);
      expect((await api.call('DELETE', '/api/v2/groups/web/nodes', { node_id: n2.id })).body).toEqual([]);
      // deleting a group drops its memberships
      await api.call('POST', '/api/v2/groups/web/nodes', { node_id: n1.id });
      expect((await api.call('DELETE', '/api/v2/groups/web')).status).toBe(200);
      expect(await api.cb.engine.db.selectFrom('node_groups').selectAll().execute()).toEqual([]);
    });
  });

  describe(`seeding users (${dialect})`, () => {
    const logged: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => logged.push(JSON.parse(s)) });

    it('outside dev creates crowbar once with a generated password logged at warn, and never overwrites', async () => {
      const store = await openTestStore(dialect, 'seed');
      try {
        const db = store.handle.db;
        await seedUsers(db, { dev: false, log });
        const warn = logged.find((l) => l.level === 40);
        const pw = /generated password (\S+)/.exec(warn?.msg ?? '')?.[1];
        expect(pw, 'the generated password is in a warn line').toBeTruthy();
        const creds = await userCredentials(db, { username: 'crowbar' });
        expect(creds?.is_admin).toBe(true);
        expect(await verifyPassword(pw!, creds?.password_hash)).toBe(true);
        expect(await userCredentials(db, { username: 'developer' })).toBeUndefined();

        logged.length = 0;
        await seedUsers(db, { dev: true, adminPassword: 'other-password', log });
        expect(logged.filter((l) => l.level === 40)).toEqual([]);
        const again = await userCredentials(db, { username: 'crowbar' });
        expect(again?.password_hash).toBe(creds?.password_hash);
        expect(await userCredentials(db, { username: 'developer' })).toBeDefined();
      } finally {
        await store.cleanup();
      }
    });

    it('takes CROWBAR_ADMIN_PASSWORD (config.adminPassword) when given, logging no password', async () => {
      const store = await openTestStore(dialect, 'seed');
      try {
        logged.length = 0;
        await seedUsers(store.handle.db, { dev: false, adminPassword: 'from-the-env-1', log });
        expect(JSON.stringify(logged)).not.toContain('from-the-env-1');
        expect(await verifyPassword('from-the-env-1', (await userCredentials(store.handle.db, { username: 'crowbar' }))?.password_hash)).toBe(true);
      } finally {
        await store.cleanup();
      }
    });
  });
}
