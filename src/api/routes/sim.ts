/**
 * `POST /api/v2/sim` (new; not in the original): registers simulated nodes on the `sim` hammer,
 * as `crowbar sim` does on an embedded store, so a running server can be given a fleet to play
 * with. Admin only.
 *
 * Body: `{nodes, deployment?, roles?, commit?, test_delay?}`
 * - `nodes`: how many (1 … 10000)
 * - `deployment`: put them there (created if missing; default `system`)
 * - `roles`: role names (an array, or one comma-separated string) bound on every node
 * - `commit`: commit the nodes and the deployment so the annealer starts (default true)
 * - `test_delay`: set `delay` in the template of every `test-*` role (the test jig pauses that
 *   many seconds; 0 makes test deployments converge fast)
 * Everything is checked before anything is written (422 naming the field). Answers
 * `{deployment, count, nodes: [names]}`.
 */
import type { RoutePlugin } from '../app.js';
import { requireAdmin } from '../auth.js';
import { body, optBool, optString, send } from '../wire.js';
import { InvalidError } from '../../domain/errors.js';
import { registerSimNodes } from '../../sim/register.js';
import { getRole, listRoles } from '../../store/roles.js';
import { didYouMean } from '../../store/barclamps.js';

export const MAX_SIM_NODES = 10_000;

export const simRoutes: RoutePlugin = (app, { engine }) => {
  const config = {
    summary: 'Register simulated nodes (admin): {nodes, deployment?, roles?, commit?, test_delay?}',
    description:
      'Creates `nodes` simulated nodes on the `sim` hammer (generated inventory, scripts run in per-node sandboxes), ' +
      'in `deployment` (created if missing; default `system`), with `roles` bound on each, committed unless `commit` is false. ' +
      '`test_delay` sets `delay` in the template of every `test-*` role. Answers `{deployment, count, nodes}`; 422 names a bad field.',
    contentType: 'application/vnd.crowbar.sim.result+json; version=2.0',
  };
  app.post('/api/v2/sim', { config }, async (req, reply) => {
    requireAdmin(req, 'register simulated nodes');
    const b = body(req);

    const rawNodes = b['nodes'];
    const nodes = typeof rawNodes === 'number' ? rawNodes : typeof rawNodes === 'string' && /^\s*\d+\s*$/.test(rawNodes) ? Number(rawNodes) : NaN;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_SIM_NODES) {
      throw new InvalidError(`'nodes' must be a whole number from 1 to ${MAX_SIM_NODES}${rawNodes === undefined ? '' : `, not ${JSON.stringify(rawNodes)}`}`, { field: 'nodes' });
    }

    const deployment = optString(b, 'deployment');
    if (deployment !== undefined && deployment.trim() === '') throw new InvalidError(`'deployment' must be a deployment name`, { field: 'deployment' });

    const rawRoles = b['roles'];
    let roles: string[] = [];
    if (typeof rawRoles === 'string') roles = rawRoles.split(',').map((s) => s.trim()).filter(Boolean);
    else if (Array.isArray(rawRoles) && rawRoles.every((r) => typeof r === 'string')) roles = (rawRoles as string[]).map((s) => s.trim()).filter(Boolean);
    else if (rawRoles !== undefined && rawRoles !== null) throw new InvalidError(`'roles' must be an array of role names (or one comma-separated string)`, { field: 'roles' });
    for (const r of roles) {
      if (!(await getRole(engine.db, r))) {
        const hint = didYouMean(r, (await listRoles(engine.db)).map((x) => x.name));
        throw new InvalidError(`'roles': role '${r}' does not exist${hint ? `; ${hint}` : ''}`, { field: 'roles', role: r });
      }
    }

    const commit = optBool(b, 'commit');

    const rawDelay = b['test_delay'];
    let testDelay: number | undefined;
    if (rawDelay !== undefined && rawDelay !== null && rawDelay !== '') {
      testDelay = typeof rawDelay === 'number' ? rawDelay : typeof rawDelay === 'string' ? Number(rawDelay) : NaN;
      if (!Number.isFinite(testDelay) || testDelay < 0) throw new InvalidError(`'test_delay' must be a non-negative number of seconds`, { field: 'test_delay' });
    }

    if (testDelay !== undefined) {
      for (const role of (await listRoles(engine.db)).filter((r) => r.name.startsWith('test-'))) {
        await engine.setRoleTemplate(role.id, { ...role.template, delay: testDelay });
      }
    }
    const res = await registerSimNodes(engine, { nodes, deployment, roles, commit: commit ?? true });
    return send(reply, 'sim', 'result', { deployment: res.deployment, count: res.nodes.length, nodes: res.nodes });
  });
};
