/**
 * What a successful run's outputs change beyond the node-role's wall (spec §3.4, §4.5):
 * node-level attribs found in the wall are promoted to the node's hints, reservations are
 * gathered, and node-roles that want a value that changed are poked so they run again.
 */
import { getPath, wrapPath, deepMerge, isObject, type JsonObject } from '../domain/json.js';
import { requireNodeRole, attribLinkChildren, listNodeRoles } from '../store/node-roles.js';
import { getNodeLite, updateNode } from '../store/nodes.js';
import { nodeLevelAttribs, rolesByIds, listAttribs } from '../store/roles.js';
import type { Ctx } from './context.js';
import { poke } from './states.js';

/** Called inside the completion transaction once the new `wall` is stored; `previousWall` is the one it replaced. */
export async function afterSuccess(ctx: Ctx, nodeRoleId: number, wall: JsonObject, previousWall?: JsonObject): Promise<void> {
  const nr = await requireNodeRole(ctx.tx, nodeRoleId);
  const role = (await rolesByIds(ctx.tx, [nr.role_id])).get(nr.role_id)!;
  const node = (await getNodeLite(ctx.tx, nr.node_id))!;
  const before = previousWall ?? {};

  // node-level attribs of the role's barclamp → node hint; poke node-roles on the node that want them
  let hint = node.hint;
  const changedNodeAttribs: number[] = [];
  for (const a of await nodeLevelAttribs(ctx.tx, role.barclamp_id)) {
    const v = getPath(wall, a.map);
    if (v === undefined) continue;
    if (JSON.stringify(getPath(hint, a.map)) === JSON.stringify(v)) continue;
    hint = deepMerge(hint, wrapPath(a.map, v));
    changedNodeAttribs.push(a.id);
  }
  const reservations = getPath(wall, 'crowbar_wall/reservations');
  if (isObject(reservations)) hint = deepMerge(hint, { reservations });
  if (hint !== node.hint) await updateNode(ctx.tx, node.id, { hint });

  const toPoke = new Set<number>();
  if (changedNodeAttribs.length) {
    const wanting = await ctx.tx
      .selectFrom('role_require_attribs as w')
      .innerJoin('attribs as a', 'a.name', 'w.attrib_name')
      .select('w.role_id')
      .where('a.id', 'in', changedNodeAttribs)
      .execute();
    const roleIds = [...new Set(wanting.map((w) => w.role_id))];
    if (roleIds.length) for (const n of await listNodeRoles(ctx.tx, { nodeId: node.id, roleIds })) if (n.id !== nr.id) toPoke.add(n.id);
  }

  // linked consumers whose wanted value changed
  const links = await attribLinkChildren(ctx.tx, [nr.id]);
  if (links.length) {
    const attribs = new Map((await listAttribs(ctx.tx, { roleId: role.id })).map((a) => [a.id, a]));
    for (const l of links) {
      const a = attribs.get(l.attrib_id);
      if (a && JSON.stringify(getPath(before, a.map)) !== JSON.stringify(getPath(wall, a.map))) toPoke.add(l.child_id);
    }
  }
  if (toPoke.size) await poke(ctx, [...toPoke]);
}
