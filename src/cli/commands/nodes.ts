/** `crowbar nodes …`: list, show, create, update (incl. --ssh), forget-host-key, delete, commit, propose, redeploy, power. */
import { InvalidArgumentError, type Command } from 'commander';
import { at, bool, Names, name, run, type Ctx } from './context.js';
import { keyValues, paint, printJson, stateLabel, table } from './output.js';

type Obj = Record<string, any>;

/** A node's node-roles as a table (ID ROLE DEPLOYMENT STATE RUNS). */
export async function printNodeRoles(ctx: Ctx, nrs: Obj[], names: Names, withNode = false): Promise<void> {
  const [roles, deps, nodes] = await Promise.all([names.roles(), names.deployments(), withNode ? names.nodes() : Promise.resolve(new Map<number, string>())]);
  table(ctx.out, nrs, [
    { header: 'id', get: (r) => r.id, right: true },
    ...(withNode ? [{ header: 'node', get: (r: Obj) => name(nodes, r.node_id) }] : []),
    { header: 'role', get: (r) => name(roles, r.role_id) },
    { header: 'deployment', get: (r) => name(deps, r.deployment_id) },
    { header: 'state', get: (r) => stateLabel(ctx.out, r.state) },
    { header: 'runs', get: (r) => r.run_count, right: true },
    { header: 'status', get: (r) => r.status ?? '' },
  ]);
}

export function registerNodes(program: Command): void {
  const nodes = program.command('nodes').description('machines: list, inspect, create, change, commit, power');

  nodes
    .command('list')
    .description('list nodes with their deployment and derived state')
    .option('-d, --deployment <deployment>', 'only the nodes of this deployment')
    .option('--no-system', 'leave out system (phantom) nodes')
    .action(run(async (ctx) => {
      const { client, out, opts } = ctx;
      const list: Obj[] = await client.get(opts.deployment ? `${at('deployments', opts.deployment)}/nodes` : '/api/v2/nodes');
      if (out.json) return printJson(out, list);
      const names = new Names(client);
      const [deps, status] = await Promise.all([names.deployments(), client.get<Record<string, Obj>>('/api/status/nodes')]);
      const rows = list.filter((n) => opts.system !== false || !n.system);
      table(out, rows, [
        { header: 'id', get: (n) => n.id, right: true },
        { header: 'name', get: (n) => n.name },
        { header: 'deployment', get: (n) => name(deps, n.deployment_id) },
        { header: 'state', get: (n) => (status[n.id] ? stateLabel(out, status[n.id]!.status) : '') },
        { header: 'alive', get: (n) => n.alive },
        { header: 'available', get: (n) => n.available },
        { header: 'bootenv', get: (n) => n.bootenv },
      ]);
    }));

  nodes
    .command('show <node>')
    .description('a node (by id or name) and its node-roles')
    .action(run(async (ctx, key: string) => {
      const { client, out } = ctx;
      const node: Obj = await client.get(at('nodes', key));
      if (out.json) return printJson(out, node);
      const names = new Names(client);
      const [deps, status, nrs] = await Promise.all([
        names.deployments(),
        client.get<Record<string, Obj>>(`/api/status/nodes/${node.id}`),
        client.get<Obj[]>(`${at('nodes', node.id)}/node_roles`),
      ]);
      const st = status[node.id];
      keyValues(out, [
        ['id', node.id],
        ['name', node.name],
        ['description', node.description],
        ['deployment', name(deps, node.deployment_id)],
        ['state', st ? stateLabel(out, st.status) : ''],
        ['alive', node.alive],
        ['available', node.available],
        ['allocated', node.allocated],
        ['admin', node.admin],
        ['system', node.system],
        ['bootenv', node.bootenv],
        ['target role', node.target_role_id ?? ''],
        ['created', node.created_at],
        ['updated', node.updated_at],
      ]);
      out.write(`\n${paint(out, 'bold', 'node-roles')}\n`);
      await printNodeRoles(ctx, nrs, names);
    }));

  nodes
    .command('create <name>')
    .description('create a node (it starts proposed; `nodes commit` to start annealing it)')
    .option('-d, --deployment <deployment>', 'deployment (default: system)')
    .option('--description <text>', 'description')
    .option('--mac <mac>', 'admin MAC address (becomes the admin_macs hint)')
    .option('--bootenv <bootenv>', 'boot environment, e.g. local or sledgehammer')
    .option('--alive <bool>', 'alive (true/false)', bool('--alive'))
    .option('--available <bool>', 'available (true/false)', bool('--available'))
    .option('--admin', 'an admin node')
    .option('--ssh <[user@]host[:port]>', 'where its ssh hammer logs in (default root@<node name>:22)', sshTarget)
    .action(run(async (ctx, nodeName: string) => {
      const o = ctx.opts;
      const node: Obj = await ctx.client.post('/api/v2/nodes', {
        name: nodeName, deployment: o.deployment, description: o.description, mac: o.mac, bootenv: o.bootenv, alive: o.alive, available: o.available, admin: o.admin,
      });
      if (o.ssh) await setSshTarget(ctx, node, o.ssh);
      if (ctx.out.json) return printJson(ctx.out, node);
      ctx.out.write(`created node ${node.name} (id ${node.id})${o.ssh ? `, ssh ${o.ssh.username}@${o.ssh.endpoint}` : ''}\n`);
    }));

  nodes
    .command('update <node>')
    .description("change a node's fields")
    .option('--name <name>', 'new name')
    .option('--description <text>', 'description')
    .option('-d, --deployment <deployment>', 'move it to this deployment')
    .option('--bootenv <bootenv>', 'boot environment')
    .option('--alive <bool>', 'alive (true/false)', bool('--alive'))
    .option('--available <bool>', 'available (true/false)', bool('--available'))
    .option('--allocated <bool>', 'allocated (true/false)', bool('--allocated'))
    .option('--target-role <role>', "annealer target role (name or id; 'null' clears it)")
    .option('--ssh <[user@]host[:port]>', 'where its ssh hammer logs in', sshTarget)
    .action(run(async (ctx, key: string) => {
      const o = ctx.opts;
      const change: Obj = {};
      for (const f of ['name', 'description', 'deployment', 'bootenv', 'alive', 'available', 'allocated'] as const) if (o[f] !== undefined) change[f] = o[f];
      if (o.targetRole !== undefined) change.target_role = o.targetRole === 'null' ? null : o.targetRole;
      if (Object.keys(change).length === 0 && !o.ssh) throw new Error('nothing to change: give at least one of --name, --description, --deployment, --bootenv, --alive, --available, --allocated, --target-role, --ssh');
      if (o.ssh) await setSshTarget(ctx, await ctx.client.get(at('nodes', key)), o.ssh);
      const node: Obj = Object.keys(change).length ? await ctx.client.put(at('nodes', key), change) : await ctx.client.get(at('nodes', key));
      if (ctx.out.json) return printJson(ctx.out, node);
      ctx.out.write(`updated node ${node.name} (id ${node.id})\n`);
    }));

  nodes
    .command('forget-host-key <node>')
    .description("forget the node's pinned SSH host key after a legitimate reinstall (the next login pins the new one)")
    .action(run(async (ctx, key: string) => {
      const node: Obj = await ctx.client.get(at('nodes', key));
      const ssh = await sshHammerOf(ctx, node);
      const r: Obj = await ctx.client.delete(`${at('hammers', ssh.id)}/host_key`);
      if (ctx.out.json) return printJson(ctx.out, r);
      ctx.out.write(r.forgotten
        ? `forgot host key ${r.forgotten} of ${node.name} (${r.host}); the next login pins the key it is offered\n`
        : `no host key was pinned for ${node.name} (${r.host})\n`);
    }));

  nodes
    .command('delete <node>')
    .description('delete a node and its node-roles')
    .action(run(async (ctx, key: string) => {
      const res: Obj = await ctx.client.delete(at('nodes', key));
      if (ctx.out.json) return printJson(ctx.out, res);
      ctx.out.write(`${res.message}\n`);
    }));

  for (const [action, what] of [
    ['commit', 'commit its proposed node-roles so the annealer runs them'],
    ['propose', 'put its node-roles back to proposed (no run may be in flight)'],
    ['redeploy', 'every node-role back to proposed, then commit (reboots it when a hammer can)'],
  ] as const) {
    nodes
      .command(`${action} <node>`)
      .description(what)
      .action(run(async (ctx, key: string) => {
        const node: Obj = await ctx.client.put(`${at('nodes', key)}/${action}`);
        if (ctx.out.json) return printJson(ctx.out, node);
        ctx.out.write(`${{ commit: 'committed', propose: 'proposed', redeploy: 'redeploying' }[action]} node ${node.name}\n`);
      }));
  }

  nodes
    .command('power <node> [action]')
    .description('without an action: the power actions its hammers offer; with one (on, off, cycle, reset, …): perform it')
    .action(run(async (ctx, key: string, action?: string) => {
      const { client, out } = ctx;
      if (!action) {
        const actions: string[] = await client.get(`${at('nodes', key)}/power`);
        if (out.json) return printJson(out, actions);
        out.write(actions.length ? `${actions.join('\n')}\n` : `node '${key}' offers no power actions (none of its hammers controls power)\n`);
        return;
      }
      const res: Obj = await client.put(`${at('nodes', key)}/power`, { poweraction: action });
      if (out.json) return printJson(out, res);
      out.write(`power ${action} on node ${key}: ${res.result}\n`);
    }));
}

