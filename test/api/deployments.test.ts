import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

for (const dialect of storeDialects()) {
  describe(`/api/v2/deployments (${dialect})`, () => {
    let api: TestApi;
    beforeAll(async () => {
      api = await startTestApi(dialect);
    });
    afterAll(async () => api?.cleanup());

    it('lists the system deployment with id 1 and exact keys, compact JSON, vendor type', async () => {
      const r = await api.call('GET', '/api/v2/deployments');
      expect(r.status).toBe(200);
      expect(r.type).toBe('application/vnd.crowbar.deployment.list+json; version=2.0');
      expect(r.raw).not.toMatch(/": /);
      expect(r.body[0]).toMatchObject({ id: 1, name: 'system', system: true, parent_id: null });
      expect(Object.keys(r.body[0]).sort()).toEqual(['created_at', 'description', 'id', 'name', 'parent_id', 'state', 'system', 'updated_at']);
    });

    it('creates, commits, proposes and deletes by name, with 200 everywhere', async () => {
      const c = await api.call('POST', '/api/v2/deployments', { name: 'going.going.gone', description: 'x', order: '9999' });
      expect(c.status).toBe(200);
      expect(c.body).toMatchObject({ name: 'going.going.gone', state: 0, parent_id: 1 });
      expect((await api.call('PUT', '/api/v2/deployments/going.going.gone/commit')).body.state).toBe(2);
      expect((await api.call('PUT', `/api/v2/deployments/${c.body.id}/recall`)).body.state).toBe(0);
      const d = await api.call('DELETE', '/api/v2/deployments/going.going.gone');
      expect(d.status).toBe(200);
      expect(d.type).toBe('application/vnd.crowbar.deployment.empty+json; version=2.0');
      const g = await api.call('GET', '/api/v2/deployments/going.going.gone');
      expect(g.status).toBe(404);
      expect(g.body).toEqual({ status: 404, message: "deployment 'going.going.gone' not found" });
    });

    it('refuses bad input with a 4xx naming the problem, and writes nothing', async () => {
      const r = await api.call('POST', '/api/v2/deployments', { description: 'no name' });
      expect(r.status).toBe(422);
      expect(r.body.message).toMatch(/'name' is required/);
      const bad = await api.inject({ method: 'POST', url: '/api/v2/deployments', headers: { 'content-type': 'application/json' }, payload: '{"name": ' });
      expect(bad.statusCode).toBe(400);
      expect(bad.headers['content-type']).toBe('application/vnd.crowbar.error.error+json; version=2.0');
      expect((await api.call('PUT', '/api/v2/deployments/system/propose')).status).toBe(409);
      expect((await api.call('GET', '/api/v2/deployments')).body.length).toBe(1);
    });

    it('trims objects to x-return-attributes', async () => {
      const r = await api.call('GET', '/api/v2/deployments/system', undefined, { 'x-return-attributes': '["name","id"]' });
      expect(r.body).toEqual({ id: 1, name: 'system' });
    });
  });
}
