/**
 * /api/v2/runs. The original's `runs` table was its queue, so `GET runs` listed pending and
 * running jig invocations and `GET runs/<node>` that node's. Ours keeps every run as history,
 * and a run row exists once a run is claimed, so the queue view is the in-flight runs (running,
 * or async and waiting for a retry) in the original's shape (spec §11.3).
 *
 * `GET /api/v2/runs/:id` resolves the clash with the original's per-node path this way: a
 * numeric id is a run id and answers with that run's full record (inputs, provenance, wall,
 * log, exit status, timings, replay_of); a non-numeric key is a node name and answers with
 * that node's in-flight runs in the queue shape. `POST /api/v2/runs/:id/replay` re-executes a
 * run from its recorded inputs and answers with the node-role.
 */
import type { RoutePlugin } from '../app.js';
import { key, sendList, sendObj } from '../wire.js';
import { runJson, runQueueJson } from '../serializers.js';
import { RunStatus } from '../../domain/entities.js';
import { NotFoundError } from '../../domain/errors.js';
import { listRuns, requireRun } from '../../store/runs.js';
import { findNode } from './nodes.js';
import { nodeRolesOut } from './node-roles.js';

type IdParams = { Params: { id: string } };

const IN_FLIGHT: string[] = [RunStatus.RUNNING, RunStatus.ASYNC];

export const runsRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'run';

  app.get('/api/v2/runs', async (_req, reply) =>
    sendList(reply, T, (await listRuns(engine.db, { statuses: IN_FLIGHT })).reverse().map(runQueueJson)));

  app.get<IdParams>('/api/v2/runs/:id', async (req, reply) => {
    const k = key(req.params.id);
    if (typeof k === 'number') return sendObj(reply, T, runJson(await requireRun(engine.db, k)));
    const node = await findNode(engine.db, req.params.id);
    return sendList(reply, T, (await listRuns(engine.db, { nodeId: node.id, statuses: IN_FLIGHT })).reverse().map(runQueueJson));
  });

  app.post<IdParams>('/api/v2/runs/:id/replay', async (req, reply) => {
    const k = key(req.params.id);
    if (typeof k !== 'number') throw new NotFoundError('run', k, 'runs are addressed by numeric id');
    const run = await requireRun(engine.db, k);
    const nr = await engine.replayRun(run.id);
    return sendObj(reply, 'node_role', (await nodeRolesOut(engine.db, [nr]))[0]);
  });
};
