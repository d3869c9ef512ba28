/**
 * Commit of node-roles and deployment-roles (spec §1.8, §2.2): data snapshots, the
 * PROPOSED → TODO/BLOCKED move, and the poke of node-roles whose committed attribs changed.
 */
import { ConflictError } from '../domain/errors.js';
import { NodeRoleState as S } from '../domain/states.js';
import { deepMerge, getPath } from '../domain/json.js';
import { getDeploymentRole, getDeploymentRoleById, updateDeploymentRole } from '../store/deployments.js';
import { attribLinkChildren, listNodeRoles, updateNodeRole } from '../store/node-roles.js';
import { roleAttribs, rolesByIds } from '../store/roles.js';
import type { Ctx } from './context.js';
import { blockOrTodo, poke } from './states.js';

/** Commits PROPOSED node-roles: committed_data ← proposed_data, then TODO or BLOCKED. */
export async function commitNodeRoles(ctx: Ctx, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  const nrs = (await listNodeRoles(ctx.tx, { ids })).filter((n) => n.state === S.PROPOSED);
  const roles = await rolesByIds(ctx.tx, [...new Set(nrs.map((n) => n.role_id))]);
  for (const nr of nrs) {
    const dr = await getDeploymentRole(ctx.tx, nr.deployment_id, nr.role_id);
    if (dr?.proposed_data) {
      throw new ConflictError(
        `cannot commit node-role ${nr.id} (${roles.get(nr.role_id)?.name}): its deployment-role ${dr.id} has uncommitted proposed data; commit the deployment-role first`,
      );
    }
    if (JSON.stringify(nr.committed_data) !== JSON.stringify(nr.proposed_data)) {
      await updateNodeRole(ctx.tx, nr.id, { committed_data: nr.proposed_data });
    }
  }
  await blockOrTodo(ctx, nrs.map((n) => n.id));
}

/**
 * Commits a deployment-role's proposed data. Node-roles of the role whose attrib values changed
 * are poked, and so are the node-roles that want those attribs through links.
 */
export async function commitDeploymentRole(ctx: Ctx, id: number): Promise<void> {
  const dr = await getDeploymentRoleById(ctx.tx, id);
  if (!dr || dr.proposed_data === null) return;
  const role = (await rolesByIds(ctx.tx, [dr.role_id])).get(dr.role_id)!;
  const before = deepMerge(deepMerge(role.template, dr.wall), dr.committed_data);
  const after = deepMerge(deepMerge(role.template, dr.wall), dr.proposed_data);
  const changed = (await roleAttribs(ctx.tx, role.id)).filter(
    (a) => JSON.stringify(getPath(before, a.map) ?? null) !== JSON.stringify(getPath(after, a.map) ?? null),
  );
  await updateDeploymentRole(ctx.tx, id, { committed_data: dr.proposed_data, proposed_data: null });
  if (changed.length === 0) return;
  const own = await listNodeRoles(ctx.tx, { deploymentId: dr.deployment_id, roleId: dr.role_id });
  const changedIds = new Set(changed.map((a) => a.id));
  const consumers = (await attribLinkChildren(ctx.tx, own.map((n) => n.id))).filter((l) => changedIds.has(l.attrib_id)).map((l) => l.child_id);
  await poke(ctx, [...new Set([...own.map((n) => n.id), ...consumers])]);
}

export async function proposeDeploymentRole(ctx: Ctx, id: number): Promise<void> {
  const dr = await getDeploymentRoleById(ctx.tx, id);
  if (!dr || dr.proposed_data !== null) return;
  await updateDeploymentRole(ctx.tx, id, { proposed_data: dr.committed_data });
}
