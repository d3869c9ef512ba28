/**
 * Binding roles to nodes (spec §5): safe-create with implicit parents on the same node,
 * deployment-chain scoping for shared (non-implicit) parents, provides/conflicts/abstract
 * checks, cluster roles, cohorts and attrib links; and the deletion rules of §5.6.
 *
 * Attrib links (§1.11): a wanted attrib owned by another role is supplied by the first ancestor
 * node-role of that role. A want with `collect: true` is supplied by every such ancestor (all
 * the cluster members the node-role depends on, on any node): a member bound later links to
 * each existing collector, and deleting a member only detaches a collector that still has
 * another member (the collector is poked; its list shrinks).
 */
import type { Node, NodeRole, Role } from '../domain/entities.js';
import { ConflictError } from '../domain/errors.js';
import { NodeRoleState as S, stateName } from '../domain/states.js';
import { deploymentChain, ensureDeploymentRole, requireDeployment } from '../store/deployments.js';
import { requireNode } from '../store/nodes.js';
import {
  addAttribLink, addEdge, attribLinkChildren, briefs, childrenOf, closure, deleteNodeRoles, insertNodeRole, listNodeRoles, parentsOf,
  type Brief,
} from '../store/node-roles.js';
import type { Tx } from '../store/db.js';
import { getJig } from '../store/jigs.js';
import { requireRole, roleParents, rolesByIds, unresolvedRequirements, wantedAttribs } from '../store/roles.js';
import type { Ctx } from './context.js';
import { blockOrTodo, poke } from './states.js';

/** The jig that will actually run a role: its own when active; in dev mode the test jig stands in. */
export function effectiveJig(ctx: Ctx, role: Role): Promise<string | undefined> {
  return ctx.memo(`jig:${role.jig_name}`, () => resolveJig(ctx, role));
}

async function resolveJig(ctx: Ctx, role: Role): Promise<string | undefined> {
  const jig = await getJig(ctx.tx, role.jig_name);
  if (jig?.active) return jig.name;
  if (ctx.opts.dev) {
    const test = await getJig(ctx.tx, 'test');
    if (test?.active) return 'test';
  }
  return undefined;
}

function bindError(role: Role, node: Node, reason: string): ConflictError {
  return new ConflictError(`cannot bind role '${role.name}' to node '${node.name}': ${reason}`, { role: role.name, node: node.name });
}

/** Binds `role` to `node` in `deploymentId` (default: the node's deployment); returns the node-role. */
export async function bindRole(ctx: Ctx, roleKey: number | string, nodeKey: number | string, deploymentKey?: number | string): Promise<NodeRole> {
  const role = await requireRole(ctx.tx, roleKey);
  const node = await requireNode(ctx.tx, nodeKey);
  const dep = deploymentKey === undefined ? node.deployment_id : (await requireDeployment(ctx.tx, deploymentKey)).id;
  return safeCreate(ctx, role, node, dep, []);
}

/** Node-roles on a node, read once per transaction and kept current by binding. */
async function onNode(ctx: Ctx, nodeId: number): Promise<NodeRole[]> {
  let list = ctx.bindIndex.byNode.get(nodeId);
  if (!list) {
    list = await listNodeRoles(ctx.tx, { nodeId });
    ctx.bindIndex.byNode.set(nodeId, list);
  }
  return list;
}

/** The first node-role of one of `roleIds` in a deployment (lowest cohort, then id), cached per transaction. */
async function inDeployment(ctx: Ctx, deploymentId: number, roleIds: number[]): Promise<NodeRole | undefined> {
  const k = `${deploymentId}:${roleIds.join(',')}`;
  if (!ctx.bindIndex.byDeploymentRole.has(k)) {
    ctx.bindIndex.byDeploymentRole.set(k, (await listNodeRoles(ctx.tx, { deploymentId, roleIds }))[0] ?? null);
  }
  return ctx.bindIndex.byDeploymentRole.get(k) ?? undefined;
}

function remember(ctx: Ctx, nr: NodeRole): void {
  ctx.bindIndex.byNode.get(nr.node_id)?.push(nr);
  for (const [k, v] of ctx.bindIndex.byDeploymentRole) {
    const [dep, roles] = k.split(':');
    if (v === null && Number(dep) === nr.deployment_id && roles!.split(',').map(Number).includes(nr.role_id)) ctx.bindIndex.byDeploymentRole.set(k, nr);
  }
}

