/** `crowbar users list|create|delete|token` and `crowbar groups list|show|create|delete|add-node|remove-node`. */
import type { Command } from 'commander';
import { at, positiveInt, run } from './context.js';
import { paint, printJson, table } from './output.js';

type Obj = Record<string, any>;

export function registerUsers(program: Command): void {
  const users = program.command('users').description('users and their API tokens');

  users
    .command('list')
    .description('list users')
    .action(run(async ({ client, out }) => {
      const list: Obj[] = await client.get('/api/v2/users');
      if (out.json) return printJson(out, list);
      table(out, list, [
        { header: 'id', get: (u) => u.id, right: true },
        { header: 'username', get: (u) => u.username },
        { header: 'email', get: (u) => u.email ?? '' },
        { header: 'admin', get: (u) => u.is_admin },
        { header: 'locked', get: (u) => (u.is_locked ? paint(out, 'red', 'yes') : 'no') },
      ]);
    }));

  users
    .command('create <username>')
    .description('create a user (admin only)')
    .option('--new-password <password>', "the new user's password (--password is yours)")
    .option('--email <email>', 'email address')
    .option('--admin', 'make the user an admin')
    .action(run(async ({ client, out, opts }, username: string) => {
      const u: Obj = await client.post('/api/v2/users', {
        username, email: opts.email, is_admin: !!opts.admin,
        ...(opts.newPassword !== undefined ? { password: opts.newPassword, password_confirmation: opts.newPassword } : {}),
      });
      if (out.json) return printJson(out, u);
      out.write(`created user ${u.username} (id ${u.id}${u.is_admin ? ', admin' : ''})\n`);
    }));

  users
    .command('delete <user>')
    .description('delete a user (admin only)')
    .action(run(async ({ client, out }, key: string) => {
      const res: Obj = await client.delete(at('users', key));
      if (out.json) return printJson(out, res);
      out.write(`${res.message}\n`);
    }));

  users
    .command('token <user>')
    .description("create an API token for a user (printed once; use it with --token or CROWBAR_TOKEN), or list or revoke the user's tokens")
    .option('--name <name>', 'a label for the new token')
    .option('--list', 'list the tokens instead of creating one')
    .option('--revoke <id>', 'revoke the token with this id', positiveInt('--revoke'))
    .action(run(async ({ client, out, opts }, key: string) => {
      const base = `${at('users', key)}/tokens`;
      if (opts.list) {
        const list: Obj[] = await client.get(base);
        if (out.json) return printJson(out, list);
        return table(out, list, [
          { header: 'id', get: (t) => t.id, right: true },
          { header: 'name', get: (t) => t.name },
          { header: 'created', get: (t) => t.created_at },
          { header: 'last used', get: (t) => t.last_used_at ?? '' },
        ]);
      }
      if (opts.revoke !== undefined) {
        const res: Obj = await client.delete(`${base}/${opts.revoke}`);
        if (out.json) return printJson(out, res);
        return out.write(`${res.message}\n`);
      }
      const t: Obj = await client.post(base, { name: opts.name ?? '' });
      if (out.json) return printJson(out, t);
      // the token alone on stdout, so `$(crowbar users token me)` captures it
      out.write(`${t.token}\n`);
      if (process.stderr.isTTY) process.stderr.write(`token ${t.id} for ${key}: shown once, store it now\n`);
    }));

  const groups = program.command('groups').description('groups of nodes');

  groups
    .command('list')
    .description('list groups')
    .action(run(async ({ client, out }) => {
      const list: Obj[] = await client.get('/api/v2/groups');
      if (out.json) return printJson(out, list);
      table(out, list, [
        { header: 'id', get: (g) => g.id, right: true },
        { header: 'name', get: (g) => g.name },
        { header: 'category', get: (g) => g.category },
        { header: 'order', get: (g) => g.order, right: true },
        { header: 'description', get: (g) => g.description ?? '' },
      ]);
    }));

  const printMembers = (out: Parameters<typeof table>[0], nodes: Obj[]) =>
    table(out, nodes, [
      { header: 'id', get: (n) => n.id, right: true },
      { header: 'name', get: (n) => n.name },
    ]);

  groups
    .command('show <group>')
    .description('a group and its nodes')
    .action(run(async ({ client, out }, key: string) => {
      const g: Obj = await client.get(at('groups', key));
      const nodes: Obj[] = await client.get(`${at('groups', g.id)}/nodes`);
      if (out.json) return printJson(out, { ...g, nodes });
      out.write(`group ${g.name} (${g.category}): ${nodes.length} node(s)\n`);
      printMembers(out, nodes);
    }));

  groups
    .command('create <name>')
    .description('create a group')
    .option('--category <category>', 'ui, rack, tag or class (default: ui)')
    .option('--description <text>', 'description')
    .action(run(async ({ client, out, opts }, groupName: string) => {
      const g: Obj = await client.post('/api/v2/groups', { name: groupName, category: opts.category, description: opts.description });
      if (out.json) return printJson(out, g);
      out.write(`created group ${g.name} (id ${g.id})\n`);
    }));

  groups
    .command('delete <group>')
    .description('delete a group')
    .action(run(async ({ client, out }, key: string) => {
      const res: Obj = await client.delete(at('groups', key));
      if (out.json) return printJson(out, res);
      out.write(`${res.message}\n`);
    }));

  groups
    .command('add-node <group> <node>')
    .description('add a node to a group')
    .action(run(async ({ client, out }, key: string, node: string) => {
      const nodes: Obj[] = await client.post(`${at('groups', key)}/nodes`, { node_id: node });
      if (out.json) return printJson(out, nodes);
      out.write(`added ${node} to group ${key} (${nodes.length} node(s))\n`);
    }));

  groups
    .command('remove-node <group> <node>')
    .description('remove a node from a group')
    .action(run(async ({ client, out }, key: string, node: string) => {
      const nodes: Obj[] = await client.delete(`${at('groups', key)}/nodes/${encodeURIComponent(node)}`);
      if (out.json) return printJson(out, nodes);
      out.write(`removed ${node} from group ${key} (${nodes.length} node(s) left)\n`);
    }));
}
