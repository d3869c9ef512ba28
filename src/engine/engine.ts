/**
 * The engine's public surface: every domain operation as one transaction (binding, commits,
 * retries, attribs, nodes, deployments) plus read models such as `why`. The API, the CLI's
 * embedded commands, the simulator and the tests all go through this one class.
 */
import type { Deployment, Node, NodeRole } from '../domain/entities.js';
import { NodeRoleState as S, stateName } from '../domain/states.js';
import type { Json } from '../domain/json.js';
import type { DB, Capabilities } from '../store/db.js';
import { requireNodeRole, parentsOf } from '../store/node-roles.js';
import { requireNode, type NodePatch } from '../store/nodes.js';
import { requireDeployment } from '../store/deployments.js';
import { requireAttrib, requireRole, setRoleTemplate } from '../store/roles.js';
import { requireJig } from '../store/jigs.js';
import { requireRun } from '../store/runs.js';
import { EngineBus, inTx, type Ctx, type EngineCore, type EngineOptions } from './context.js';
import { bindRole, deleteNodeRole, effectiveJig } from './binding.js';
import { commitNodeRoles, commitDeploymentRole, proposeDeploymentRole } from './commit.js';
import { commitDeployment, createDeployment, destroyDeployment, proposeDeployment } from './deployments.js';
import { commitNode, createNode, proposeNode, redeployNode, updateNodeFields, type CreateNode } from './nodes.js';
import { propose, todo } from './states.js';
import { getAttribValue, setAttribValue, type AttribTarget, type Bucket } from './attribs.js';
import { stageInputs, type StagedInput } from './injection.js';
import type { JsonObject } from '../domain/json.js';
import { InvalidError, InvalidTransitionError } from '../domain/errors.js';
import type { DeploymentRole } from '../domain/entities.js';
import * as ops from './operations.js';

export class Engine implements EngineCore {
  readonly bus = new EngineBus();
  readonly db: DB;
  readonly caps: Capabilities;
  readonly opts: EngineOptions;
  constructor(db: DB, caps: Capabilities, opts: EngineOptions) {
    this.db = db;
    this.caps = caps;
    this.opts = opts;
  }

  tx<T>(fn: (ctx: Ctx) => Promise<T>): Promise<T> {
    return inTx(this, fn);
  }

  createDeployment(c: { name: string; description?: string; parent?: number | string | null }): Promise<Deployment> {
    return this.tx((ctx) => createDeployment(ctx, c));
  }
  commitDeployment(key: number | string): Promise<Deployment> {
    return this.tx((ctx) => commitDeployment(ctx, key));
  }
  proposeDeployment(key: number | string): Promise<Deployment> {
    return this.tx((ctx) => proposeDeployment(ctx, key));
  }
  destroyDeployment(key: number | string): Promise<void> {
    return this.tx((ctx) => destroyDeployment(ctx, key));
  }

  createNode(c: CreateNode): Promise<Node> {
    return this.tx((ctx) => createNode(ctx, c));
  }
  commitNode(key: number | string): Promise<Node> {
    return this.tx((ctx) => commitNode(ctx, key));
  }
  proposeNode(key: number | string): Promise<Node> {
    return this.tx((ctx) => proposeNode(ctx, key));
  }
  redeployNode(key: number | string): Promise<Node> {
    return this.tx((ctx) => redeployNode(ctx, key));
  }
  updateNode(key: number | string, patch: NodePatch): Promise<Node> {
    return this.tx((ctx) => updateNodeFields(ctx, key, patch));
  }

