/**
 * The simulator's registration: N nodes with generated inventory on the `sim` hammer, alive and
 * available, optionally with roles bound in a deployment and committed. Works in chunks, one
 * transaction each, so thousands of nodes register in seconds.
 */
import type { Engine } from '../engine/engine.js';
import { createNode, commitNode } from '../engine/nodes.js';
import { bindRole } from '../engine/binding.js';
import { createDeployment, commitDeployment } from '../engine/deployments.js';
import { getDeployment } from '../store/deployments.js';
import { refreshStatistics } from '../store/db.js';
import { generateInventory, simNodeName } from './inventory.js';

export interface SimOptions {
  nodes: number;
  /** deployment to put the nodes in (created if missing); default: system */
  deployment?: string;
  /** roles to bind on every node */
  roles?: string[];
  /** commit the nodes (and the deployment) so the annealer starts (default true) */
  commit?: boolean;
  domain?: string;
  /** called after each chunk with the number registered so far */
  progress?: (done: number, total: number) => void;
  chunk?: number;
}

export interface SimResult {
  nodes: string[];
  deployment: string;
}

export async function registerSimNodes(engine: Engine, o: SimOptions): Promise<SimResult> {
  const depName = o.deployment ?? 'system';
  if (!(await getDeployment(engine.db, depName))) await engine.tx((ctx) => createDeployment(ctx, { name: depName }));
  const existing = await engine.db.selectFrom('nodes').select('name').where('name', 'like', `node-%.${o.domain ?? 'sim.crowbar.local'}`).execute();
  let index = existing.length;
  const names: string[] = [];
  const chunk = o.chunk ?? 50;
  const commit = o.commit !== false;
  while (names.length < o.nodes) {
    const batch: string[] = [];
    await engine.tx(async (ctx) => {
      for (let i = 0; i < chunk && names.length + batch.length < o.nodes; i++) {
        index++;
        const name = simNodeName(index, o.domain);
        await createNode(ctx, {
          name,
          description: `simulated node ${index}`,
          deployment: depName,
          alive: true,
          available: true,
          bootenv: 'local',
          discovery: generateInventory(index, name),
          hammers: ['sim'],
        });
        for (const r of o.roles ?? []) await bindRole(ctx, r, name, depName);
        if (commit) await commitNode(ctx, name);
        batch.push(name);
      }
    });
    names.push(...batch);
    if (names.length % (chunk * 10) === 0 || names.length === o.nodes) await refreshStatistics(engine.db, engine.caps);
    o.progress?.(names.length, o.nodes);
  }
  if (commit && depName !== 'system') await engine.tx((ctx) => commitDeployment(ctx, depName));
  return { nodes: names, deployment: depName };
}
