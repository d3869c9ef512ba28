import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

const ct = (type: string, form: string) => `application/vnd.crowbar.${type}.${form}+json; version=2.0`;
const keys = (o: object) => Object.keys(o).sort();

const BARCLAMP_KEYS = ['barclamp_id', 'build_on', 'build_version', 'cfg_data', 'commit', 'created_at', 'description', 'id', 'name', 'source_path', 'source_url', 'updated_at', 'version'];
const JIG_KEYS = ['active', 'client_name', 'client_role_name', 'created_at', 'description', 'id', 'key', 'name', 'order', 'server', 'type', 'updated_at'];
const ROLE_KEYS = [
  'abstract', 'barclamp_id', 'bootstrap', 'cluster', 'cohort', 'conflicts', 'created_at', 'description', 'destructive', 'discovery', 'id',
  'implicit', 'jig_name', 'library', 'milestone', 'name', 'powersave', 'provides', 'service', 'type', 'updated_at',
];
const HAMMER_KEYS = ['actions', 'available_hammer_id', 'created_at', 'endpoint', 'id', 'name', 'node_id', 'priority', 'type', 'updated_at', 'username'];
const AVAILABLE_HAMMER_KEYS = ['created_at', 'id', 'klass', 'name', 'priority', 'updated_at'];

const BARCLAMP_YAML = `barclamp:
  name: apicat
  parent: core
  description: "imported over the API"
  version: "1.2"
roles:
  - name: apicat-one
    jig: noop
    flags:
      - milestone
  - name: apicat-two
    jig: noop
    requires:
      - apicat-one
`;

