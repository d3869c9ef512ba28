import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

const ct = (type: string, form: string) => `application/vnd.crowbar.${type}.${form}+json; version=2.0`;
const keys = (o: object) => Object.keys(o).sort();

const ATTRIB_KEYS = ['barclamp_id', 'created_at', 'default', 'description', 'id', 'map', 'name', 'order', 'role_id', 'schema', 'type', 'ui_renderer', 'updated_at', 'writable'];
const NESTED_KEYS = [...ATTRIB_KEYS, 'value'].sort();

const BARCLAMP = {
  barclamp: { name: 'apiattr', parent: 'core' },
  roles: [
    {
      name: 'apiattr-thing',
      jig: 'noop',
      attribs: [
        { name: 'apiattr-count', map: 'apiattr/count', description: 'a count', default: 1, schema: { type: 'int', required: true } },
        { name: 'apiattr-ro', map: 'apiattr/ro', description: 'read-only', default: 'fixed' },
      ],
    },
  ],
};

for (const dialect of storeDialects()) {
  describe(`/api/v2 attribs (${dialect})`, () => {
    let api: TestApi;
    let nodeId: number;
    let nrId: number;
    let drId: number;
    beforeAll(async () => {
      api = await startTestApi(dialect, { anneal: false });
      expect((await api.call('POST', '/api/v2/barclamps', { value: BARCLAMP })).status).toBe(200);
      expect((await api.call('POST', '/api/v2/deployments', { name: 'attrdep' })).status).toBe(200);
      nodeId = (await api.cb.engine.createNode({ name: 'n1.crowbar.test', hammers: ['sim'] })).id;
      const nr = await api.cb.engine.bind('apiattr-thing', nodeId, 'attrdep');
      nrId = nr.id;
      const dr = await api.cb.engine.db.selectFrom('deployment_roles').select('id').where('deployment_id', '=', nr.deployment_id).where('role_id', '=', nr.role_id).executeTakeFirstOrThrow();
      drId = dr.id;
    });
    afterAll(async () => api?.cleanup());

    const nrData = async () => {
      const row = await api.cb.engine.db.selectFrom('node_roles').select(['proposed_data', 'committed_data']).where('id', '=', nrId).executeTakeFirstOrThrow();
      return { proposed: JSON.parse(row.proposed_data), committed: JSON.parse(row.committed_data) };
    };

    describe('the catalog', () => {
      it('lists attribs with exact keys; test-random is seeded; by id or name', async () => {
        const r = await api.call('GET', '/api/v2/attribs');
        expect(r.status).toBe(200);
        expect(r.type).toBe(ct('attrib', 'list'));
        expect(r.raw).not.toMatch(/": /);
        const random = r.body.find((a: { name: string }) => a.name === 'test-random');
        expect(keys(random)).toEqual(ATTRIB_KEYS);
        expect(random).toMatchObject({ map: 'test/random', role_id: null, writable: false, schema: null, default: { value: 0 } });
        const one = await api.call('GET', `/api/v2/attribs/${random.id}`);
        expect(one.type).toBe(ct('attrib', 'obj'));
        expect(one.body).toEqual(random);
        expect((await api.call('GET', '/api/v2/attribs/test-random')).body.id).toBe(random.id);
        const count = (await api.call('GET', '/api/v2/attribs/apiattr-count')).body;
        expect(count).toMatchObject({ writable: true, schema: { type: 'int', required: true }, default: { value: 1 } });
        expect((await api.call('GET', '/api/v2/attribs/test-randon')).body.message).toMatch(/did you mean 'test-random'/);
      });

      it('has sample and match', async () => {
        const s = await api.call('GET', '/api/v2/attribs/sample');
        expect(keys(s.body)).toEqual(ATTRIB_KEYS.filter((k) => k !== 'id' && !k.endsWith('_id') && !k.endsWith('_at')));
        const m = await api.call('POST', '/api/v2/attribs/match', { map: 'test/random' });
        expect(m.type).toBe(ct('attrib', 'list'));
        expect(m.body.map((a: { name: string }) => a.name)).toEqual(['test-random']);
        const w = await api.call('POST', '/api/v2/attribs/match', { writable: 'true', name: 'apiattr-count' });
        expect(w.body).toHaveLength(1);
      });

      it('refuses writes outside a target with 405', async () => {
        for (const m of ['PUT', 'PATCH', 'DELETE']) {
          const r = await api.call(m, '/api/v2/attribs/test-random', m === 'PATCH' ? [] : { value: 1 });
          expect(r.status).toBe(405);
          expect(r.body).toMatchObject({ status: 405 });
        }
        expect((await api.call('POST', '/api/v2/attribs', { name: 'x' })).status).toBe(405);
      });
    });

    describe('values on a target', () => {
      it("lists a node's attribs (its own and its bound roles') with values", async () => {
        const r = await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs');
        expect(r.status).toBe(200);
        expect(r.type).toBe(ct('attrib', 'list'));
        for (const a of r.body) expect(keys(a)).toEqual(NESTED_KEYS);
        const byName = Object.fromEntries(r.body.map((a: { name: string; value: unknown }) => [a.name, a.value]));
        expect(byName).toMatchObject({ 'test-random': 0, 'apiattr-count': 1, 'apiattr-ro': 'fixed' });
        expect('stay_on' in byName).toBe(true);
        expect('test-admin-delay' in byName).toBe(false);
        expect((await api.call('GET', `/api/v2/nodes/${nodeId}/attribs`)).body).toHaveLength(r.body.length);
      });

      it('shows one attrib on a node with its value and node_id; 404 when its role is not bound there', async () => {
        const r = await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs/apiattr-count');
        expect(r.type).toBe(ct('attrib', 'obj'));
        expect(r.body).toMatchObject({ name: 'apiattr-count', value: 1, node_id: nodeId });
        expect((await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs/test-admin-delay')).status).toBe(404);
        expect((await api.call('GET', '/api/v2/nodes/nope.crowbar.test/attribs')).status).toBe(404);
        expect((await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs/test-random?bucket=bogus')).status).toBe(422);
      });

      it('writes a node-level attrib into the hint, validated against its schema (string scalars coerced)', async () => {
        const r = await api.call('PUT', '/api/v2/nodes/n1.crowbar.test/attribs/stay_on', { value: 'true', ignored: 'x' });
        expect(r.status).toBe(200);
        expect(r.type).toBe(ct('attrib', 'obj'));
        expect(r.body).toMatchObject({ name: 'stay_on', value: true });
        expect((await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs/stay_on?bucket=hint')).body.value).toBe(true);

        const bad = await api.call('PUT', '/api/v2/nodes/n1.crowbar.test/attribs/stay_on', { value: 'sometimes' });
        expect(bad.status).toBe(422);
        expect(bad.body.message).toMatch(/invalid value for attrib 'stay_on'/);
        expect(bad.body.details.errors.length).toBeGreaterThan(0);
        expect((await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs/stay_on')).body.value).toBe(true);
      });

      it('refuses a user write to a read-only attrib with 409 naming it; note bucket is allowed', async () => {
        const r = await api.call('PUT', '/api/v2/nodes/n1.crowbar.test/attribs/test-random', { value: '5' });
        expect(r.status).toBe(409);
        expect(r.body).toMatchObject({ status: 409 });
        expect(r.body.message).toMatch(/'test-random' is read-only/);
        expect((await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs/test-random')).body.value).toBe(0);

        const note = await api.call('PUT', '/api/v2/nodes/n1.crowbar.test/attribs/test-random', { value: 'remember', bucket: 'note' });
        expect(note.status).toBe(200);
        expect((await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs/test-random?bucket=note')).body.value).toBe('remember');
        expect((await api.call('GET', '/api/v2/nodes/n1.crowbar.test/attribs/test-random')).body.value).toBe(0);

        const sys = await api.call('PUT', '/api/v2/nodes/n1.crowbar.test/attribs/test-random?bucket=system', { value: 5 });
        expect(sys.status).toBe(405);
        expect((await api.call('PUT', '/api/v2/nodes/n1.crowbar.test/attribs/stay_on', {})).status).toBe(422);
      });

      it("writes a proposed node-role's user bucket into its proposed data; invalid values write nothing", async () => {
        const r = await api.call('PUT', `/api/v2/node_roles/${nrId}/attribs/apiattr-count`, { value: '7' });
        expect(r.status).toBe(200);
        expect(r.body.value).toBe(7);
        expect((await nrData()).proposed).toEqual({ apiattr: { count: 7 } });
        expect((await api.call('GET', `/api/v2/node_roles/${nrId}/attribs/apiattr-count?bucket=proposed`)).body.value).toBe(7);
        expect((await api.call('GET', `/api/v2/node_roles/${nrId}/attribs/apiattr-count?bucket=committed`)).body.value).toBe(1);

        const bad = await api.call('PUT', `/api/v2/node_roles/${nrId}/attribs/apiattr-count`, { value: 'seven' });
        expect(bad.status).toBe(422);
        expect((await nrData()).proposed).toEqual({ apiattr: { count: 7 } });

        // through the node: the same node-role
        expect((await api.call('PUT', '/api/v2/nodes/n1.crowbar.test/attribs/apiattr-count', { attrib: { value: 6 } })).status).toBe(200);
        expect((await nrData()).proposed).toEqual({ apiattr: { count: 6 } });
        const list = await api.call('GET', `/api/v2/node_roles/${nrId}/attribs?bucket=proposed`);
        expect(list.body.map((a: { name: string; value: unknown }) => [a.name, a.value])).toEqual([['apiattr-count', 6], ['apiattr-ro', 'fixed']]);
        expect((await api.call('GET', '/api/v2/node_roles/abc/attribs')).status).toBe(404);
      });

      it('PATCH takes a JSON Patch that may only add or replace /value', async () => {
        const r = await api.call('PATCH', `/api/v2/node_roles/${nrId}/attribs/apiattr-count`, [{ op: 'replace', path: '/value', value: '8' }]);
        expect(r.status).toBe(200);
        expect(r.body.value).toBe(8);
        expect((await nrData()).proposed).toEqual({ apiattr: { count: 8 } });
        for (const patch of [
          [{ op: 'remove', path: '/value' }],
          [{ op: 'replace', path: '/name', value: 'x' }],
          [{ op: 'move', from: '/value', path: '/map' }],
          { value: 9 },
        ]) {
          const bad = await api.call('PATCH', `/api/v2/node_roles/${nrId}/attribs/apiattr-count`, patch);
          expect(bad.status).toBe(422);
        }
        expect((await api.call('PATCH', `/api/v2/node_roles/${nrId}/attribs/apiattr-count`, [{ op: 'add', path: '/value', value: 'x' }])).status).toBe(422);
        expect((await nrData()).proposed).toEqual({ apiattr: { count: 8 } });
      });

      it('writes a deployment (its deployment-role proposed data) and reads it back through the deployment-role', async () => {
        const list = await api.call('GET', '/api/v2/deployments/attrdep/attribs');
        expect(list.body.map((a: { name: string }) => a.name)).toEqual(['apiattr-count', 'apiattr-ro']);
        const r = await api.call('PUT', '/api/v2/deployments/attrdep/attribs/apiattr-count', { value: 9 });
        expect(r.status).toBe(200);
        const dr = await api.cb.engine.db.selectFrom('deployment_roles').select('proposed_data').where('id', '=', drId).executeTakeFirstOrThrow();
        expect(JSON.parse(dr.proposed_data!)).toEqual({ apiattr: { count: 9 } });
        expect((await api.call('GET', `/api/v2/deployment_roles/${drId}/attribs/apiattr-count?bucket=proposed`)).body.value).toBe(9);
        expect((await api.call('GET', `/api/v2/deployment_roles/${drId}/attribs`)).body).toHaveLength(2);
        // a role the deployment does not have: nothing is created by reading
        expect((await api.call('GET', '/api/v2/deployments/attrdep/attribs/test-admin-delay')).status).toBe(404);
        const depId = (await api.call('GET', '/api/v2/deployments/attrdep')).body.id;
        expect(await api.cb.engine.db.selectFrom('deployment_roles').select('id').where('deployment_id', '=', depId).execute()).toHaveLength(1);
      });

      it("writes a role's template", async () => {
        const r = await api.call('PUT', '/api/v2/roles/apiattr-thing/attribs/apiattr-count', { value: '3' });
        expect(r.status).toBe(200);
        const list = await api.call('GET', '/api/v2/roles/apiattr-thing/attribs');
        expect(list.body.map((a: { name: string; value: unknown }) => [a.name, a.value])).toEqual([['apiattr-count', 3], ['apiattr-ro', 'fixed']]);
        const role = await api.cb.engine.db.selectFrom('roles').select('template').where('name', '=', 'apiattr-thing').executeTakeFirstOrThrow();
        expect(JSON.parse(role.template)).toEqual({ apiattr: { count: 3 } });
      });
    });
  });
}