async function safeCreate(ctx: Ctx, role: Role, node: Node, deploymentId: number, path: string[]): Promise<NodeRole> {
  const existing = (await onNode(ctx, node.id)).find((n) => n.role_id === role.id);
  if (existing) return existing;
  if (path.includes(role.name)) throw bindError(role, node, `requirement loop ${[...path, role.name].join(' -> ')}`);

  await validate(ctx, role, node);

  // 1. parents: direct requirements ∪ owners of wanted attribs
  const wanted = await ctx.memo(`wants:${role.id}`, () => wantedAttribs(ctx.tx, role.id));
  const parentRoles = await ctx.memo(`parents:${role.id}`, async () => {
    const out = new Map<number, Role>();
    for (const p of await roleParents(ctx.tx, role.id)) out.set(p.id, p);
    const ownerIds = wanted.map((w) => w.attrib.role_id).filter((id): id is number => id !== null && id !== role.id);
    for (const [id, r] of await rolesByIds(ctx.tx, ownerIds)) out.set(id, r);
    return out;
  });

  const parents: NodeRole[] = [];
  for (const p of [...parentRoles.values()].sort((a, b) => a.cohort - b.cohort || a.id - b.id)) {
    parents.push(await findOrBindParent(ctx, p, node, deploymentId, [...path, role.name]));
  }

  // 2–3. deployment-role, then the node-role itself
  await ctx.memo(`dr:${deploymentId}:${role.id}`, () => ensureDeploymentRole(ctx.tx, deploymentId, role.id));
  const cohort = parents.length ? Math.max(...parents.map((p) => p.cohort)) + 1 : 0;
  const nr = await insertNodeRole(ctx.tx, { deployment_id: deploymentId, role_id: role.id, node_id: node.id, state: S.PROPOSED, cohort });
  remember(ctx, nr);
  ctx.recordChanges([{ id: nr.id, node_id: node.id, from: S.PROPOSED, to: S.PROPOSED }]);
  ctx.emit('node_role.created', { id: nr.id, node_id: node.id, role_id: role.id, deployment_id: deploymentId });

  // 4. edges (+ cluster peers of each parent)
  for (const parent of parents) await link(ctx, parent, nr);
  if (role.cluster) await bindClusterChildren(ctx, nr);

  // 5. attrib links: each wanted attrib owned by a role is supplied by that role's (first) ancestor
  // node-role; a collecting want by every ancestor node-role of that role
  if (wanted.some((w) => w.attrib.role_id !== null && w.attrib.role_id !== role.id)) {
    const ancestors = await closure(ctx.tx, [nr.id], 'up');
    for (const w of wanted) {
      if (w.attrib.role_id === null || w.attrib.role_id === role.id) continue;
      const owners = ancestors.filter((a) => a.role_id === w.attrib.role_id);
      if (!owners.length) throw bindError(role, node, `no ancestor node-role supplies wanted attrib '${w.attrib.name}'`);
      for (const owner of w.collect ? owners : owners.slice(0, 1)) await addAttribLink(ctx.tx, owner.id, nr.id, w.attrib.id);
    }
  }
  return nr;
}

async function validate(ctx: Ctx, role: Role, node: Node): Promise<void> {
  if (role.abstract) throw bindError(role, node, 'the role is abstract; bind a role that provides it instead');
  const missing = await ctx.memo(`unresolved:${role.id}`, () => unresolvedRequirements(ctx.tx, role.id));
  if (missing.length) throw bindError(role, node, `required role(s) ${missing.map((m) => `'${m}'`).join(', ')} are not imported`);
  if (!(await effectiveJig(ctx, role))) {
    throw bindError(role, node, `its jig '${role.jig_name}' is not active${ctx.opts.dev ? '' : ' (activate the jig, or run in --dev mode to use the test jig)'}`);
  }
  const bound = await onNode(ctx, node.id);
  if (bound.length === 0) return;
  const roleIds = [...new Set(bound.map((n) => n.role_id))].sort();
  const others = await ctx.memo(`roles:${roleIds.join(',')}`, () => rolesByIds(ctx.tx, roleIds));
  for (const other of others.values()) {
    if (role.conflicts.includes(other.name) || other.conflicts.includes(role.name)) {
      throw bindError(role, node, `it conflicts with role '${other.name}' already on the node`);
    }
    if (other.provides.includes(role.name)) throw bindError(role, node, `role '${other.name}' on the node already provides it`);
    if (role.provides.includes(other.name)) throw bindError(role, node, `it provides '${other.name}', which is already on the node`);
    const both = role.provides.filter((p) => other.provides.includes(p));
    if (both.length) throw bindError(role, node, `it and role '${other.name}' both provide '${both.join("', '")}'`);
  }
}

function providersOf(ctx: Ctx, role: Role): Promise<number[]> {
  return ctx.memo(`providers:${role.id}`, () => findProviders(ctx, role));
}

