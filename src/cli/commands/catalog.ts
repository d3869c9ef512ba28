/**
 * The catalog: `crowbar roles list|show`, `jigs list|show|activate|deactivate`,
 * `barclamps list|show|import DIR`, `hammers list`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { isMap, parseDocument } from 'yaml';
import { at, Names, name, run } from './context.js';
import { keyValues, paint, printJson, table } from './output.js';

type Obj = Record<string, any>;

const ROLE_FLAGS = ['library', 'implicit', 'bootstrap', 'discovery', 'cluster', 'destructive', 'abstract', 'milestone', 'powersave', 'service'];
const flagsOf = (r: Obj) => ROLE_FLAGS.filter((f) => r[f]).join(',');

/** The YAML files `barclamp_import DIR` posts, in its order: `crowbar.yml`, then `barclamps/*.yml`. */
export function barclampFiles(dir: string): string[] {
  const root = resolve(dir);
  if (!existsSync(root)) throw new Error(`${dir} does not exist`);
  if (statSync(root).isFile()) return [root];
  const files: string[] = [];
  if (existsSync(join(root, 'crowbar.yml'))) files.push(join(root, 'crowbar.yml'));
  const sub = join(root, 'barclamps');
  if (existsSync(sub) && statSync(sub).isDirectory()) {
    for (const f of readdirSync(sub).filter((f) => /\.ya?ml$/.test(f)).sort()) files.push(join(sub, f));
  }
  if (files.length === 0) throw new Error(`${dir} holds no barclamp: expected ${join(dir, 'crowbar.yml')} or ${join(dir, 'barclamps')}/*.yml`);
  return files;
}

/** The document text with `barclamp.source_path` set to the barclamp's directory (as barclamp_import does). */
export function withSourcePath(text: string, sourcePath: string): string {
  const doc = parseDocument(text);
  if (doc.errors.length || !isMap(doc.contents) || !isMap(doc.get('barclamp'))) return text; // the server reports what is wrong
  doc.setIn(['barclamp', 'source_path'], sourcePath);
  return doc.toString();
}

