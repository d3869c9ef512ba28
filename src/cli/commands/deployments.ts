/** `crowbar deployments …`: list, show, create, delete, commit, propose, graph, plan. */
import type { Command } from 'commander';
import { at, Names, name, run } from './context.js';
import { printNodeRoles } from './nodes.js';
import { deploymentStateLabel, keyValues, paint, printJson, stateLabel, table } from './output.js';

type Obj = Record<string, any>;

/** "active=12 todo=3" in state order, coloured. */
export function countsLine(out: { color: boolean }, states: number[]): string {
  const counts = new Map<number, number>();
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${stateLabel(out, s)}=${n}`).join(' ') || 'none';
}

export function registerDeployments(program: Command): void {
  const deps = program.command('deployments').description('deployments: groups of nodes whose roles are committed together');

  deps
    .command('list')
    .description('list deployments with their state')
    .action(run(async ({ client, out }) => {
      const list: Obj[] = await client.get('/api/v2/deployments');
      if (out.json) return printJson(out, list);
      const names = new Map(list.map((d) => [d.id as number, d.name as string]));
      table(out, list, [
        { header: 'id', get: (d) => d.id, right: true },
        { header: 'name', get: (d) => d.name },
        { header: 'state', get: (d) => deploymentStateLabel(out, d.state) },
        { header: 'parent', get: (d) => name(names, d.parent_id) },
        { header: 'system', get: (d) => d.system },
        { header: 'description', get: (d) => d.description ?? '' },
      ]);
    }));

  deps
    .command('show <deployment>')
    .description('a deployment, its roles and the states of its node-roles')
    .option('--node-roles', 'also list every node-role')
    .action(run(async (ctx, key: string) => {
      const { client, out, opts } = ctx;
      const d: Obj = await client.get(at('deployments', key));
      if (out.json) return printJson(out, d);
      const names = new Names(client);
      const [all, roles, nodes, nrs] = await Promise.all([
        names.deployments(),
        client.get<Obj[]>(`${at('deployments', d.id)}/roles`),
        client.get<Obj[]>(`${at('deployments', d.id)}/nodes`),
        client.get<Obj[]>(`${at('deployments', d.id)}/node_roles`),
      ]);
      keyValues(out, [
        ['id', d.id],
        ['name', d.name],
        ['description', d.description],
        ['state', deploymentStateLabel(out, d.state)],
        ['parent', name(all, d.parent_id)],
        ['system', d.system],
        ['nodes', nodes.filter((n) => !n.system).length],
        ['roles', roles.map((r) => r.name).join(', ')],
        ['node-roles', countsLine(out, nrs.map((n) => n.state))],
        ['created', d.created_at],
        ['updated', d.updated_at],
      ]);
      if (opts.nodeRoles) {
        out.write(`\n${paint(out, 'bold', 'node-roles')}\n`);
        await printNodeRoles(ctx, nrs, names, true);
      }
    }));

  deps
    .command('create <name>')
    .description('create a deployment (proposed)')
    .option('--parent <deployment>', 'parent deployment (default: system)')
    .option('--description <text>', 'description')
    .action(run(async ({ client, out, opts }, depName: string) => {
      const d: Obj = await client.post('/api/v2/deployments', { name: depName, parent: opts.parent, description: opts.description });
      if (out.json) return printJson(out, d);
      out.write(`created deployment ${d.name} (id ${d.id})\n`);
    }));

  deps
    .command('delete <deployment>')
    .description('delete a deployment (its nodes move to its parent)')
    .action(run(async ({ client, out }, key: string) => {
      const res: Obj = await client.delete(at('deployments', key));
      if (out.json) return printJson(out, res);
      out.write(`${res.message}\n`);
    }));

  for (const [action, what] of [
    ['commit', 'commit it: its proposed node-roles become runnable and the annealer takes them'],
    ['propose', 'propose it again: the annealer stops picking its node-roles'],
  ] as const) {
    deps
      .command(`${action} <deployment>`)
      .description(what)
      .action(run(async ({ client, out }, key: string) => {
        const d: Obj = await client.put(`${at('deployments', key)}/${action}`);
        if (out.json) return printJson(out, d);
        out.write(`${action === 'commit' ? 'committed' : 'proposed'} deployment ${d.name}: ${deploymentStateLabel(out, d.state)}\n`);
      }));
  }

  deps
    .command('graph <deployment>')
    .description('the node-role dependency graph: each node-role and the node-roles that wait on it')
    .action(run(async ({ client, out }, key: string) => {
      const graph: Obj[] = await client.get(`${at('deployments', key)}/graph`);
      if (out.json) return printJson(out, graph);
      if (graph.length === 0) return out.write(`${paint(out, 'dim', '(no node-roles)')}\n`);
      const label = new Map(graph.map((g) => [g.id as number, g.name as string]));
      for (const g of graph) {
        out.write(`${paint(out, 'bold', String(g.id))} ${g.name}\n`);
        for (const a of g.adjacencies as Obj[]) out.write(`  → ${a.nodeTo} ${label.get(a.nodeTo) ?? ''}\n`);
      }
    }));

  deps
    .command('plan <deployment>')
    .description('what committing it would do: node-roles that would run or block, in order, and changed attribs')
    .option('--inputs', 'include each node-role\'s staged inputs (JSON)')
    .action(run(async ({ client, out, opts }, key: string) => {
      const plan: Obj = await client.get(`${at('deployments', key)}/plan`, { query: { inputs: !!opts.inputs || out.json } });
      if (out.json) return printJson(out, plan);
      out.write(`plan for committing deployment ${plan.deployment.name} (${deploymentStateLabel(out, plan.deployment.state)})\n`);
      const nrs = plan.node_roles as Obj[];
      if (nrs.length === 0) out.write(`${paint(out, 'dim', 'no node-role would change')}\n`);
      else {
        table(out, nrs, [
          { header: '#', get: (e) => e.order, right: true },
          { header: 'id', get: (e) => e.id, right: true },
          { header: 'node', get: (e) => e.node },
          { header: 'role', get: (e) => e.role },
          { header: 'cohort', get: (e) => e.cohort, right: true },
          { header: 'from', get: (e) => stateLabel(out, e.from) },
          { header: 'to', get: (e) => stateLabel(out, e.to) },
          { header: 'reason', get: (e) => e.reason },
          { header: 'waiting on', get: (e) => (e.waiting_on as Obj[]).map((w) => `${w.id} (${w.state})`).join(', ') },
        ]);
        if (opts.inputs) for (const e of nrs) if (e.inputs) out.write(`\n${paint(out, 'bold', `inputs of ${e.id} (${e.role} on ${e.node})`)}\n${JSON.stringify(e.inputs, null, 2)}\n`);
      }
      for (const dr of plan.deployment_roles as Obj[]) {
        for (const c of dr.changed as Obj[]) out.write(`attrib ${c.attrib ?? c.name} of ${dr.role}: ${JSON.stringify(c.committed)} → ${JSON.stringify(c.proposed)}\n`);
      }
      if ((plan.reruns as number[]).length) out.write(`in flight now and would run again: ${(plan.reruns as number[]).join(', ')}\n`);
      const to = new Map<string, number>();
      for (const e of nrs) to.set(e.to, (to.get(e.to) ?? 0) + 1);
      out.write(`${[...to.entries()].map(([s, n]) => `${n} → ${stateLabel(out, s)}`).join(', ') || 'nothing to do'}\n`);
    }));
}
