import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

for (const dialect of storeDialects()) {
  describe(`/api/test/nodes and /api/status/queue (${dialect})`, () => {
    let api: TestApi;
    beforeAll(async () => {
      api = await startTestApi(dialect);
    });
    afterAll(async () => api?.cleanup());

    it('loads ohai-style discovery into a node, with a fresh MAC each time', async () => {
      const n = await api.call('POST', '/api/v2/nodes', { name: 'disc.crowbar.test' });
      expect(n.status).toBe(200);
      const r = await api.call('PUT', '/api/test/nodes/disc.crowbar.test', { source: 'node_discovery' });
      expect(r.status).toBe(200);
      expect(r.type).toBe('application/vnd.crowbar.node.array+json; version=2.0');
      expect(r.body).toEqual([n.body.id]);
      const serial = await api.call('GET', '/api/v2/nodes/disc.crowbar.test/attribs/system_serial_number');
      expect(serial.body.value).toEqual(expect.any(String));
      const macs = async () => {
        const row = await api.cb.engine.db.selectFrom('nodes').select('discovery').where('name', '=', 'disc.crowbar.test').executeTakeFirstOrThrow();
        const ifaces = JSON.parse(row.discovery).ohai.network.interfaces;
        return Object.values(ifaces).flatMap((i: any) => Object.entries(i.addresses ?? {}).filter(([, a]: any) => a.family === 'lladdr').map(([m]) => m));
      };
      const first = await macs();
      expect(first.length).toBeGreaterThan(0);
      await api.call('PUT', '/api/test/nodes/disc.crowbar.test', {});
      expect(await macs()).not.toEqual(first);
      const bad = await api.call('PUT', '/api/test/nodes/disc.crowbar.test', { source: 'elsewhere' });
      expect(bad.status).toBe(422);
      expect(bad.body.message).toMatch(/unknown test data source 'elsewhere'/);
    });

    it('reports the queue as counts', async () => {
      const r = await api.call('GET', '/api/status/queue');
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ running: expect.any(Number), async: expect.any(Number), todo: expect.any(Number) });
    });

    it('refuses test data outside development mode', async () => {
      const prod = await startTestApi(dialect, { dev: false, admin: false });
      try {
        const r = await prod.call('PUT', '/api/test/nodes', { source: 'node_discovery' });
        expect(r.status).toBe(404);
        expect(r.body.message).toMatch(/development mode/);
      } finally {
        await prod.cleanup();
      }
    });
  });
}
