/**
 * `crowbar node-roles …` (list, show, bind, retry, why, runs, commit, propose, delete) and
 * `crowbar runs …` (show, replay). A node-role is named by its id, or by node and role:
 * `node-roles why 45` or `node-roles why node-00001.sim.crowbar.local test-fails`.
 */
import type { Command } from 'commander';
import { parseState } from '../../domain/states.js';
import { at, jsonObject, Names, name, positiveInt, run, type Ctx } from './context.js';
import { printNodeRoles } from './nodes.js';
import { keyValues, paint, printJson, stateLabel, table, tail, type Output } from './output.js';

type Obj = Record<string, any>;

/** The node-role named by `<id>` or `<node> <role>`. */
export async function fetchNodeRole(ctx: Ctx, first: string, role?: string): Promise<Obj> {
  if (role !== undefined) return ctx.client.get(`${at('nodes', first)}/node_roles/${encodeURIComponent(role)}`);
  if (!/^\d+$/.test(first)) throw new Error(`'${first}' is not a node-role id; name a node-role by its id, or by node and role (e.g. node-roles show <node> <role>)`);
  return ctx.client.get(at('node_roles', first));
}

async function nodeRoleId(ctx: Ctx, first: string, role?: string): Promise<number> {
  return role === undefined && /^\d+$/.test(first) ? Number(first) : (await fetchNodeRole(ctx, first, role)).id;
}

/** "test-fails on node-00001… (deployment d1)" */
async function describe(names: Names, nr: Obj): Promise<string> {
  const [nodes, roles, deps] = await Promise.all([names.nodes(), names.roles(), names.deployments()]);
  return `${name(roles, nr.role_id)} on ${name(nodes, nr.node_id)} (deployment ${name(deps, nr.deployment_id)})`;
}

function logBlock(out: Output, lines: string[], indent = '    '): void {
  for (const l of lines) out.write(`${indent}${paint(out, 'dim', '|')} ${l}\n`);
}

const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? '' : `${(ms / 1000).toFixed(1)} s`);

const RUN_STYLE: Record<string, Parameters<typeof paint>[1]> = { done: 'green', failed: 'red', timeout: 'red', interrupted: 'yellow', running: 'cyan', async: 'cyan', skipped: 'gray' };
const runStatus = (out: Output, s: string) => paint(out, RUN_STYLE[s] ?? 'reset', s);