  bind(role: number | string, node: number | string, deployment?: number | string): Promise<NodeRole> {
    return this.tx((ctx) => bindRole(ctx, role, node, deployment));
  }
  deleteNodeRole(id: number): Promise<void> {
    return this.tx((ctx) => deleteNodeRole(ctx, id));
  }
  commitNodeRole(id: number): Promise<NodeRole> {
    return this.tx(async (ctx) => {
      const nr = await requireNodeRole(ctx.tx, id);
      if (nr.state !== S.PROPOSED) throw new InvalidTransitionError(`node-role ${id}`, stateName(nr.state), 'todo', 'only a proposed node-role can be committed');
      await commitNodeRoles(ctx, [id]);
      return requireNodeRole(ctx.tx, id);
    });
  }
  proposeNodeRole(id: number): Promise<NodeRole> {
    return this.tx(async (ctx) => {
      await requireNodeRole(ctx.tx, id);
      await propose(ctx, [id]);
      return requireNodeRole(ctx.tx, id);
    });
  }
  /** Retry (`todo!`): back to TODO when every parent is ACTIVE. */
  retryNodeRole(id: number): Promise<NodeRole> {
    return this.tx(async (ctx) => {
      const nr = await requireNodeRole(ctx.tx, id);
      await todo(ctx, id, `node-role ${id}`);
      if (nr.state === S.TRANSITION) {
        // an async run handed back: it is superseded by the run this retry schedules
        await ctx.tx.updateTable('runs').set({ status: 'done', ended_at: new Date().toISOString() }).where('node_role_id', '=', id).where('status', '=', 'async').execute();
      }
      return requireNodeRole(ctx.tx, id);
    });
  }
  /**
   * Re-executes a run from its recorded inputs (not re-staged): the node-role goes back to TODO
   * and its next run receives exactly the inputs the given run had.
   */
  replayRun(runId: number): Promise<NodeRole> {
    return this.tx(async (ctx) => {
      const run = await requireRun(ctx.tx, runId);
      if (run.inputs === null) throw new InvalidError(`run ${runId} recorded no inputs (it never started, or its jig takes none); retry the node-role instead`);
      const nr = await requireNodeRole(ctx.tx, run.node_role_id);
      if (nr.state === S.TRANSITION || nr.state === S.PROPOSED) {
        throw new InvalidTransitionError(`node-role ${nr.id}`, stateName(nr.state), 'todo', 'it must not be running or proposed to replay one of its runs');
      }
      await ctx.tx.updateTable('node_roles').set({ replay_of: runId }).where('id', '=', nr.id).execute();
      await todo(ctx, nr.id, `node-role ${nr.id}`);
      return requireNodeRole(ctx.tx, nr.id);
    });
  }

  commitDeploymentRole(id: number): Promise<void> {
    return this.tx((ctx) => commitDeploymentRole(ctx, id));
  }
  proposeDeploymentRole(id: number): Promise<void> {
    return this.tx((ctx) => proposeDeploymentRole(ctx, id));
  }

  setRoleTemplate(role: number | string, template: JsonObject): Promise<void> {
    return this.tx(async (ctx) => setRoleTemplate(ctx.tx, (await requireRole(ctx.tx, role)).id, template));
  }
  setJigActive(name: string, active: boolean): Promise<void> {
    return this.tx(async (ctx) => {
      await requireJig(ctx.tx, name);
      await ctx.tx.updateTable('jigs').set({ active: active ? 1 : 0 }).where('name', '=', name).execute();
      ctx.wake = true;
    });
  }

  getAttrib(name: number | string, target: AttribTarget, bucket?: Bucket): Promise<Json> {
    return this.tx(async (ctx) => getAttribValue(ctx.tx, await requireAttrib(ctx.tx, name), target, bucket));
  }
  setAttrib(name: number | string, target: AttribTarget, value: Json, bucket?: Bucket): Promise<void> {
    return this.tx(async (ctx) => setAttribValue(ctx, await requireAttrib(ctx.tx, name), target, value, bucket));
  }

  /** The input a node-role would receive if it ran now, with per-leaf provenance. */
  stage(nodeRoleId: number): Promise<StagedInput> {
    return stageInputs(this.db, nodeRoleId);
  }

