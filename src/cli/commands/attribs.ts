/**
 * `crowbar attribs get [attrib]` and `crowbar attribs set <attrib> <value>` on a target:
 * `--node`, `--deployment`, `--role` or `--node-role`. Without a target, `get` reads the
 * catalog. Values given on the command line are JSON when they parse (`5`, `true`, `{"a":1}`),
 * else strings.
 */
import type { Command } from 'commander';
import { at, jsonOrString, run, type Ctx } from './context.js';
import { keyValues, printJson, table } from './output.js';

type Obj = Record<string, any>;

const TARGETS = [
  ['node', 'nodes'],
  ['deployment', 'deployments'],
  ['role', 'roles'],
  ['nodeRole', 'node_roles'],
] as const;

/** `/api/v2/<kind>/<key>/attribs` for the one target given, or undefined for none. */
function targetPath(ctx: Ctx): { path: string; label: string } | undefined {
  const given = TARGETS.filter(([opt]) => ctx.opts[opt] !== undefined);
  if (given.length > 1) throw new Error(`give one target, not ${given.map(([o]) => `--${o === 'nodeRole' ? 'node-role' : o}`).join(' and ')}`);
  if (given.length === 0) return undefined;
  const [opt, path] = given[0]!;
  return { path: `${at(path, ctx.opts[opt])}/attribs`, label: `${opt === 'nodeRole' ? 'node-role' : opt} ${ctx.opts[opt]}` };
}

const targetOptions = (cmd: Command) =>
  cmd
    .option('-n, --node <node>', 'on a node')
    .option('-d, --deployment <deployment>', 'on a deployment (through its deployment-role)')
    .option('-r, --role <role>', "on a role (its template)")
    .option('--node-role <id>', 'on a node-role')
    .option('--bucket <bucket>', 'which bucket (get: all, user, note, wall, system, …; set: user or note)');

export function registerAttribs(program: Command): void {
  const attribs = program.command('attribs').description('attribs: named, typed values read and written on nodes, roles, deployments and node-roles');

  targetOptions(
    attribs
      .command('get [attrib]')
      .description('one attrib, or all of a target with their values; without a target, the attrib catalog'),
  ).action(run(async (ctx, attrib?: string) => {
    const { client, out, opts } = ctx;
    const t = targetPath(ctx);
    const query = { bucket: opts.bucket };
    if (!t) {
      if (attrib) {
        const a: Obj = await client.get(at('attribs', attrib));
        if (out.json) return printJson(out, a);
        return keyValues(out, Object.entries(a));
      }
      const list: Obj[] = await client.get('/api/v2/attribs');
      if (out.json) return printJson(out, list);
      return table(out, list, [
        { header: 'id', get: (a) => a.id, right: true },
        { header: 'name', get: (a) => a.name },
        { header: 'map', get: (a) => a.map },
        { header: 'writable', get: (a) => a.writable },
        { header: 'description', get: (a) => a.description ?? '' },
      ]);
    }
    if (attrib) {
      const a: Obj = await client.get(`${t.path}/${encodeURIComponent(attrib)}`, { query });
      if (out.json) return printJson(out, a);
      out.write(`${typeof a.value === 'string' ? a.value : JSON.stringify(a.value ?? null, null, 2)}\n`);
      return;
    }
    const list: Obj[] = await client.get(t.path, { query });
    if (out.json) return printJson(out, list);
    table(out, list, [
      { header: 'name', get: (a) => a.name },
      { header: 'map', get: (a) => a.map },
      { header: 'writable', get: (a) => a.writable },
      { header: 'value', get: (a) => JSON.stringify(a.value ?? null) },
    ]);
  }));

  targetOptions(
    attribs
      .command('set <attrib> <value>')
      .description('write an attrib on a target (VALUE is JSON when it parses, else a string); validated against its schema'),
  ).action(run(async (ctx, attrib: string, value: string) => {
    const { client, out, opts } = ctx;
    const t = targetPath(ctx);
    if (!t) throw new Error('say where to write it: --node, --deployment, --role or --node-role');
    const a: Obj = await client.put(`${t.path}/${encodeURIComponent(attrib)}`, { value: jsonOrString(value), ...(opts.bucket ? { bucket: opts.bucket } : {}) });
    if (out.json) return printJson(out, a);
    out.write(`${a.name} on ${t.label} = ${JSON.stringify(a.value)}\n`);
  }));
}
