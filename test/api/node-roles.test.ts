import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

const NODE_ROLE_KEYS = ['available', 'cohort', 'created_at', 'deployment_id', 'id', 'node_error', 'node_id', 'order', 'role_id', 'run_count', 'runlog', 'state', 'status', 'updated_at'];
const DEPLOYMENT_ROLE_KEYS = ['created_at', 'deployment_id', 'id', 'role_id', 'updated_at'];
const RUN_QUEUE_KEYS = ['id', 'job_id', 'node_id', 'node_role_id', 'queue', 'run_data', 'running'];
const type = (t: string, form: string) => `application/vnd.crowbar.${t}.${form}+json; version=2.0`;

async function anneal(api: TestApi, timeoutMs = 30_000): Promise<{ status: number; message: string }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await api.call('GET', '/api/v2/anneal');
    if (r.status === 200 || r.status === 409) return { status: r.status, message: r.body.message };
    if (Date.now() > until) throw new Error(`annealer still '${r.body.message}' after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** A node the annealer can run on: created over the API, with a simulated machine (sim hammer). */
async function simNode(api: TestApi, name: string, extra: Record<string, unknown> = {}) {
  const n = await api.call('POST', '/api/v2/nodes', { name, alive: 'true', ...extra });
  expect(n.status).toBe(200);
  expect((await api.call('POST', '/api/v2/hammers', { node: name, available_hammer: 'sim', username: 'root' })).status).toBe(200);
  return n.body;
}

for (const dialect of storeDialects()) {
  describe(`/api/v2/node_roles, deployment_roles, runs (${dialect})`, () => {
    let api: TestApi;
    beforeAll(async () => {
      api = await startTestApi(dialect);
      await simNode(api, 'nr1.example.com');
    });
    afterAll(async () => api?.cleanup());

    it('lists node-roles with the exact 14 keys; shows by id; node-roles have no natural key', async () => {
      const r = await api.call('GET', '/api/v2/node_roles');
      expect(r.status).toBe(200);
      expect(r.type).toBe(type('node_role', 'list'));
      expect(r.raw).not.toMatch(/": /);
      expect(r.body.length).toBeGreaterThan(0);
      for (const nr of r.body) expect(Object.keys(nr).sort()).toEqual(NODE_ROLE_KEYS);
      const one = await api.call('GET', `/api/v2/node_roles/${r.body[0].id}`);
      expect(one.type).toBe(type('node_role', 'obj'));
      expect(one.body).toEqual(r.body[0]);
      const byName = await api.call('GET', '/api/v2/node_roles/test-admin');
      expect(byName.status).toBe(404);
      expect(byName.body.message).toMatch(/numeric id/);
    });

    it('binds with string ids and data, refuses a bad binding with a 409 naming role, node and reason, and writes nothing', async () => {
      const before = (await api.call('GET', '/api/v2/node_roles')).body.length;
      const node = (await api.call('GET', '/api/v2/nodes/nr1.example.com')).body;
      const role = (await api.call('GET', '/api/v2/roles/test-server')).body;
      const r = await api.call('POST', '/api/v2/node_roles', { node_id: String(node.id), role_id: String(role.id), deployment: 'system', data: { marker: 'mine' } });
      expect(r.status).toBe(200);
      expect(Object.keys(r.body).sort()).toEqual(NODE_ROLE_KEYS);
      expect(r.body).toMatchObject({ node_id: node.id, role_id: role.id, deployment_id: 1, state: 4, node_error: false });
      const row = await api.cb.engine.db.selectFrom('node_roles').select('proposed_data').where('id', '=', r.body.id).executeTakeFirstOrThrow();
      expect(JSON.parse(row.proposed_data)).toEqual({ marker: 'mine' });

      const bad = await api.call('POST', '/api/v2/node_roles', { node: 'nr1.example.com', role: 'crowbar-managed-node' });
      expect(bad.status).toBe(409);
      expect(bad.body.message).toMatch(/^cannot bind role 'crowbar-managed-node' to node 'nr1.example.com': required role\(s\) .* are not imported/);
      for (const [payload, status, msg] of [
        [{ role: 'test-server' }, 422, /'node' \(or 'node_id'\) is required/],
        [{ node: 'nr1.example.com' }, 422, /'role' \(or 'role_id'\) is required/],
        [{ node: 'nr1.example.com', role: 'test-event', data: 'not json' }, 422, /'data' must be a JSON object/],
        [{ node: 'nope.example.com', role: 'test-event' }, 404, /node 'nope.example.com' not found/],
        [{ node: 'nr1.example.com', role: 'no-such-role' }, 404, /role 'no-such-role' not found/],
      ] as const) {
        const res = await api.call('POST', '/api/v2/node_roles', payload);
        expect(res.status, JSON.stringify(payload)).toBe(status);
        expect(res.body.message).toMatch(msg);
      }
      // test-server plus its implicit parent? (none: test-admin is shared from the admin node) → one new node-role
      expect((await api.call('GET', '/api/v2/node_roles')).body.length).toBe(before + 1);
    });

    it('changes data only while proposed (PUT and RFC 6902 PATCH under /data); commit, anneal; retry and propose', async () => {
      const nr = (await api.call('GET', '/api/v2/nodes/nr1.example.com/node_roles/test-server')).body;
      const put = await api.call('PUT', `/api/v2/node_roles/${nr.id}`, { data: { marker: 'put' } });
      expect(put.status).toBe(200);
      const patch = await api.call('PATCH', `/api/v2/node_roles/${nr.id}`, [{ op: 'add', path: '/data/extra', value: 1 }]);
      expect(patch.status).toBe(200);
      const refusedPath = await api.call('PATCH', `/api/v2/node_roles/${nr.id}`, [{ op: 'replace', path: '/state', value: 0 }]);
      expect(refusedPath.status).toBe(422);
      const row = async () => JSON.parse((await api.cb.engine.db.selectFrom('node_roles').select('proposed_data').where('id', '=', nr.id).executeTakeFirstOrThrow()).proposed_data);
      expect(await row()).toEqual({ marker: 'put', extra: 1 });

      const c = await api.call('PUT', `/api/v2/node_roles/${nr.id}/commit`);
      expect(c.status).toBe(200);
      expect([1, 3]).toContain(c.body.state);
      const late = await api.call('PUT', `/api/v2/node_roles/${nr.id}`, { data: { marker: 'late' } });
      expect(late.status).toBe(409);
      expect(late.body.message).toMatch(/only change while it is proposed/);
      expect(await row()).toEqual({ marker: 'put', extra: 1 });
      expect((await api.call('PUT', `/api/v2/node_roles/${nr.id}/commit`)).status).toBe(409);

      expect((await api.call('PUT', '/api/v2/nodes/nr1.example.com/commit')).status).toBe(200);
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });
      const active = (await api.call('GET', `/api/v2/node_roles/${nr.id}`)).body;
      expect(active).toMatchObject({ state: 0, run_count: 1, node_error: false });
      expect(active.runlog).toMatch(/TEST JIG >> Working nr1.example.com put/);

      const retry = await api.call('PUT', `/api/v2/node_roles/${nr.id}/retry`);
      expect(retry.status).toBe(200);
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });
      expect((await api.call('GET', `/api/v2/node_roles/${nr.id}`)).body.run_count).toBe(2);
      const why = await api.call('GET', `/api/v2/node_roles/${nr.id}/why`);
      expect(why.body).toEqual({ id: nr.id, state: 'active', reasons: [] });

      expect((await api.call('PUT', `/api/v2/node_roles/${nr.id}/propose`)).body.state).toBe(4);
      const propWhy = await api.call('GET', `/api/v2/node_roles/${nr.id}/why`);
      expect(propWhy.body.state).toBe('proposed');
      expect((await api.call('PUT', `/api/v2/node_roles/${nr.id}/commit`)).status).toBe(200);
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });
    });

    it('test-fails: anneal 409, node_error on every node-role of the node, reason in why, log in runs; replay and delete', async () => {
      await simNode(api, 'fails.example.com');
      const ok = (await api.call('POST', '/api/v2/node_roles', { node: 'fails.example.com', role: 'test-event' })).body;
      const nr = (await api.call('POST', '/api/v2/node_roles', { node: 'fails.example.com', role: 'test-fails' })).body;
      expect((await api.call('PUT', '/api/v2/nodes/fails.example.com/commit')).status).toBe(200);
      expect(await anneal(api)).toEqual({ status: 409, message: 'failed' });
      const failed = (await api.call('GET', `/api/v2/node_roles/${nr.id}`)).body;
      expect(failed).toMatchObject({ state: -1, node_error: true });
      expect(failed.runlog).toMatch(/test-fails always fails/);
      const others = (await api.call('GET', '/api/v2/nodes/fails.example.com/node_roles')).body;
      expect(others.every((n: any) => n.node_error)).toBe(true);
      expect((await api.call('GET', '/api/v2/nodes/nr1.example.com/node_roles')).body.every((n: any) => !n.node_error)).toBe(true);

      const why = await api.call('GET', `/api/v2/node_roles/${nr.id}/why`);
      expect(why.status).toBe(200);
      expect(why.type).toBe(type('node_role_why', 'obj'));
      expect(why.body.state).toBe('error');
      expect(why.body.reasons).toEqual(expect.arrayContaining([expect.objectContaining({ reason: 'error', runlog: expect.stringMatching(/test-fails always fails/) })]));

      const runs = await api.call('GET', `/api/v2/node_roles/${nr.id}/runs`);
      expect(runs.status).toBe(200);
      expect(runs.type).toBe(type('run', 'list'));
      expect(runs.body).toHaveLength(1);
      const run = runs.body[0];
      expect(run).toMatchObject({ node_role_id: nr.id, status: 'failed', jig: 'test', exit_status: 1 });
      expect(run.log).toMatch(/TEST JIG >> Working fails.example.com/);
      expect(run.error).toMatch(/test-fails always fails/);
      expect(run.inputs).toEqual(expect.objectContaining({ hints: expect.any(Object), quirks: [] }));
      expect(run.provenance).toEqual(expect.any(Object));
      expect(run.duration_ms).toEqual(expect.any(Number));
      const byId = await api.call('GET', `/api/v2/runs/${run.id}`);
      expect(byId.type).toBe(type('run', 'obj'));
      expect(byId.body).toEqual(run);

      // replaying a run re-executes it from its recorded inputs; newest run first
      const okRun = (await api.call('GET', `/api/v2/node_roles/${ok.id}/runs`)).body[0];
      expect(okRun.status).toBe('done');
      const rep = await api.call('POST', `/api/v2/runs/${okRun.id}/replay`);
      expect(rep.status).toBe(200);
      expect(rep.type).toBe(type('node_role', 'obj'));
      // the node is halted by its error only where the original would; with the default (descendants only) test-event runs again
      const replayed = await waitFor('the replay', async () => {
        const list = (await api.call('GET', `/api/v2/node_roles/${ok.id}/runs`)).body;
        return list.length === 2 && list[0].status === 'done' ? list : undefined;
      });
      expect(replayed[0]).toMatchObject({ replay_of: okRun.id, inputs: okRun.inputs });
      expect(replayed[0].id).toBeGreaterThan(replayed[1].id);
      expect((await api.call('POST', '/api/v2/runs/999999/replay')).status).toBe(404);

      const retry = await api.call('PUT', `/api/v2/node_roles/${nr.id}/retry`);
      expect(retry.status).toBe(200);
      expect(await anneal(api)).toEqual({ status: 409, message: 'failed' });
      expect((await api.call('GET', `/api/v2/node_roles/${nr.id}/runs`)).body).toHaveLength(2);
      const del = await api.call('DELETE', `/api/v2/node_roles/${nr.id}`);
      expect(del.status).toBe(200);
      expect(del.type).toBe(type('node_role', 'empty'));
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });
      expect((await api.call('GET', `/api/v2/node_roles/${nr.id}`)).status).toBe(404);
    });

    it('shows in-flight runs in the queue view (all, and per node name); numeric ids are runs', async () => {
      await simNode(api, 'async.example.com');
      const nr = (await api.call('POST', '/api/v2/node_roles', { node: 'async.example.com', role: 'test-async' })).body;
      expect((await api.call('PUT', '/api/v2/nodes/async.example.com/commit')).status).toBe(200);
      // the run is `running` while the jig works, then waits (async) for a retry
      const queue = await waitFor('the async run', async () => {
        const r = await api.call('GET', '/api/v2/runs');
        return r.body.find((x: any) => x.node_role_id === nr.id && !x.running) ? r : undefined;
      });
      expect(queue.type).toBe(type('run', 'list'));
      const entry = queue.body.find((x: any) => x.node_role_id === nr.id);
      expect(Object.keys(entry).sort()).toEqual(RUN_QUEUE_KEYS);
      expect(entry).toMatchObject({ running: false, queue: 'NodeRoleRunner', job_id: null, node_id: nr.node_id });
      expect(entry.run_data).toEqual({ data: expect.any(Object) });
      const perNode = await api.call('GET', '/api/v2/runs/async.example.com');
      expect(perNode.body).toEqual([entry]);
      expect((await api.call('GET', '/api/v2/runs/nr1.example.com')).body).toEqual([]);
      expect((await api.call('GET', '/api/v2/anneal')).body.message).toBe('working');
      const why = (await api.call('GET', `/api/v2/node_roles/${nr.id}/why`)).body;
      expect(why.reasons).toEqual([expect.objectContaining({ reason: 'async_in_progress', run_id: entry.id })]);

      expect((await api.call('PUT', `/api/v2/node_roles/${nr.id}/retry`)).status).toBe(200);
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });
      expect((await api.call('GET', '/api/v2/runs')).body).toEqual([]);
      expect((await api.call('GET', '/api/v2/runs/nope.example.com')).status).toBe(404);
      expect((await api.call('GET', '/api/v2/runs/987654')).status).toBe(404);
    });

    it('deployment-roles: exact 5 keys, by id or by role with ?deployment=, create, PUT data, PATCH 405, propose/commit, nested, delete', async () => {
      const list = await api.call('GET', '/api/v2/deployment_roles?deployment=system');
      expect(list.status).toBe(200);
      expect(list.type).toBe(type('deployment_role', 'list'));
      for (const dr of list.body) expect(Object.keys(dr).sort()).toEqual(DEPLOYMENT_ROLE_KEYS);
      const role = (await api.call('GET', '/api/v2/roles/test-server')).body;
      const mine = list.body.find((d: any) => d.role_id === role.id);
      for (const url of [`/api/v2/deployment_roles/${mine.id}`, '/api/v2/deployment_roles/test-server?deployment=system', `/api/v2/deployment_roles/${role.id}?deployment=system`, '/api/v2/deployment_roles/test-server']) {
        const r = await api.call('GET', url);
        expect(r.status, url).toBe(200);
        expect(r.type).toBe(type('deployment_role', 'obj'));
        expect(r.body).toEqual(mine);
      }

      expect((await api.call('POST', '/api/v2/deployments', { name: 'drdep' })).status).toBe(200);
      const dup = await api.call('POST', '/api/v2/deployment_roles', { role: 'test-server', deployment: 'system' });
      expect(dup.status).toBe(409);
      expect((await api.call('POST', '/api/v2/deployment_roles', { role: 'test-server' })).status).toBe(422);
      const created = await api.call('POST', '/api/v2/deployment_roles', { role_id: String(role.id), deployment: 'drdep', data: { marker: 'dr' } });
      expect(created.status).toBe(200);
      expect(Object.keys(created.body).sort()).toEqual(DEPLOYMENT_ROLE_KEYS);
      const id = created.body.id;
      const read = async () => api.cb.engine.db.selectFrom('deployment_roles').select(['proposed_data', 'committed_data']).where('id', '=', id).executeTakeFirstOrThrow();
      expect(JSON.parse((await read()).proposed_data!)).toEqual({ marker: 'dr' });

      expect((await api.call('PUT', `/api/v2/deployment_roles/${id}`, {})).status).toBe(422);
      expect((await api.call('PUT', `/api/v2/deployment_roles/${id}`, { data: '{"marker":"put"}' })).status).toBe(200);
      expect(JSON.parse((await read()).proposed_data!)).toEqual({ marker: 'put' });
      const patch = await api.call('PATCH', `/api/v2/deployment_roles/${id}`, [{ op: 'replace', path: '/data', value: {} }]);
      expect(patch.status).toBe(405);
      expect(patch.body).toEqual({ message: expect.stringMatching(/cannot be PATCHed/), status: 405 });

      expect((await api.call('PUT', `/api/v2/deployment_roles/${id}/commit`)).status).toBe(200);
      let row = await read();
      expect(row.proposed_data).toBeNull();
      expect(JSON.parse(row.committed_data)).toEqual({ marker: 'put' });
      expect((await api.call('PUT', `/api/v2/deployment_roles/test-server/propose?deployment=drdep`)).status).toBe(200);
      row = await read();
      expect(JSON.parse(row.proposed_data!)).toEqual({ marker: 'put' });

      const roles = await api.call('GET', `/api/v2/deployment_roles/${id}/roles`);
      expect(roles.body.map((r: any) => r.name)).toEqual(['test-server']);
      const nodes = await api.call('GET', `/api/v2/deployment_roles/${mine.id}/nodes`);
      expect(nodes.body.map((n: any) => n.name)).toEqual(['nr1.example.com']);
      expect((await api.call('GET', `/api/v2/deployment_roles/${id}/nodes`)).body).toEqual([]);

      const refused = await api.call('DELETE', `/api/v2/deployment_roles/${mine.id}`);
      expect(refused.status).toBe(409);
      expect(refused.body.message).toMatch(/still has 1 node-role/);
      const del = await api.call('DELETE', `/api/v2/deployment_roles/${id}`);
      expect(del.status).toBe(200);
      expect(del.type).toBe(type('deployment_role', 'empty'));
      expect((await api.call('GET', `/api/v2/deployment_roles/${id}`)).status).toBe(404);
      expect((await api.call('DELETE', '/api/v2/deployments/drdep')).status).toBe(200);
    });

    it('deployment nested lists, graph and plan: the plan shows what a commit would do and changes nothing', async () => {
      expect((await api.call('POST', '/api/v2/deployments', { name: 'plandep' })).status).toBe(200);
      await simNode(api, 'plan.example.com', { deployment: 'plandep', available: 'true' });
      const bound = await api.call('POST', '/api/v2/node_roles', { node: 'plan.example.com', role: 'test-client-client', deployment: 'plandep' });
      expect(bound.status).toBe(200);
      const server = (await api.call('GET', '/api/v2/deployment_roles/test-client?deployment=plandep')).body;
      expect((await api.call('PUT', `/api/v2/deployment_roles/${server.id}`, { data: { marker: 'new-client' } })).status).toBe(200);

      const nrs = await api.call('GET', '/api/v2/deployments/plandep/node_roles');
      expect(nrs.type).toBe(type('node_role', 'list'));
      const names = async (list: any[]) => Promise.all(list.map(async (n) => (await api.call('GET', `/api/v2/roles/${n.role_id}`)).body.name));
      // shared test-server comes from nr1 in system; the rest is bound on the plan node in plandep
      expect((await names(nrs.body)).sort()).toEqual(['test-client', 'test-client-client', 'test-library']);
      expect((await api.call('GET', '/api/v2/deployments/plandep/deployment_roles')).body.length).toBe(3);
      expect((await api.call('GET', '/api/v2/deployments/plandep/roles')).body.map((r: any) => r.name).sort()).toEqual(['test-client', 'test-client-client', 'test-library']);
      expect((await api.call('GET', '/api/v2/deployments/plandep/nodes')).body.map((n: any) => n.name).sort()).toEqual(['plan.example.com', 'plandep-phantom.internal.local']);

      const graph = await api.call('GET', '/api/v2/deployments/plandep/graph');
      expect(graph.status).toBe(200);
      expect(graph.type).toBe(type('deployment', 'array'));
      const client = graph.body.find((v: any) => v.name === 'plan.example.com: test-client');
      const cc = graph.body.find((v: any) => v.name === 'plan.example.com: test-client-client');
      expect(client.adjacencies).toEqual([{ nodeTo: cc.id, nodeFrom: client.id }]);
      expect(Object.keys(client).sort()).toEqual(['adjacencies', 'id', 'name']);

      const eventsBefore = await api.cb.engine.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      const plan = await api.call('GET', '/api/v2/deployments/plandep/plan');
      expect(plan.status).toBe(200);
      expect(plan.type).toBe(type('deployment_plan', 'obj'));
      expect(plan.body.deployment).toMatchObject({ name: 'plandep', state: 0 });
      expect(plan.body.deployment_roles).toEqual([{ id: server.id, role_id: server.role_id, role: 'test-client', changed: [expect.objectContaining({ attrib: 'test-client-marker', map: 'marker', proposed: 'new-client' })] }]);
      const byRole = Object.fromEntries(plan.body.node_roles.map((e: any) => [e.role, e]));
      expect(Object.keys(byRole).sort()).toEqual(['test-client', 'test-client-client', 'test-library']);
      expect(byRole['test-library']).toMatchObject({ from: 'proposed', to: 'todo', state: 1, reason: 'commit', node: 'plan.example.com', waiting_on: [] });
      expect(byRole['test-client']).toMatchObject({ to: 'blocked', reason: 'commit' });
      expect(byRole['test-client'].waiting_on).toEqual([expect.objectContaining({ id: byRole['test-library'].id, state: 'todo' })]);
      expect(byRole['test-client-client'].waiting_on).toEqual([{ id: byRole['test-client'].id, state: 'blocked' }]);
      expect(plan.body.node_roles.map((e: any) => e.order)).toEqual([1, 2, 3]);
      expect(plan.body.node_roles.map((e: any) => e.role)).toEqual(['test-library', 'test-client', 'test-client-client']);
      expect(byRole['test-client'].inputs.marker).toBe('new-client');
      expect(byRole['test-client'].provenance.marker).toMatchObject({ layer: 'deployment_role.committed' });
      const noInputs = await api.call('GET', '/api/v2/deployments/plandep/plan?inputs=false');
      expect(noInputs.body.inputs_omitted).toBe(true);
      expect(noInputs.body.node_roles[0].inputs).toBeUndefined();
      expect((await api.call('GET', '/api/v2/deployments/plandep/plan?inputs=maybe')).status).toBe(422);
      // nothing was written
      expect((await api.call('GET', '/api/v2/deployments/plandep/node_roles')).body.every((n: any) => n.state === 4)).toBe(true);
      expect((await api.call('GET', '/api/v2/deployments/plandep')).body.state).toBe(0);
      const eventsAfter = await api.cb.engine.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      expect(Number(eventsAfter.n)).toBe(Number(eventsBefore.n));

      // the real commit does what the plan said
      expect((await api.call('PUT', '/api/v2/deployments/plandep/commit')).status).toBe(200);
      expect(await anneal(api)).toEqual({ status: 200, message: 'finished' });
      const status = await api.call('GET', '/api/status/deployments/plandep');
      expect(status.body).toMatchObject({ state: 2, status: 'active', md5: expect.stringMatching(/^[0-9a-f]{32}$/) });
      expect(Object.values(status.body.node_roles)).toEqual([{ status: 'active', state: 0 }, { status: 'active', state: 0 }, { status: 'active', state: 0 }]);
      const all = await api.call('GET', '/api/status/deployments');
      expect(all.body[String(status.body.id)]).toEqual(status.body);
    });

    it('sample and match', async () => {
      const s = await api.call('GET', '/api/v2/node_roles/sample');
      expect(s.body).toMatchObject({ state: 4, run_count: 0 });
      expect(Object.keys(s.body).some((k) => k === 'id' || k.endsWith('_id') || k.endsWith('_at'))).toBe(false);
      const m = await api.call('POST', '/api/v2/node_roles/match', { state: '0', node_error: 'false' });
      expect(m.body.length).toBeGreaterThan(0);
      expect(m.body.every((n: any) => n.state === 0)).toBe(true);
      const dr = await api.call('POST', '/api/v2/deployment_roles/match', { deployment_id: '1' });
      expect(dr.body.every((d: any) => d.deployment_id === 1)).toBe(true);
      expect((await api.call('GET', '/api/v2/deployment_roles/sample')).body).toEqual({});
    });
  });
}