interface SshTarget {
  username: string;
  endpoint: string;
}

/** Parses `[user@]host[:port]` (IPv6 as `[addr]:port`) for `--ssh`. */
function sshTarget(value: string): SshTarget {
  const m = /^(?:([A-Za-z_][A-Za-z0-9._-]*)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value.trim());
  const port = m?.[3] === undefined ? 22 : Number(m[3]);
  if (!m || port < 1 || port > 65535) throw new InvalidArgumentError(`--ssh wants [user@]host[:port], e.g. root@10.0.0.5 or admin@[fd00::5]:2222; got '${value}'`);
  return { username: m[1] ?? 'root', endpoint: `${m[2]}:${port}` };
}

/** Points the node's ssh hammer at `target` (the hammer every ordinary node gets on create). */
async function setSshTarget(ctx: Ctx, node: Obj, target: SshTarget): Promise<void> {
  const ssh = await sshHammerOf(ctx, node);
  await ctx.client.put(at('hammers', ssh.id), { endpoint: target.endpoint, username: target.username });
}

async function sshHammerOf(ctx: Ctx, node: Obj): Promise<Obj> {
  const hammers: Obj[] = await ctx.client.get(`${at('nodes', node.id)}/hammers`);
  const ssh = hammers.find((h) => h.name === 'ssh');
  if (!ssh) throw new Error(`node ${node.name} has no ssh hammer (it has: ${hammers.map((h) => h.name).join(', ') || 'none'})`);
  return ssh;
}