export function registerCatalog(program: Command): void {
  // roles ////////////////////////////////////////////////////////////////////////////////
  const roles = program.command('roles').description('roles: what can be bound to a node (from barclamps)');
  roles
    .command('list')
    .description('list roles by cohort')
    .option('-b, --barclamp <barclamp>', 'only the roles of this barclamp')
    .action(run(async ({ client, out, opts }) => {
      let list: Obj[] = await client.get('/api/v2/roles');
      const barclamps = new Map((await client.get<Obj[]>('/api/v2/barclamps')).map((b) => [b.id as number, b.name as string]));
      if (opts.barclamp) list = list.filter((r) => barclamps.get(r.barclamp_id) === opts.barclamp || String(r.barclamp_id) === opts.barclamp);
      if (out.json) return printJson(out, list);
      list.sort((a, b) => a.cohort - b.cohort || a.name.localeCompare(b.name));
      table(out, list, [
        { header: 'id', get: (r) => r.id, right: true },
        { header: 'name', get: (r) => r.name },
        { header: 'barclamp', get: (r) => name(barclamps, r.barclamp_id) },
        { header: 'jig', get: (r) => r.jig_name },
        { header: 'cohort', get: (r) => r.cohort, right: true },
        { header: 'flags', get: flagsOf },
      ]);
    }));
  roles
    .command('show <role>')
    .description('a role and its attribs (with their values in the role template)')
    .action(run(async ({ client, out }, key: string) => {
      const r: Obj = await client.get(at('roles', key));
      if (out.json) return printJson(out, r);
      const [attribs, barclamps] = await Promise.all([client.get<Obj[]>(`${at('roles', r.id)}/attribs`), client.get<Obj[]>('/api/v2/barclamps')]);
      keyValues(out, [
        ['id', r.id],
        ['name', r.name],
        ['description', r.description],
        ['barclamp', barclamps.find((b) => b.id === r.barclamp_id)?.name ?? r.barclamp_id],
        ['jig', r.jig_name],
        ['cohort', r.cohort],
        ['flags', flagsOf(r)],
        ['provides', (r.provides ?? []).join(', ')],
        ['conflicts', (r.conflicts ?? []).join(', ')],
      ]);
      out.write(`\n${paint(out, 'bold', 'attribs')}\n`);
      table(out, attribs, [
        { header: 'name', get: (a) => a.name },
        { header: 'map', get: (a) => a.map },
        { header: 'writable', get: (a) => a.writable },
        { header: 'value', get: (a) => JSON.stringify(a.value ?? null) },
      ]);
    }));

  // jigs /////////////////////////////////////////////////////////////////////////////////
  const jigs = program.command('jigs').description('jigs: what runs a role on a node (script, noop, test, …)');
  jigs
    .command('list')
    .description('list jigs and whether they are active')
    .action(run(async ({ client, out }) => {
      const list: Obj[] = await client.get('/api/v2/jigs');
      if (out.json) return printJson(out, list);
      table(out, list, [
        { header: 'id', get: (j) => j.id, right: true },
        { header: 'name', get: (j) => j.name },
        { header: 'active', get: (j) => (j.active ? paint(out, 'green', 'yes') : paint(out, 'gray', 'no')) },
        { header: 'type', get: (j) => j.type },
        { header: 'description', get: (j) => j.description ?? '' },
      ]);
    }));
  jigs
    .command('show <jig>')
    .description('a jig')
    .action(run(async ({ client, out }, key: string) => {
      const j: Obj = await client.get(at('jigs', key));
      if (out.json) return printJson(out, j);
      keyValues(out, Object.entries(j));
    }));
  for (const [action, active] of [['activate', true], ['deactivate', false]] as const) {
    jigs
      .command(`${action} <jig>`)
      .description(active ? 'activate a jig: its roles become runnable' : 'deactivate a jig: its roles stop being run')
      .action(run(async ({ client, out }, key: string) => {
        const j: Obj = await client.put(at('jigs', key), { active });
        if (out.json) return printJson(out, j);
        out.write(`jig ${j.name} is ${j.active ? 'active' : 'inactive'}\n`);
      }));
  }

  // barclamps ////////////////////////////////////////////////////////////////////////////
  const barclamps = program.command('barclamps').description('barclamps: bundles of roles, jigs and attribs');
  barclamps
    .command('list')
    .description('list imported barclamps')
    .action(run(async ({ client, out }) => {
      const list: Obj[] = await client.get('/api/v2/barclamps');
      if (out.json) return printJson(out, list);
      const names = new Map(list.map((b) => [b.id as number, b.name as string]));
      table(out, list, [
        { header: 'id', get: (b) => b.id, right: true },
        { header: 'name', get: (b) => b.name },
        { header: 'parent', get: (b) => (b.barclamp_id === b.id ? '' : name(names, b.barclamp_id)) },
        { header: 'version', get: (b) => b.version },
        { header: 'source', get: (b) => b.source_path ?? b.source_url ?? '' },
      ]);
    }));
  barclamps
    .command('show <barclamp>')
    .description('a barclamp')
    .action(run(async ({ client, out }, key: string) => {
      const b: Obj = await client.get(at('barclamps', key));
      if (out.json) return printJson(out, b);
      keyValues(out, Object.entries(b));
    }));
  barclamps
    .command('import <dir>')
    .description('import (or re-import) a barclamp directory: crowbar.yml, then barclamps/*.yml (admin only)')
    .action(run(async ({ client, out }, dir: string) => {
      const files = barclampFiles(dir);
      const source = statSync(resolve(dir)).isFile() ? resolve(dir, '..') : resolve(dir);
      const imported: Obj[] = [];
      for (const file of files) {
        const text = withSourcePath(readFileSync(file, 'utf8'), source);
        try {
          imported.push(await client.post('/api/v2/barclamps', { value: text, file }));
        } catch (e) {
          const msg = (e as Error).message;
          throw new Error(msg.includes(file) ? msg : `${file}: ${msg}`);
        }
        if (!out.json) out.write(`imported barclamp ${imported.at(-1)!.name} from ${file}\n`);
      }
      if (out.json) printJson(out, imported);
    }));

  // hammers //////////////////////////////////////////////////////////////////////////////
  const hammers = program.command('hammers').description('hammers: how crowbar reaches a node (ssh, sim, local, ipmi)');
  hammers
    .command('list')
    .description('list the hammers of every node (or of one)')
    .option('-n, --node <node>', 'only the hammers of this node')
    .action(run(async ({ client, out, opts }) => {
      const list: Obj[] = await client.get(opts.node ? `${at('nodes', opts.node)}/hammers` : '/api/v2/hammers');
      if (out.json) return printJson(out, list);
      const nodes = await new Names(client).nodes();
      table(out, list, [
        { header: 'id', get: (h) => h.id, right: true },
        { header: 'node', get: (h) => name(nodes, h.node_id) },
        { header: 'name', get: (h) => h.name },
        { header: 'priority', get: (h) => h.priority, right: true },
        { header: 'username', get: (h) => h.username ?? '' },
        { header: 'endpoint', get: (h) => h.endpoint ?? '' },
        { header: 'actions', get: (h) => Object.values(h.actions ?? {}).flat().join(',') },
      ]);
    }));
}