export function registerNodeRoles(program: Command): void {
  const nrs = program.command('node-roles').description('node-roles: a role bound to a node, the unit the annealer runs');

  nrs
    .command('list')
    .description('list node-roles, optionally narrowed')
    .option('-n, --node <node>', 'on this node')
    .option('-d, --deployment <deployment>', 'in this deployment')
    .option('-r, --role <role>', 'of this role')
    .option('-s, --state <state>', 'in this state (error, active, todo, transition, blocked, proposed)')
    .action(run(async (ctx) => {
      const { client, out, opts } = ctx;
      let state: number | undefined;
      if (opts.state !== undefined) {
        state = parseState(opts.state);
        if (state === undefined) throw new Error(`unknown state '${opts.state}' (error, active, todo, transition, blocked, proposed)`);
      }
      let list: Obj[] = await client.get('/api/v2/node_roles', { query: { node: opts.node, deployment: opts.deployment, role: opts.role, runlog: out.json ? undefined : 0 } });
      if (state !== undefined) list = list.filter((n) => n.state === state);
      if (out.json) return printJson(out, list);
      await printNodeRoles(ctx, list, new Names(client), true);
    }));

  nrs
    .command('show <id|node> [role]')
    .description('a node-role, with the tail of its run log')
    .option('--lines <n>', 'run log lines to show', positiveInt('--lines'), 20)
    .action(run(async (ctx, first: string, role?: string) => {
      const { client, out, opts } = ctx;
      const nr = await fetchNodeRole(ctx, first, role);
      if (out.json) return printJson(out, nr);
      const names = new Names(client);
      const [nodes, roles, deps] = await Promise.all([names.nodes(), names.roles(), names.deployments()]);
      keyValues(out, [
        ['id', nr.id],
        ['node', name(nodes, nr.node_id)],
        ['role', name(roles, nr.role_id)],
        ['deployment', name(deps, nr.deployment_id)],
        ['state', stateLabel(out, nr.state)],
        ['status', nr.status ?? ''],
        ['runs', nr.run_count],
        ['cohort', nr.cohort],
        ['available', nr.available],
        ['node error', nr.node_error],
        ['updated', nr.updated_at],
      ]);
      const lines = tail(nr.runlog, opts.lines);
      if (lines.length) {
        out.write(`${paint(out, 'bold', 'run log:')}\n`);
        logBlock(out, lines, '  ');
      }
    }));

  nrs
    .command('bind <node> <role>')
    .description('bind a role to a node (proposed until the node or deployment is committed)')
    .option('-d, --deployment <deployment>', "deployment (default: the node's)")
    .option('--data <json>', 'node-role data (a JSON object)', jsonObject('--data'))
    .action(run(async (ctx, node: string, role: string) => {
      const { client, out, opts } = ctx;
      const nr: Obj = await client.post('/api/v2/node_roles', { node, role, deployment: opts.deployment, data: opts.data });
      if (out.json) return printJson(out, nr);
      out.write(`bound ${role} to ${node}: node-role ${nr.id} (${stateLabel(out, nr.state)})\n`);
    }));

  for (const [action, what] of [
    ['retry', 'run it again (from error, or to re-run an active one)'],
    ['commit', 'commit a proposed node-role'],
    ['propose', 'put it back to proposed'],
  ] as const) {
    nrs
      .command(`${action} <id|node> [role]`)
      .description(what)
      .action(run(async (ctx, first: string, role?: string) => {
        const id = await nodeRoleId(ctx, first, role);
        const nr: Obj = await ctx.client.put(`${at('node_roles', id)}/${action}`);
        if (ctx.out.json) return printJson(ctx.out, nr);
        ctx.out.write(`node-role ${nr.id}: ${stateLabel(ctx.out, nr.state)}\n`);
      }));
  }

  nrs
    .command('delete <id|node> [role]')
    .description('unbind: delete a node-role (and the node-roles that depend on it)')
    .action(run(async (ctx, first: string, role?: string) => {
      const id = await nodeRoleId(ctx, first, role);
      const res: Obj = await ctx.client.delete(at('node_roles', id));
      if (ctx.out.json) return printJson(ctx.out, res);
      ctx.out.write(`${res.message}\n`);
    }));

  nrs
    .command('why <id|node> [role]')
    .description('why a node-role is not active: blocking parents, node, deployment, jig, error, in flight')
    .option('--lines <n>', 'log lines to show for an error', positiveInt('--lines'), 10)
    .action(run(async (ctx, first: string, role?: string) => {
      const { client, out, opts } = ctx;
      const id = await nodeRoleId(ctx, first, role);
      const why: Obj = await client.get(`${at('node_roles', id)}/why`);
      if (out.json) return printJson(out, why);
      const names = new Names(client);
      const nr: Obj = await client.get(at('node_roles', id), { headers: { 'x-return-attributes': '["id","node_id","role_id","deployment_id"]' } });
      out.write(`node-role ${id}: ${await describe(names, nr)} is ${stateLabel(out, why.state)}\n`);
      const reasons = why.reasons as Obj[];
      if (reasons.length === 0) out.write(why.state === 'active' ? '  nothing keeps it from being active\n' : '  no reason recorded\n');
      for (const r of reasons) {
        out.write(`  - ${await reasonText(ctx, names, r)}\n`);
        if (r.reason === 'error') logBlock(out, tail(r.runlog, opts.lines));
      }
    }));

  nrs
    .command('runs <id|node> [role]')
    .description('run history, newest first, with the log of each run')
    .option('--limit <n>', 'at most this many runs', positiveInt('--limit'), 5)
    .option('--lines <n>', 'log lines per run', positiveInt('--lines'), 20)
    .action(run(async (ctx, first: string, role?: string) => {
      const { client, out, opts } = ctx;
      const id = await nodeRoleId(ctx, first, role);
      const runs: Obj[] = await client.get(`${at('node_roles', id)}/runs`, { query: { limit: opts.limit } });
      if (out.json) return printJson(out, runs);
      if (runs.length === 0) return out.write(`node-role ${id} has not run yet\n`);
      for (const r of runs) {
        out.write(`${paint(out, 'bold', `run ${r.id}`)}  ${runStatus(out, r.status)}${r.exit_status !== null && r.exit_status !== undefined ? `  exit ${r.exit_status}` : ''}  jig ${r.jig}  ${r.started_at ?? r.created_at}  ${seconds(r.duration_ms)}${r.replay_of ? `  (replay of run ${r.replay_of})` : ''}\n`);
        if (r.error) out.write(`  error: ${r.error}\n`);
        logBlock(out, tail(r.log, opts.lines), '  ');
      }
    }));

  // runs /////////////////////////////////////////////////////////////////////////////////
  const runs = program.command('runs').description('jig runs: their records, and replaying them');

  runs
    .command('list')
    .description('runs in flight (the queue)')
    .action(run(async (ctx) => {
      const list: Obj[] = await ctx.client.get('/api/v2/runs');
      if (ctx.out.json) return printJson(ctx.out, list);
      table(ctx.out, list, [
        { header: 'id', get: (r) => r.id, right: true },
        { header: 'node-role', get: (r) => r.node_role_id, right: true },
        { header: 'node', get: (r) => r.node_id, right: true },
        { header: 'running', get: (r) => r.running },
      ]);
    }));

  runs
    .command('show <id>')
    .description('a run: status, timings, inputs, wall and log')
    .action(run(async (ctx, id: string) => {
      const { client, out } = ctx;
      const r: Obj = await client.get(at('runs', id));
      if (out.json) return printJson(out, r);
      const nr: Obj = await client.get(at('node_roles', r.node_role_id), { headers: { 'x-return-attributes': '["id","node_id","role_id","deployment_id"]' } }).catch(() => ({ id: r.node_role_id, node_id: r.node_id }));
      keyValues(out, [
        ['id', r.id],
        ['node-role', `${r.node_role_id}: ${await describe(new Names(client), nr)}`],
        ['status', runStatus(out, r.status)],
        ['exit status', r.exit_status ?? ''],
        ['error', r.error ?? ''],
        ['jig', r.jig],
        ['worker', r.worker ?? ''],
        ['replay of', r.replay_of ?? ''],
        ['created', r.created_at],
        ['started', r.started_at ?? ''],
        ['ended', r.ended_at ?? ''],
        ['duration', seconds(r.duration_ms)],
      ]);
      out.write(`${paint(out, 'bold', 'inputs:')}\n${JSON.stringify(r.inputs ?? {}, null, 2)}\n`);
      out.write(`${paint(out, 'bold', 'wall:')}\n${JSON.stringify(r.wall ?? {}, null, 2)}\n`);
      out.write(`${paint(out, 'bold', 'log:')}\n`);
      logBlock(out, tail(r.log, 10_000), '  ');
    }));

  runs
    .command('replay <id>')
    .description('run it again from its recorded inputs')
    .action(run(async (ctx, id: string) => {
      const nr: Obj = await ctx.client.post(`${at('runs', id)}/replay`);
      if (ctx.out.json) return printJson(ctx.out, nr);
      ctx.out.write(`replaying run ${id}: node-role ${nr.id} is ${stateLabel(ctx.out, nr.state)}\n`);
    }));
}

