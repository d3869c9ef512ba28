import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

const NODE_KEYS = ['admin', 'alive', 'allocated', 'available', 'bootenv', 'created_at', 'deployment_id', 'description', 'id', 'name', 'quirks', 'system', 'target_role_id', 'updated_at'];
const NODE_ROLE_KEYS = ['available', 'cohort', 'created_at', 'deployment_id', 'id', 'node_error', 'node_id', 'order', 'role_id', 'run_count', 'runlog', 'state', 'status', 'updated_at'];
const type = (t: string, form: string) => `application/vnd.crowbar.${t}.${form}+json; version=2.0`;

/** Polls GET /api/v2/anneal until it settles: 200 finished or 409 failed. */
async function anneal(api: TestApi, timeoutMs = 30_000): Promise<{ status: number; message: string }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await api.call('GET', '/api/v2/anneal');
    if (r.status === 200 || r.status === 409) return { status: r.status, message: r.body.message };
    if (Date.now() > until) throw new Error(`annealer still '${r.body.message}' after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

for (const dialect of storeDialects()) {
  describe(`/api/v2/nodes (${dialect})`, () => {
    let api: TestApi;
    beforeAll(async () => {
      api = await startTestApi(dialect);
    });
    afterAll(async () => api?.cleanup());

    const count = async () => (await api.call('GET', '/api/v2/nodes')).body.length as number;

    it('lists nodes with the exact 14 keys, compact JSON, vendor type; shows by id, name and `admin`', async () => {
      const r = await api.call('GET', '/api/v2/nodes');
      expect(r.status).toBe(200);
      expect(r.type).toBe(type('node', 'list'));
      expect(r.raw).not.toMatch(/": /);
      for (const n of r.body) expect(Object.keys(n).sort()).toEqual(NODE_KEYS);
      const admin = r.body.find((n: any) => n.admin);
      expect(admin).toMatchObject({ name: 'admin.crowbar.test', alive: true, available: true, system: false, deployment_id: 1 });
      expect(r.body.find((n: any) => n.name === 'system-phantom.internal.local')).toMatchObject({ system: true });
      for (const k of [String(admin.id), 'admin.crowbar.test', 'ADMIN.Crowbar.Test', 'admin']) {
        const s = await api.call('GET', `/api/v2/nodes/${k}`);
        expect(s.status, k).toBe(200);
        expect(s.type).toBe(type('node', 'obj'));
        expect(s.body).toEqual(admin);
      }
      const missing = await api.call('GET', '/api/v2/nodes/nope.example.com');
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ status: 404, message: "node 'nope.example.com' not found" });
    });

    it('creates a node from string scalars, lower-cases its name, keeps the mac as a hint, ignores ip and unknown keys', async () => {
      const r = await api.call('POST', '/api/v2/nodes', {
        name: 'Node1.Example.COM', description: 'first', alive: 'true', available: 'false', allocated: '1', mac: '52:54:00:AA:BB:CC', ip: '10.0.0.5/24', order: '9', group: 'Rack1',
      });
      expect(r.status).toBe(200);
      expect(r.type).toBe(type('node', 'obj'));
      expect(Object.keys(r.body).sort()).toEqual(NODE_KEYS);
      expect(r.body).toMatchObject({ name: 'node1.example.com', description: 'first', alive: true, available: false, allocated: true, admin: false, system: false, bootenv: 'sledgehammer', deployment_id: 1, target_role_id: null });
      const row = await api.cb.engine.db.selectFrom('nodes').select(['hint']).where('id', '=', r.body.id).executeTakeFirstOrThrow();
      expect(JSON.parse(row.hint)).toEqual({ admin_macs: ['52:54:00:aa:bb:cc'] });
      // every non-system node gets an ssh hammer
      const h = await api.call('GET', '/api/v2/nodes/node1.example.com/hammers');
      expect(h.status).toBe(200);
      expect(h.body.map((x: any) => x.name)).toEqual(['ssh']);
      expect(h.body[0]).toMatchObject({ node_id: r.body.id, username: 'root', type: 'SecureShellHammer' });
      // this server drives no ssh: give the node a simulated machine to run on
      expect((await api.call('POST', '/api/v2/hammers', { node: 'node1.example.com', available_hammer: 'sim', username: 'root' })).status).toBe(200);
    });

    it('refuses bad input with a 4xx naming the field, and writes nothing', async () => {
      const before = await count();
      const cases: Array<[unknown, number, RegExp]> = [
        [{ description: 'no name' }, 422, /'name' is required/],
        [{ name: 'bad' }, 422, /node name 'bad'/],
        [{ name: 'n2.example.com', alive: 'maybe' }, 422, /'alive' must be true or false/],
        [{ name: 'n2.example.com', mac: 'zz:00' }, 422, /'mac' must be a MAC address/],
        [{ name: 'n2.example.com', deployment: 'nope' }, 404, /deployment 'nope' not found/],
        [{ name: 'NODE1.example.com' }, 409, /node 'node1.example.com' already exists/],
        [['not', 'an', 'object'], 422, /must be a JSON object/],
      ];
      for (const [payload, status, message] of cases) {
        const r = await api.call('POST', '/api/v2/nodes', payload);
        expect(r.status, JSON.stringify(payload)).toBe(status);
        expect(r.type).toBe(type('error', 'error'));
        expect(r.body.message).toMatch(message);
      }
      expect(await count()).toBe(before);
    });

    it('updates by PUT (strings coerced) and PATCH (RFC 6902, whitelisted fields only)', async () => {
      const put = await api.call('PUT', '/api/v2/nodes/node1.example.com', { description: 'edited', available: 'true', alive: 'false', bootenv: 'local', admin: 'true' });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ description: 'edited', available: true, alive: false, bootenv: 'local', admin: false });
      const patch = await api.call('PATCH', '/api/v2/nodes/node1.example.com', [
        { op: 'test', path: '/description', value: 'edited' },
        { op: 'replace', path: '/description', value: 'patched' },
        { op: 'replace', path: '/bootenv', value: 'sledgehammer' },
      ]);
      expect(patch.status).toBe(200);
      expect(patch.body).toMatchObject({ description: 'patched', bootenv: 'sledgehammer' });
      const refused = await api.call('PATCH', '/api/v2/nodes/node1.example.com', [{ op: 'replace', path: '/admin', value: true }]);
      expect(refused.status).toBe(422);
      expect(refused.body.message).toMatch(/'admin' cannot be changed/);
      const badBool = await api.call('PUT', '/api/v2/nodes/node1.example.com', { description: 'not this', alive: 'perhaps' });
      expect(badBool.status).toBe(422);
      expect(badBool.body.message).toMatch(/'alive'/);
      expect((await api.call('GET', '/api/v2/nodes/node1.example.com')).body.description).toBe('patched');
    });

    it('moves a node between deployments, with the old_deployment_id guard refusing the whole change', async () => {
      expect((await api.call('POST', '/api/v2/deployments', { name: 'moveto' })).status).toBe(200);
      const guarded = await api.call('PUT', '/api/v2/nodes/node1.example.com', { description: 'moved?', deployment: 'moveto', old_deployment_id: 'moveto' });
      expect(guarded.status).toBe(409);
      expect(guarded.body.message).toMatch(/not in deployment 'moveto'/);
      const n = (await api.call('GET', '/api/v2/nodes/node1.example.com')).body;
      expect(n).toMatchObject({ description: 'patched', deployment_id: 1 });
      const moved = await api.call('PUT', '/api/v2/nodes/node1.example.com', { deployment: 'moveto', old_deployment_id: 'system' });
      expect(moved.status).toBe(200);
      const dep = (await api.call('GET', '/api/v2/deployments/moveto')).body;
      expect(moved.body.deployment_id).toBe(dep.id);
      const nested = await api.call('GET', '/api/v2/deployments/moveto/nodes');
      expect(nested.body.map((x: any) => x.name).sort()).toEqual(['moveto-phantom.internal.local', 'node1.example.com']);
      expect((await api.call('PUT', `/api/v2/nodes/${n.id}`, { deployment_id: '1' })).body.deployment_id).toBe(1);
    });

    it('binds, commits and anneals a node through the API; nested node_roles, roles and node_roles/:role', async () => {
      const bind = await api.call('POST', '/api/v2/node_roles', { node: 'node1.example.com', role: 'test-client' });
      expect(bind.status).toBe(200);
      expect(bind.body.state).toBe(4);
      const commit = await api.call('PUT', '/api/v2/nodes/node1.example.com/commit');
      expect(commit.status).toBe(200);
      expect(commit.body).toMatchObject({ name: 'node1.example.com', available: true });
      expect((await api.call('PUT', '/api/v2/nodes/node1.example.com', { alive: 'true' })).body.alive).toBe(true);
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });

      const nrs = await api.call('GET', '/api/v2/nodes/node1.example.com/node_roles');
      expect(nrs.type).toBe(type('node_role', 'list'));
      expect(nrs.body.length).toBeGreaterThanOrEqual(3);
      for (const nr of nrs.body) {
        expect(Object.keys(nr).sort()).toEqual(NODE_ROLE_KEYS);
        expect(nr).toMatchObject({ state: 0, node_error: false });
      }
      const one = await api.call('GET', '/api/v2/nodes/node1.example.com/node_roles/test-client');
      expect(one.status).toBe(200);
      expect(one.type).toBe(type('node_role', 'obj'));
      expect(one.body.id).toBe(bind.body.id);
      const notBound = await api.call('GET', '/api/v2/nodes/node1.example.com/node_roles/test-fails');
      expect(notBound.status).toBe(404);
      expect(notBound.body.message).toMatch(/not bound/);
      expect((await api.call('GET', '/api/v2/nodes/node1.example.com/node_roles/no-such-role')).status).toBe(404);
      const roles = await api.call('GET', '/api/v2/nodes/node1.example.com/roles');
      expect(roles.type).toBe(type('role', 'list'));
      expect(roles.body.map((r: any) => r.name)).toEqual(expect.arrayContaining(['test-client', 'test-library', 'test-server']));

      const status = await api.call('GET', '/api/status/nodes/node1.example.com');
      expect(status.status).toBe(200);
      expect(status.body).toEqual({ [String(bind.body.node_id)]: { name: 'node1.example.com', state: 0, status: 'active', strStatus: 'Alive\nAvailable\nActive' } });
    });

    it('proposes and redeploys a node; both return the node', async () => {
      const p = await api.call('PUT', '/api/v2/nodes/node1.example.com/propose');
      expect(p.status).toBe(200);
      expect(Object.keys(p.body).sort()).toEqual(NODE_KEYS);
      const states = (await api.call('GET', '/api/v2/nodes/node1.example.com/node_roles')).body.map((n: any) => n.state);
      expect(new Set(states)).toEqual(new Set([4]));
      const r = await api.call('PUT', '/api/v2/nodes/node1.example.com/redeploy');
      expect(r.status).toBe(200);
      expect(r.body.bootenv).toBe('sledgehammer');
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });
      const after = (await api.call('GET', '/api/v2/nodes/node1.example.com/node_roles')).body;
      expect(after.every((n: any) => n.state === 0 && n.run_count === 1)).toBe(true);
    });

    it('lists and performs power actions from the node hammers; 501 when unsupported', async () => {
      const admin = await api.call('GET', '/api/v2/nodes/admin/power');
      expect(admin.status).toBe(200);
      expect(admin.type).toBe(type('node', 'array'));
      expect([...admin.body].sort()).toEqual(['reboot', 'status']); // status from the local hammer, reboot from ssh
      const st = await api.call('PUT', '/api/v2/nodes/admin/power?poweraction=status');
      expect(st.status).toBe(200);
      expect(st.body).toEqual({ id: expect.any(Number), action: 'status', result: 'on' });
      const off = await api.call('PUT', '/api/v2/nodes/admin/power?poweraction=off');
      expect(off.status).toBe(501);
      expect(off.body).toEqual({ message: expect.stringMatching(/cannot off/), status: 501 });
      // node1 has ssh (reboot) and sim (the rest, and reboot too)
      expect([...(await api.call('GET', '/api/v2/nodes/node1.example.com/power')).body].sort()).toEqual(['cycle', 'halt', 'off', 'on', 'reboot', 'reset', 'status']);
      expect((await api.call('PUT', '/api/v2/nodes/node1.example.com/power', { poweraction: 'off' })).body).toMatchObject({ action: 'off', result: 'off' });
      expect((await api.call('PUT', '/api/v2/nodes/node1.example.com/power?poweraction=on')).body).toMatchObject({ action: 'on', result: 'on' });
      expect((await api.call('PUT', '/api/v2/nodes/node1.example.com/power?poweraction=identify')).status).toBe(501);
      expect((await api.call('GET', '/api/v2/nodes/system-phantom.internal.local/power')).body).toEqual([]);
      const missing = await api.call('PUT', '/api/v2/nodes/node1.example.com/power');
      expect(missing.status).toBe(422);
      expect(missing.body.message).toMatch(/'poweraction' is required/);
    });

    it('an annealer target keeps only it and its same-node ancestors available; debug targets crowbar-managed-node, undebug clears', async () => {
      const created = await api.call('POST', '/api/v2/nodes', { name: 'dbg.example.com', alive: 'true' });
      expect(created.status).toBe(200);
      expect((await api.call('POST', '/api/v2/hammers', { node: 'dbg.example.com', available_hammer: 'sim', username: 'root' })).status).toBe(200);
      expect((await api.call('POST', '/api/v2/node_roles', { node: 'dbg.example.com', role: 'test-client' })).status).toBe(200);
      const fails = (await api.call('POST', '/api/v2/node_roles', { node: 'dbg.example.com', role: 'test-fails' })).body;
      const notBound = await api.call('PUT', '/api/v2/nodes/dbg.example.com', { target_role_id: 'test-event', description: 'not written' });
      expect(notBound.status).toBe(409);
      expect(notBound.body.message).toMatch(/target role 'test-event' for node 'dbg.example.com': the role is not bound/);
      expect((await api.call('GET', '/api/v2/nodes/dbg.example.com')).body.description).toBe('');

      // test-client's shared parent test-server is node1's; its implicit parent test-library is here
      const server = (await api.call('GET', '/api/v2/roles/test-library')).body;
      const t = await api.call('PUT', '/api/v2/nodes/dbg.example.com', { target_role_id: String(server.id) });
      expect(t.status).toBe(200);
      expect(t.body.target_role_id).toBe(server.id);
      const avail = Object.fromEntries(
        await Promise.all(['test-library', 'test-client', 'test-fails'].map(async (r) => [r, (await api.call('GET', `/api/v2/nodes/dbg.example.com/node_roles/${r}`)).body] as const)),
      );
      expect(Object.fromEntries(Object.entries(avail).map(([r, nr]) => [r, nr.available]))).toEqual({ 'test-library': true, 'test-client': false, 'test-fails': false });
      // the annealer converges the target only: test-fails (outside it) never runs
      expect((await api.call('PUT', '/api/v2/nodes/dbg.example.com/commit')).status).toBe(200);
      for (let i = 0; i < 500 && (await api.call('GET', `/api/v2/node_roles/${avail['test-library'].id}`)).body.state !== 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect((await api.call('GET', `/api/v2/node_roles/${avail['test-library'].id}`)).body.state).toBe(0);
      expect((await api.call('GET', `/api/v2/node_roles/${avail['test-client'].id}`)).body.state).toBe(1);
      expect((await api.call('GET', `/api/v2/node_roles/${avail['test-client'].id}/why`)).body.reasons).toEqual([{ reason: 'outside_target', node: 'dbg.example.com', target_role_id: server.id }]);
      expect((await api.call('GET', `/api/v2/node_roles/${fails.id}`)).body).toMatchObject({ state: 1, run_count: 0 });

      const dbg = await api.call('PUT', '/api/v2/nodes/dbg.example.com/debug');
      expect(dbg.status).toBe(409);
      expect(dbg.body.message).toMatch(/cannot set target role 'crowbar-managed-node' for node 'dbg.example.com'/);
      const undbg = await api.call('PUT', '/api/v2/nodes/dbg.example.com/undebug');
      expect(undbg.status).toBe(200);
      expect(undbg.body).toMatchObject({ target_role_id: null, alive: false, bootenv: 'local' });
      expect((await api.call('GET', '/api/v2/nodes/dbg.example.com/node_roles')).body.every((n: any) => n.available)).toBe(true);
      expect((await api.call('DELETE', `/api/v2/node_roles/${fails.id}`)).status).toBe(200);
      expect((await api.call('PUT', '/api/v2/nodes/dbg.example.com', { alive: true })).status).toBe(200);
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });
    });

    it('sample and match', async () => {
      const s = await api.call('GET', '/api/v2/nodes/sample');
      expect(s.status).toBe(200);
      expect(s.body).toMatchObject({ name: '', bootenv: 'sledgehammer', alive: false });
      expect(Object.keys(s.body).some((k) => k === 'id' || k.endsWith('_id') || k.endsWith('_at'))).toBe(false);
      const m = await api.call('POST', '/api/v2/nodes/match', { admin: 'true' });
      expect(m.status).toBe(200);
      expect(m.body.map((n: any) => n.name)).toEqual(['admin.crowbar.test']);
      expect((await api.call('POST', '/api/v2/nodes/match', { nonsense: 'x' })).body).toEqual([]);
    });

    it('serves an Ansible inventory with a group per deployment and hostvars from node attribs', async () => {
      await api.cb.engine.db.updateTable('nodes').set({
        discovery: JSON.stringify({ ohai: { platform: 'debian', cpu: { total: 8 }, memory: { total: '16384kB' }, block_device: { sda: {}, sdb: {} } } }),
      }).where('name', '=', 'node1.example.com').execute();
      const inv = await api.call('GET', '/api/status/inventory');
      expect(inv.status).toBe(200);
      expect(inv.body.system.hosts).toEqual(expect.arrayContaining(['admin.crowbar.test', 'node1.example.com']));
      expect(inv.body.system.hosts).not.toContain('system-phantom.internal.local');
      expect(inv.body.moveto).toEqual({ hosts: [] });
      expect(inv.body._meta.hostvars['node1.example.com']).toEqual({ alive: true, available: true, state: 0, os: 'debian', cpu_count: 8, memory: '16384kB', number_of_drives: 2 });
      const host = await api.call('GET', '/api/status/inventory?hostvar=node1.example.com');
      expect(host.body).toEqual(inv.body._meta.hostvars['node1.example.com']);
      const none = await api.call('GET', '/api/status/inventory/system?hostvar=none');
      expect(Object.keys(none.body)).toEqual(['system']);
    });

    it('deletes a node (200, empty type), but never the last admin node nor a phantom', async () => {
      const last = await api.call('DELETE', '/api/v2/nodes/admin.crowbar.test');
      expect(last.status).toBe(409);
      expect(last.body.message).toMatch(/last admin node/);
      const phantom = await api.call('DELETE', '/api/v2/nodes/moveto-phantom.internal.local');
      expect(phantom.status).toBe(409);
      const d = await api.call('DELETE', '/api/v2/nodes/dbg.example.com');
      expect(d.status).toBe(200);
      expect(d.type).toBe(type('node', 'empty'));
      expect(d.body).toEqual({ message: 'node dbg.example.com deleted' });
      expect((await api.call('GET', '/api/v2/nodes/dbg.example.com')).status).toBe(404);
      expect((await api.call('GET', '/api/v2/nodes/admin.crowbar.test')).status).toBe(200);
    });
  });
}