async function findProviders(ctx: Ctx, role: Role): Promise<number[]> {
  const all = await ctx.tx.selectFrom('roles').select(['id', 'provides']).where('provides', 'like', `%"${role.name}"%`).execute();
  return [role.id, ...all.filter((r) => (JSON.parse(r.provides) as string[]).includes(role.name)).map((r) => r.id)];
}

async function findOrBindParent(ctx: Ctx, parent: Role, node: Node, deploymentId: number, path: string[]): Promise<NodeRole> {
  const candidates = await providersOf(ctx, parent);
  const here = (await onNode(ctx, node.id)).filter((n) => candidates.includes(n.role_id)).sort((a, b) => a.cohort - b.cohort || a.id - b.id);
  if (here[0]) return here[0];
  if (!parent.implicit) {
    for (const dep of await ctx.memo(`chain:${deploymentId}`, () => deploymentChain(ctx.tx, deploymentId))) {
      const found = await inDeployment(ctx, dep.id, candidates);
      if (found) return found;
    }
  }
  return safeCreate(ctx, parent, node, deploymentId, path);
}

/** Adds parent → child; a cluster parent's peers become parents too. Cohorts are pushed down. */
async function link(ctx: Ctx, parent: NodeRole | Brief, child: NodeRole | Brief): Promise<void> {
  const parentRole = (await ctx.memo(`roles:${parent.role_id}`, () => rolesByIds(ctx.tx, [parent.role_id]))).get(parent.role_id)!;
  const peers = parentRole.cluster
    ? await listNodeRoles(ctx.tx, { roleId: parent.role_id, deploymentId: parent.deployment_id })
    : [parent];
  for (const p of peers) {
    if ((await addEdge(ctx.tx, p.id, child.id)) && p.cohort + 1 > child.cohort) {
      await raiseCohort(ctx, child.id, p.cohort + 1);
      child.cohort = p.cohort + 1;
    }
  }
}

/**
 * A new cluster member inherits every child of its peers (spec §5.4); a child that collects an
 * attrib of the role gets an attrib link from the new member too. Nothing is poked here: the
 * new member has no value yet, and its first run that writes one pokes the collectors
 * (outputs.ts, through these links).
 */
async function bindClusterChildren(ctx: Ctx, nr: NodeRole): Promise<void> {
  const peers = (await listNodeRoles(ctx.tx, { roleId: nr.role_id, deploymentId: nr.deployment_id })).filter((p) => p.id !== nr.id);
  if (peers.length === 0) return;
  const kids = await ctx.tx
    .selectFrom('node_role_pcms as e')
    .innerJoin('node_roles as c', 'c.id', 'e.child_id')
    .select(['e.child_id', 'c.role_id'])
    .distinct()
    .where('e.parent_id', 'in', peers.map((p) => p.id))
    .execute();
  for (const k of kids) {
    if (await addEdge(ctx.tx, nr.id, k.child_id)) await raiseCohort(ctx, k.child_id, nr.cohort + 1);
  }
  for (const k of kids) {
    for (const w of await ctx.memo(`wants:${k.role_id}`, () => wantedAttribs(ctx.tx, k.role_id))) {
      if (w.collect && w.attrib.role_id === nr.role_id) await addAttribLink(ctx.tx, nr.id, k.child_id, w.attrib.id);
    }
  }
}

async function raiseCohort(ctx: Ctx, id: number, min: number): Promise<void> {
  let frontier: Array<[number, number]> = [[id, min]];
  while (frontier.length) {
    const next: Array<[number, number]> = [];
    for (const [nid, c] of frontier) {
      const res = await ctx.tx.updateTable('node_roles').set({ cohort: c }).where('id', '=', nid).where('cohort', '<', c).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) continue;
      const kids = await ctx.tx.selectFrom('node_role_pcms').select('child_id').where('parent_id', '=', nid).execute();
      for (const k of kids) next.push([k.child_id, c + 1]);
    }
    frontier = next;
  }
}

/**
 * Deletes a node-role (spec §5.6): allowed for a leaf, when every descendant is on the same
 * node, or when every descendant is PROPOSED and never ran. Descendants go first.
 * A child that only collects from this node-role (see `detachableCollectors`) is not a
 * descendant here: it loses this parent and is poked, and the rules apply to the rest.
 */
