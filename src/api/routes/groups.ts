/**
 * /api/v2/groups (spec §1.14, §11.2): CRUD + sample/match by id or name, and node membership:
 * `GET /groups/:id/nodes`, `POST /groups/:id/nodes {node_id}` adds, `DELETE
 * /groups/:id/nodes/:node_id` (or with `node_id` in the body) removes; both answer with the
 * group's nodes.
 */
import type { FastifyReply } from 'fastify';
import type { RoutePlugin } from '../app.js';
import { body, key, optInt, optString, ref, reqString, send, sendDeleted, sendList, sendObj } from '../wire.js';
import { groupJson, nodeJson } from '../serializers.js';
import { matchFilter, patchBody } from './users.js';
import {
  addNodeToGroup, deleteGroup, GROUP_COLUMNS, groupNodes, insertGroup, listGroups, removeNodeFromGroup, requireGroup, updateGroup,
} from '../../store/groups.js';
import { requireNode } from '../../store/nodes.js';
import { InvalidError } from '../../domain/errors.js';
import type { DB } from '../../store/db.js';

const COLUMNS: Record<(typeof GROUP_COLUMNS)[number], 'int' | 'string'> = {
  id: 'int', name: 'string', description: 'string', category: 'string', order: 'int', created_at: 'string', updated_at: 'string',
};

export const groupsRoutes: RoutePlugin = (app, { engine }) => {
  const T = 'group';
  const db: DB = engine.db;
  const one = (k: string) => requireGroup(db, key(k));
  const members = async (reply: FastifyReply, groupId: number) => sendList(reply, 'node', (await groupNodes(db, groupId)).map(nodeJson));

  app.get('/api/v2/groups', async (_req, reply) => sendList(reply, T, (await listGroups(db)).map(groupJson)));

  app.get('/api/v2/groups/sample', async (_req, reply) => send(reply, T, 'obj', { name: '', description: '', category: 'ui', order: 10000 }));

  app.post('/api/v2/groups/match', async (req, reply) => sendList(reply, T, (await listGroups(db, matchFilter(body(req), COLUMNS))).map(groupJson)));

  app.get<{ Params: { id: string } }>('/api/v2/groups/:id', async (req, reply) => sendObj(reply, T, groupJson(await one(req.params.id))));

  app.post('/api/v2/groups', async (req, reply) => {
    const b = body(req);
    const g = await insertGroup(db, { name: reqString(b, 'name'), description: optString(b, 'description'), category: optString(b, 'category'), order: optInt(b, 'order') });
    return sendObj(reply, T, groupJson(g));
  });

  for (const method of ['put', 'patch'] as const) {
    app[method]<{ Params: { id: string } }>('/api/v2/groups/:id', async (req, reply) => {
      const g = await one(req.params.id);
      const b = patchBody(req);
      const out = await db.transaction().execute((tx) =>
        updateGroup(tx, g.id, { name: optString(b, 'name'), description: optString(b, 'description'), category: optString(b, 'category'), order: optInt(b, 'order') }));
      return sendObj(reply, T, groupJson(out));
    });
  }

  app.delete<{ Params: { id: string } }>('/api/v2/groups/:id', async (req, reply) => {
    const g = await one(req.params.id);
    await db.transaction().execute((tx) => deleteGroup(tx, g.id));
    return sendDeleted(reply, T, `group ${g.name}`);
  });

  app.get<{ Params: { id: string } }>('/api/v2/groups/:id/nodes', async (req, reply) => members(reply, (await one(req.params.id)).id));

  const nodeRef = (raw: unknown) => {
    if (raw === undefined) throw new InvalidError("'node_id' is required (a node id or name)", { field: 'node_id' });
    return raw as string | number;
  };

  app.post<{ Params: { id: string } }>('/api/v2/groups/:id/nodes', async (req, reply) => {
    const g = await one(req.params.id);
    const n = await requireNode(db, nodeRef(ref(body(req), 'node')));
    await addNodeToGroup(db, g.id, n.id);
    return members(reply, g.id);
  });

  app.delete<{ Params: { id: string } }>('/api/v2/groups/:id/nodes', async (req, reply) => {
    const g = await one(req.params.id);
    const n = await requireNode(db, nodeRef(ref(body(req), 'node')));
    await removeNodeFromGroup(db, g.id, n.id);
    return members(reply, g.id);
  });

  app.delete<{ Params: { id: string; node_id: string } }>('/api/v2/groups/:id/nodes/:node_id', async (req, reply) => {
    const g = await one(req.params.id);
    const n = await requireNode(db, key(req.params.node_id));
    await removeNodeFromGroup(db, g.id, n.id);
    return members(reply, g.id);
  });
};