async function reasonText(ctx: Ctx, names: Names, r: Obj): Promise<string> {
  const { out } = ctx;
  switch (r.reason) {
    case 'parent_not_active': {
      let what = '';
      try {
        const p: Obj = await ctx.client.get(at('node_roles', r.node_role_id), { headers: { 'x-return-attributes': '["id","node_id","role_id","deployment_id"]' } });
        what = ` (${await describe(names, p)})`;
      } catch {
        /* the parent's name is a nicety */
      }
      return `waits on parent node-role ${r.node_role_id}${what}, which is ${stateLabel(out, r.state)}`;
    }
    case 'node_not_alive':
      return `node ${r.node} is not alive`;
    case 'node_not_available':
      return `node ${r.node} is not available`;
    case 'deployment_proposed':
      return `deployment ${r.deployment} is proposed (crowbar deployments commit ${r.deployment})`;
    case 'jig_inactive':
      return `jig ${r.jig} is not active (crowbar jigs activate ${r.jig})`;
    case 'error':
      return `${paint(out, 'red', 'its last run failed')}; run log:`;
    case 'in_flight':
      return `running now (run ${r.run_id ?? '?'}${r.since ? `, since ${r.since}` : ''})`;
    case 'async_in_progress':
      return `waiting on an asynchronous run (run ${r.run_id ?? '?'}${r.since ? `, since ${r.since}` : ''}); retry it when it is done`;
    case 'outside_target':
      return `outside node ${r.node}'s annealer target (target role ${r.target_role_id ?? 'none'})`;
    case 'node_busy':
      return `waiting for the node's running node-roles: ${(r.running as number[]).join(', ')}`;
    case 'waiting_for_slot':
      return 'runnable, waiting for a free run slot';
    default:
      return JSON.stringify(r);
  }
}