export async function deleteNodeRole(ctx: Ctx, id: number): Promise<void> {
  const [nr] = await briefs(ctx.tx, [id]);
  if (!nr) return;
  const detach = await detachableCollectors(ctx, nr);
  let desc: Brief[];
  if (detach.size === 0) desc = await closure(ctx.tx, [id], 'down');
  else {
    const kids = ((await childrenOf(ctx.tx, [id])).get(id) ?? []).filter((k) => !detach.has(k.id));
    desc = [...kids, ...(await closure(ctx.tx, kids.map((k) => k.id), 'down'))];
    for (const d of desc) detach.delete(d.id); // still a descendant through another child
  }
  const sameNode = desc.every((d) => d.node_id === nr.node_id);
  const untouched = desc.every((d) => d.state === S.PROPOSED && d.run_count === 0);
  if (desc.length && !sameNode && !untouched) {
    const blocker = desc.find((d) => d.node_id !== nr.node_id && !(d.state === S.PROPOSED && d.run_count === 0))!;
    throw new ConflictError(
      `cannot delete node-role ${id}: node-role ${blocker.id} on another node depends on it and is ${stateName(blocker.state)}; delete or propose that first`,
    );
  }
  if (nr.state === S.TRANSITION || desc.some((d) => d.state === S.TRANSITION)) {
    throw new ConflictError(`cannot delete node-role ${id}: it or a descendant is running; wait for the run to end`);
  }
  const order = [...desc].sort((a, b) => b.cohort - a.cohort).map((d) => d.id);
  await deleteNodeRoles(ctx.tx, [...order, id]);
  ctx.bindIndex.byNode.clear();
  ctx.bindIndex.byDeploymentRole.clear();
  ctx.emit('node_role.deleted', { ids: [...order, id] });
  if (detach.size) {
    // the list they were given changed: run again; one that waited only for the deleted member can go
    const waiting = (await briefs(ctx.tx, [...detach])).filter((b) => b.state === S.BLOCKED).map((b) => b.id);
    await poke(ctx, [...detach]);
    await blockOrTodo(ctx, waiting);
  }
}

/**
 * Direct children of `nr` that it supplies only through collecting wants and that keep another
 * parent of the same role (another cluster member) to collect from: deleting `nr` shrinks
 * their list instead of deleting or refusing for them. A child with a one-parent (non-collect)
 * link from `nr`, or whose last member `nr` is, is still a descendant under §5.6.
 */
async function detachableCollectors(ctx: Ctx, nr: Brief): Promise<Set<number>> {
  const out = new Set<number>();
  const links = await attribLinkChildren(ctx.tx, [nr.id]);
  if (links.length === 0) return out;
  const kids = (await childrenOf(ctx.tx, [nr.id])).get(nr.id) ?? [];
  const parents = await parentsOf(ctx.tx, kids.map((k) => k.id));
  for (const k of kids) {
    const mine = links.filter((l) => l.child_id === k.id);
    if (mine.length === 0) continue;
    const wants = await ctx.memo(`wants:${k.role_id}`, () => wantedAttribs(ctx.tx, k.role_id));
    const collecting = new Set(wants.filter((w) => w.collect).map((w) => w.attrib.id));
    if (!mine.every((l) => collecting.has(l.attrib_id))) continue;
    if ((parents.get(k.id) ?? []).some((p) => p.id !== nr.id && p.role_id === nr.role_id)) out.add(k.id);
  }
  return out;
}

/**
 * Redoes the attrib links of a want whose `collect` flag changed (barclamp re-import): each
 * node-role of the role gets a link from every ancestor node-role of the attrib's owner
 * (collect), or keeps only its first link (no longer collecting). Nothing is poked, as binding
 * pokes nothing; the next run stages from the new links.
 */
export async function relinkWant(tx: Tx, roleId: number, attribName: string, collect: boolean): Promise<void> {
  const attrib = await tx.selectFrom('attribs').select(['id', 'role_id']).where('name', '=', attribName).executeTakeFirst();
  if (!attrib || attrib.role_id === null || attrib.role_id === roleId) return;
  for (const nr of await listNodeRoles(tx, { roleId })) {
    if (collect) {
      for (const a of await closure(tx, [nr.id], 'up')) if (a.role_id === attrib.role_id) await addAttribLink(tx, a.id, nr.id, attrib.id);
      continue;
    }
    const links = await tx
      .selectFrom('node_role_attrib_links')
      .select('id')
      .where('child_id', '=', nr.id)
      .where('attrib_id', '=', attrib.id)
      .orderBy('id')
      .execute();
    if (links.length > 1) await tx.deleteFrom('node_role_attrib_links').where('id', 'in', links.slice(1).map((l) => l.id)).execute();
  }
}

/** Parents of a node-role that block it (not ACTIVE), for `why` and error messages. */
export async function blockingParents(ctx: Ctx, id: number): Promise<Brief[]> {
  return ((await parentsOf(ctx.tx, [id])).get(id) ?? []).filter((p) => p.state !== S.ACTIVE);
}