for (const dialect of storeDialects()) {
  describe(`/api/v2 catalog (${dialect})`, () => {
    let api: TestApi;
    beforeAll(async () => {
      api = await startTestApi(dialect, { anneal: false });
    });
    afterAll(async () => api?.cleanup());

    describe('barclamps', () => {
      it('lists core and test with exact keys, by id or name', async () => {
        const r = await api.call('GET', '/api/v2/barclamps');
        expect(r.status).toBe(200);
        expect(r.type).toBe(ct('barclamp', 'list'));
        expect(r.raw).not.toMatch(/": /);
        const names = r.body.map((b: { name: string }) => b.name);
        expect(names).toEqual(expect.arrayContaining(['core', 'test']));
        const core = r.body.find((b: { name: string }) => b.name === 'core');
        expect(keys(core)).toEqual(BARCLAMP_KEYS);
        expect(core.barclamp_id).toBe(core.id);
        expect(typeof core.cfg_data).toBe('string');
        const test = await api.call('GET', '/api/v2/barclamps/test');
        expect(test.type).toBe(ct('barclamp', 'obj'));
        expect(test.body.barclamp_id).toBe(core.id);
        expect((await api.call('GET', `/api/v2/barclamps/${core.id}`)).body.name).toBe('core');
        expect((await api.call('GET', '/api/v2/barclamps/nope')).status).toBe(404);
      });

      it('has sample and match', async () => {
        const s = await api.call('GET', '/api/v2/barclamps/sample');
        expect(s.status).toBe(200);
        expect(keys(s.body)).toEqual(BARCLAMP_KEYS.filter((k) => k !== 'id' && k !== 'barclamp_id' && !k.endsWith('_at')));
        const m = await api.call('POST', '/api/v2/barclamps/match', { name: 'test' });
        expect(m.type).toBe(ct('barclamp', 'list'));
        expect(m.body.map((b: { name: string }) => b.name)).toEqual(['test']);
        expect((await api.call('POST', '/api/v2/barclamps/match', { bogus: 'x' })).body).toEqual([]);
      });

      it('imports a YAML document, idempotently, in development mode', async () => {
        const r = await api.call('POST', '/api/v2/barclamps', { value: BARCLAMP_YAML });
        expect(r.status).toBe(200);
        expect(r.type).toBe(ct('barclamp', 'obj'));
        expect(r.body).toMatchObject({ name: 'apicat', version: '1.2', description: 'imported over the API' });
        const two = await api.call('GET', '/api/v2/roles/apicat-two');
        expect(two.body).toMatchObject({ jig_name: 'noop', cohort: (await api.call('GET', '/api/v2/roles/apicat-one')).body.cohort + 1 });

        const again = await api.call('PUT', '/api/v2/barclamps/apicat', { value: BARCLAMP_YAML });
        expect(again.status).toBe(200);
        expect(again.body.id).toBe(r.body.id);
        const roles = (await api.call('GET', '/api/v2/roles')).body.filter((x: { name: string }) => x.name.startsWith('apicat-'));
        expect(roles).toHaveLength(2);
      });

      it('imports a document given as an object (as barclamp_import sends it)', async () => {
        const r = await api.call('POST', '/api/v2/barclamps', {
          value: { barclamp: { name: 'apiobj', parent: 'core', source_path: '/opt/x' }, jigs: [{ name: 'apiobj-jig', class: 'ApiObjJig' }], roles: [{ name: 'apiobj-r', jig: 'apiobj-jig' }] },
        });
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ name: 'apiobj', source_path: '/opt/x' });
        // development mode: only noop, test and role-provided are active after import
        expect((await api.call('GET', '/api/v2/jigs/apiobj-jig')).body.active).toBe(false);
      });

      it('refuses a malformed document with 422 naming file, line and reason, writing nothing', async () => {
        const syntax = await api.call('POST', '/api/v2/barclamps', { value: 'barclamp:\n  name: broken\nroles: [\n', file: 'broken.yml' });
        expect(syntax.status).toBe(422);
        expect(syntax.body.status).toBe(422);
        expect(syntax.body.message).toMatch(/^broken\.yml:\d+: malformed YAML/);

        const badJig = BARCLAMP_YAML.replace('apicat', 'apibad').replace(/apicat-/g, 'apibad-').replace('jig: noop\n    requires', 'jig: nosuchjig\n    requires');
        const r = await api.call('POST', '/api/v2/barclamps', { value: badJig });
        expect(r.status).toBe(422);
        expect(r.body.message).toMatch(/^value:12: role 'apibad-two' uses jig 'nosuchjig'/);
        expect(r.body.details).toMatchObject({ line: 12 });
        expect((await api.call('GET', '/api/v2/barclamps/apibad')).status).toBe(404);
        expect((await api.call('GET', '/api/v2/roles/apibad-one')).status).toBe(404);

        const obj = await api.call('POST', '/api/v2/barclamps', { value: { barclamp: { name: 'api obj' } } });
        expect(obj.status).toBe(422);
        expect(obj.body.message).toMatch(/^value \(as YAML\):\d+: .*not a valid name/);
        expect((await api.call('POST', '/api/v2/barclamps', {})).status).toBe(422);
      });

      it('refuses DELETE with 405', async () => {
        const r = await api.call('DELETE', '/api/v2/barclamps/test');
        expect(r.status).toBe(405);
        expect(r.type).toMatch(/^application\/vnd\.crowbar\./);
        expect(keys(r.body)).toEqual(['message', 'status']);
        expect(r.body.status).toBe(405);
      });
    });

    describe('jigs', () => {
      it('lists the seeded jigs with exact keys; test, noop and role-provided active in dev', async () => {
        const r = await api.call('GET', '/api/v2/jigs');
        expect(r.type).toBe(ct('jig', 'list'));
        const byName = Object.fromEntries(r.body.map((j: { name: string }) => [j.name, j]));
        for (const n of ['script', 'noop', 'test', 'role-provided']) expect(byName[n]).toBeDefined();
        expect(keys(byName['script'])).toEqual(JIG_KEYS);
        expect(byName['test'].active).toBe(true);
        expect(byName['noop'].active).toBe(true);
        expect(byName['script'].active).toBe(false);
        const one = await api.call('GET', `/api/v2/jigs/${byName['noop'].id}`);
        expect(one.type).toBe(ct('jig', 'obj'));
        expect(one.body.name).toBe('noop');
      });

      it('updates description, active, server, client_name, key from string scalars; ignores other keys', async () => {
        const r = await api.call('PUT', '/api/v2/jigs/script', { active: 'true', description: 'scripts', server: 'http://x', client_name: 'me', key: '/k.pem', order: '5', name: 'renamed' });
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ name: 'script', active: true, description: 'scripts', server: 'http://x', client_name: 'me', key: '/k.pem', order: 100 });
        const off = await api.call('PUT', '/api/v2/jigs/script', { active: 'false' });
        expect(off.body.active).toBe(false);
        expect((await api.call('PUT', '/api/v2/jigs/script', { active: 'perhaps' })).status).toBe(422);
      });

      it('PATCH applies a JSON Patch to whitelisted fields only', async () => {
        const r = await api.call('PATCH', '/api/v2/jigs/script', [{ op: 'replace', path: '/description', value: 'patched' }]);
        expect(r.status).toBe(200);
        expect(r.body.description).toBe('patched');
        const bad = await api.call('PATCH', '/api/v2/jigs/script', [{ op: 'replace', path: '/name', value: 'x' }]);
        expect(bad.status).toBe(422);
        expect(bad.body.message).toMatch(/'name' cannot be changed/);
      });

      it('has sample and match; refuses POST and DELETE with 405', async () => {
        const s = await api.call('GET', '/api/v2/jigs/sample');
        expect(keys(s.body)).toEqual(JIG_KEYS.filter((k) => k !== 'id' && !k.endsWith('_at')));
        const m = await api.call('POST', '/api/v2/jigs/match', { active: 'true', name: 'test' });
        expect(m.body.map((j: { name: string }) => j.name)).toEqual(['test']);
        const post = await api.call('POST', '/api/v2/jigs', { name: 'x' });
        expect(post.status).toBe(405);
        expect(post.body).toMatchObject({ status: 405 });
        expect((await api.call('DELETE', '/api/v2/jigs/noop')).status).toBe(405);
      });
    });

    describe('roles', () => {
      it('lists roles with exact keys and type role, by id or name', async () => {
        const r = await api.call('GET', '/api/v2/roles');
        expect(r.type).toBe(ct('role', 'list'));
        const admin = r.body.find((x: { name: string }) => x.name === 'test-admin');
        expect(keys(admin)).toEqual(ROLE_KEYS);
        expect(admin).toMatchObject({ jig_name: 'test', bootstrap: true, provides: [], conflicts: [] });
        const byId = await api.call('GET', `/api/v2/roles/${admin.id}`);
        expect(byId.type).toBe(ct('role', 'obj'));
        expect(byId.body.name).toBe('test-admin');
        const missing = await api.call('GET', '/api/v2/roles/test-admn');
        expect(missing.status).toBe(404);
        expect(missing.body.message).toMatch(/did you mean 'test-admin'/);
      });

      it('updates description and template; ignores other keys', async () => {
        const r = await api.call('PUT', '/api/v2/roles/test-server', { description: 'the server', template: { delay: 2, extra: { a: 1 } }, jig_name: 'noop', cohort: '99' });
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ description: 'the server', jig_name: 'test' });
        expect(r.body.cohort).not.toBe(99);
        const row = await api.cb.engine.db.selectFrom('roles').select('template').where('name', '=', 'test-server').executeTakeFirstOrThrow();
        expect(JSON.parse(row.template)).toEqual({ delay: 2, extra: { a: 1 } });
        expect((await api.call('PUT', '/api/v2/roles/test-server', { template: '{"delay":3}' })).status).toBe(200);
        const after = await api.cb.engine.db.selectFrom('roles').select('template').where('name', '=', 'test-server').executeTakeFirstOrThrow();
        expect(JSON.parse(after.template)).toEqual({ delay: 3 });
        expect((await api.call('PUT', '/api/v2/roles/test-server', { template: '[1]' })).status).toBe(422);
      });

      it('has sample and match', async () => {
        const s = await api.call('GET', '/api/v2/roles/sample');
        expect(keys(s.body)).toEqual(ROLE_KEYS.filter((k) => k !== 'id' && k !== 'barclamp_id' && !k.endsWith('_at')));
        const m = await api.call('POST', '/api/v2/roles/match', { jig_name: 'test', bootstrap: 'true' });
        expect(m.body.map((x: { name: string }) => x.name).sort()).toEqual(['test-admin', 'test-discovery']);
      });

      it('POST is 405 except under a deployment, where it adds a deployment-role', async () => {
        const r = await api.call('POST', '/api/v2/roles', { name: 'x' });
        expect(r.status).toBe(405);
        await api.call('POST', '/api/v2/deployments', { name: 'roledep' });
        const add = await api.call('POST', '/api/v2/deployments/roledep/roles', { role: 'test-client-client' });
        expect(add.status).toBe(200);
        expect(add.type).toBe(ct('role', 'obj'));
        expect(add.body.name).toBe('test-client-client');
        const dep = (await api.call('GET', '/api/v2/deployments/roledep')).body;
        const drs = await api.cb.engine.db.selectFrom('deployment_roles').select('role_id').where('deployment_id', '=', dep.id).execute();
        expect(drs.map((d) => d.role_id)).toEqual([add.body.id]);
        // again, by id: still one
        expect((await api.call('POST', `/api/v2/deployments/${dep.id}/roles`, { role_id: String(add.body.id) })).status).toBe(200);
        expect(await api.cb.engine.db.selectFrom('deployment_roles').select('id').where('deployment_id', '=', dep.id).execute()).toHaveLength(1);
        expect((await api.call('POST', '/api/v2/deployments/roledep/roles', {})).status).toBe(422);
        expect((await api.call('POST', '/api/v2/deployments/roledep/roles', { role: 'nope' })).status).toBe(404);
      });
    });

    describe('hammers', () => {
      let nodeId: number;
      beforeAll(async () => {
        nodeId = (await api.cb.engine.createNode({ name: 'sim1.crowbar.test', hammers: ['sim'] })).id;
      });

      it('seeds the ssh available hammer (SecureShellHammer, priority 0)', async () => {
        const r = await api.call('GET', '/api/v2/available_hammers');
        expect(r.type).toBe(ct('available_hammer', 'list'));
        const ssh = r.body.find((h: { name: string }) => h.name === 'ssh');
        expect(ssh).toMatchObject({ klass: 'SecureShellHammer', priority: 0 });
        expect(keys(ssh)).toEqual(AVAILABLE_HAMMER_KEYS);
        const one = await api.call('GET', '/api/v2/available_hammers/ssh');
        expect(one.type).toBe(ct('available_hammer', 'obj'));
        expect(one.body.id).toBe(ssh.id);
        expect(keys((await api.call('GET', '/api/v2/available_hammers/sample')).body)).toEqual(['klass', 'name', 'priority']);
        expect((await api.call('POST', '/api/v2/available_hammers/match', { klass: 'SecureShellHammer' })).body.map((h: { name: string }) => h.name)).toEqual(['ssh']);
      });

      it("lists a node's hammers with their class as type, actions, and no authenticator", async () => {
        const r = await api.call('POST', '/api/v2/hammers/match', { node_id: String(nodeId) });
        expect(r.type).toBe(ct('hammer', 'list'));
        const byName = Object.fromEntries(r.body.map((h: { name: string }) => [h.name, h]));
        expect(Object.keys(byName).sort()).toEqual(['sim', 'ssh']);
        expect(keys(byName['ssh'])).toEqual(HAMMER_KEYS);
        expect(byName['ssh']).toMatchObject({ type: 'SecureShellHammer', username: 'root', priority: 0 });
        expect(byName['sim'].actions.power).toContain('status');
        const show = await api.call('GET', `/api/v2/hammers/${byName['ssh'].id}`);
        expect(show.type).toBe(ct('secure_shell_hammer', 'obj'));
        expect(show.raw).not.toContain('authenticator');
        expect((await api.call('GET', `/api/v2/hammers/${byName['sim'].id}`)).type).toBe(ct('sim_hammer', 'obj'));
        expect(keys((await api.call('GET', '/api/v2/hammers/sample')).body)).toEqual(['actions', 'endpoint', 'name', 'priority', 'type', 'username']);
      });

      it('performs power status and run on a sim node; unknown methods are 409', async () => {
        const sim = (await api.call('POST', '/api/v2/hammers/match', { node_id: nodeId, name: 'sim' })).body[0];
        const r = await api.call('POST', `/api/v2/hammers/${sim.id}/perform`, { method: 'status', args: [] });
        expect(r.status).toBe(200);
        expect(r.type).toBe(ct('sim_hammer', 'action'));
        expect(r.body).toEqual({ node: 'sim1.crowbar.test', name: 'sim', id: sim.id, method: 'status', args: [], result_type: 'action', results: 'on' });
        expect((await api.call('POST', `/api/v2/hammers/${sim.id}/perform`, { method: 'off' })).body.results).toBe('off');
        expect((await api.call('POST', `/api/v2/hammers/${sim.id}/perform`, { method: 'status' })).body.results).toBe('off');
        const run = await api.call('POST', `/api/v2/hammers/${sim.id}/perform`, { method: 'run', args: ['echo hello $CROWBAR_SIM_NODE'] });
        expect(run.body).toMatchObject({ result_type: 'action', results: { stdout: 'hello sim1.crowbar.test\n', status: 0 } });
        const fail = await api.call('POST', `/api/v2/hammers/${sim.id}/perform`, { method: 'run', args: [] });
        expect(fail.body).toMatchObject({ result_type: 'exception' });
        expect(fail.body.results).toMatch(/needs a command/);

        const bad = await api.call('POST', `/api/v2/hammers/${sim.id}/perform`, { method: 'explode' });
        expect(bad.status).toBe(409);
        expect(bad.body).toMatchObject({ status: 409 });
        expect(bad.body.message).toMatch(/'explode' is not an action/);
        const ssh = (await api.call('POST', '/api/v2/hammers/match', { node_id: nodeId, name: 'ssh' })).body[0];
        // the ssh hammer offers reboot; this test node has no sshd, so the action reports the transport's failure
        const reboot = await api.call('POST', `/api/v2/hammers/${ssh.id}/perform`, { method: 'reboot' });
        expect(reboot.status).toBe(200);
        expect(reboot.body).toMatchObject({ method: 'reboot', result_type: 'exception' });
        expect((await api.call('POST', `/api/v2/hammers/${sim.id}/perform`, {})).status).toBe(422);
      });

      it('forgets an ssh hammer\'s pinned host key; a hammer that pins none is 409', async () => {
        const ssh = (await api.call('POST', '/api/v2/hammers/match', { node_id: nodeId, name: 'ssh' })).body[0];
        const r = await api.call('DELETE', `/api/v2/hammers/${ssh.id}/host_key`);
        expect(r.status).toBe(200);
        expect(r.type).toBe(ct('hammer_host_key', 'obj'));
        // nothing was pinned for this node (it has no sshd): forgotten is null, and saying so is not an error
        expect(r.body).toEqual({ hammer_id: ssh.id, node: 'sim1.crowbar.test', host: 'sim1.crowbar.test:22', forgotten: null });
        const sim = (await api.call('POST', '/api/v2/hammers/match', { node_id: nodeId, name: 'sim' })).body[0];
        const bad = await api.call('DELETE', `/api/v2/hammers/${sim.id}/host_key`);
        expect(bad.status).toBe(409);
        expect(bad.body.message).toBe("the sim hammer of node 'sim1.crowbar.test' pins no host keys");
      });

      it('creates, updates and deletes available hammers and hammers', async () => {
        const ah = await api.call('POST', '/api/v2/available_hammers', { name: 'fake', klass: 'FakeHammer', priority: '5' });
        expect(ah.status).toBe(200);
        expect(ah.body).toMatchObject({ name: 'fake', klass: 'FakeHammer', priority: 5 });
        expect((await api.call('POST', '/api/v2/available_hammers', { name: 'fake', klass: 'X' })).status).toBe(409);

        expect((await api.call('POST', '/api/v2/hammers', { node_id: nodeId, available_hammer_id: 'fake' })).status).toBe(422);
        const h = await api.call('POST', '/api/v2/hammers', { node_id: String(nodeId), available_hammer_id: String(ah.body.id), username: 'bob', authenticator: 'secret', ignored: 1 });
        expect(h.status).toBe(200);
        expect(h.type).toBe(ct('fake_hammer', 'obj'));
        expect(keys(h.body)).toEqual(HAMMER_KEYS);
        expect(h.body).toMatchObject({ node_id: nodeId, name: 'fake', type: 'FakeHammer', priority: 5, username: 'bob', actions: {} });
        expect((await api.call('POST', '/api/v2/hammers', { node: 'sim1.crowbar.test', available_hammer: 'fake', username: 'x' })).status).toBe(409);

        const u = await api.call('PUT', `/api/v2/hammers/${h.body.id}`, { username: 'alice', priority: '7', endpoint: '10.0.0.9', authenticator: 'other' });
        expect(u.body).toMatchObject({ username: 'alice', priority: 7, endpoint: '10.0.0.9' });
        expect(u.raw).not.toContain('other');
        const row = await api.cb.engine.db.selectFrom('hammers').select('authenticator').where('id', '=', h.body.id).executeTakeFirstOrThrow();
        expect(row.authenticator).toBe('other');

        expect((await api.call('DELETE', '/api/v2/available_hammers/fake')).status).toBe(409);
        const d = await api.call('DELETE', `/api/v2/hammers/${h.body.id}`);
        expect(d.status).toBe(200);
        expect(d.type).toBe(ct('fake_hammer', 'empty'));
        expect((await api.call('GET', `/api/v2/hammers/${h.body.id}`)).status).toBe(404);
        const renamed = await api.call('PUT', '/api/v2/available_hammers/fake', { priority: '1', name: 'fake2' });
        expect(renamed.body).toMatchObject({ name: 'fake2', priority: 1 });
        const dah = await api.call('DELETE', '/api/v2/available_hammers/fake2');
        expect(dah.status).toBe(200);
        expect(dah.type).toBe(ct('available_hammer', 'empty'));
        expect((await api.call('GET', '/api/v2/available_hammers/fake2')).status).toBe(404);
      });
    });
  });
}