  /** Why a node-role is not ACTIVE, as machine-readable reasons. */
  async why(id: number): Promise<{ state: string; reasons: Array<Record<string, unknown>> }> {
    const nr = await requireNodeRole(this.db, id);
    const reasons: Array<Record<string, unknown>> = [];
    const node = await requireNode(this.db, nr.node_id);
    const dep = await requireDeployment(this.db, nr.deployment_id);
    const role = await requireRole(this.db, nr.role_id);
    const blocking = ((await parentsOf(this.db, [id])).get(id) ?? []).filter((p) => p.state !== S.ACTIVE);
    for (const p of blocking) reasons.push({ reason: 'parent_not_active', node_role_id: p.id, state: stateName(p.state) });
    if (!node.alive) reasons.push({ reason: 'node_not_alive', node: node.name });
    if (!node.available) reasons.push({ reason: 'node_not_available', node: node.name });
    if (dep.state !== 1) reasons.push({ reason: 'deployment_proposed', deployment: dep.name });
    if (!(await this.tx((ctx) => effectiveJig(ctx, role)))) reasons.push({ reason: 'jig_inactive', jig: role.jig_name });
    if (nr.state === S.ERROR) reasons.push({ reason: 'error', runlog: nr.runlog.slice(-2000) });
    if (nr.state === S.TRANSITION) {
      const run = await this.db.selectFrom('runs').select(['id', 'status', 'started_at']).where('node_role_id', '=', id).orderBy('id', 'desc').executeTakeFirst();
      reasons.push({ reason: run?.status === 'async' ? 'async_in_progress' : 'in_flight', run_id: run?.id, since: run?.started_at });
    }
    if (!nr.available) reasons.push({ reason: 'outside_target', node: node.name, target_role_id: node.target_role_id });
    if (nr.state === S.TODO && reasons.length === 0) {
      const busy = await this.db.selectFrom('node_roles').select('id').where('node_id', '=', nr.node_id).where('state', '=', S.TRANSITION).execute();
      reasons.push(busy.length ? { reason: 'node_busy', running: busy.map((b) => b.id) } : { reason: 'waiting_for_slot' });
    }
    return { state: stateName(nr.state), reasons };
  }

  async run(id: number) {
    return requireRun(this.db, id);
  }

  // API operations (operations.ts) ///////////////////////////////////////////////////////
  /** Node edit with the original's deployment guard, node-role move and annealer target. */
  changeNode(key: number | string, c: ops.NodeChange): Promise<Node> {
    return this.tx((ctx) => ops.changeNode(ctx, key, c));
  }
  debugNode(key: number | string): Promise<Node> {
    return this.tx((ctx) => ops.debugNode(ctx, key));
  }
  undebugNode(key: number | string): Promise<Node> {
    return this.tx((ctx) => ops.undebugNode(ctx, key));
  }
  deleteNode(key: number | string): Promise<Node> {
    return this.tx((ctx) => ops.deleteNode(ctx, key));
  }
  bindWithData(role: number | string, node: number | string, deployment?: number | string, data?: JsonObject): Promise<NodeRole> {
    return this.tx((ctx) => ops.bindWithData(ctx, role, node, deployment, data));
  }
  setNodeRoleData(id: number, data: JsonObject): Promise<NodeRole> {
    return this.tx((ctx) => ops.setNodeRoleData(ctx, id, data));
  }
  createDeploymentRole(role: number | string, deployment: number | string, data?: JsonObject): Promise<DeploymentRole> {
    return this.tx((ctx) => ops.createDeploymentRole(ctx, role, deployment, data));
  }
  setDeploymentRoleData(id: number, data: JsonObject): Promise<DeploymentRole> {
    return this.tx((ctx) => ops.setDeploymentRoleData(ctx, id, data));
  }
  deleteDeploymentRole(id: number): Promise<DeploymentRole> {
    return this.tx((ctx) => ops.deleteDeploymentRole(ctx, id));
  }
  /** What committing the deployment would do; nothing is written. */
  planDeployment(key: number | string, o?: { inputs?: boolean; inputLimit?: number }): Promise<ops.DeploymentPlan> {
    return ops.planDeployment(this, key, o);
  }
}

export type { AttribTarget, Bucket, CreateNode };
