/**
 * Attribute injection (spec §4.4, quirks fixed): assembles a node-role's jig input from its
 * declared sources in increasing precedence and records, for every leaf, which source supplied
 * it. Jigs get the result and nothing else — never a handle to search the database.
 *
 * A collecting want (`collect: true`) gets, at its `at` path, the list of the attrib's values
 * from every linked parent that has one of its own (attrib defaults and null do not count), ordered by
 * node name then node-role id; `[]` when none has. The list is placed after the same-node
 * ancestors (so a co-located member's own value at the same path cannot replace it) and below
 * the node-role's own data. Provenance: the list's path names every member (layer
 * `attrib.collect`), and `<at>/<i>` holds the source of element i.
 */
import type { Attrib, DeploymentRole, Node, NodeRole, Role } from '../domain/entities.js';
import { ProvenancedBlob, getPath, wrapPath, isObject, type Json, type JsonObject, type Provenance, type Source } from '../domain/json.js';
import { getDeploymentRole } from '../store/deployments.js';
import { getNodeLite, nodeDiscovery } from '../store/nodes.js';
import { NotFoundError } from '../domain/errors.js';
import { attribLinksOf, closure, listNodeRoles, requireNodeRole } from '../store/node-roles.js';
import { getAttrib, roleAttribs, rolesByIds, wantedAttribs } from '../store/roles.js';
import type { Tx } from '../store/db.js';

export interface StagedInput {
  inputs: JsonObject;
  provenance: Provenance;
}

interface Layer {
  blob: JsonObject;
  source: Source;
}

/** The committed layers of one node-role, lowest precedence first (role template … NR committed). */
function committedLayers(nr: NodeRole, role: Role, dr: DeploymentRole | undefined, node: Node): Layer[] {
  const who = `${role.name} on ${node.name}`;
  const layers: Layer[] = [{ blob: role.template, source: { layer: 'role.template', id: role.id, label: role.name } }];
  if (dr) {
    layers.push({ blob: dr.wall, source: { layer: 'deployment_role.wall', id: dr.id, label: role.name } });
    layers.push({ blob: dr.committed_data, source: { layer: 'deployment_role.committed', id: dr.id, label: role.name } });
  }
  layers.push({ blob: nr.wall, source: { layer: 'node_role.wall', id: nr.id, label: who } });
  layers.push({ blob: nr.sysdata, source: { layer: 'node_role.sysdata', id: nr.id, label: who } });
  layers.push({ blob: nr.committed_data, source: { layer: 'node_role.committed', id: nr.id, label: who } });
  return layers;
}

function mergeLayers(layers: Layer[]): ProvenancedBlob {
  const b = new ProvenancedBlob();
  for (const l of layers) b.merge(l.blob, l.source);
  return b;
}

/** Value of an attrib in a merged blob, with the source of that value; undefined when absent. */
function readValue(blob: ProvenancedBlob, attrib: Attrib): { value: Json; source: Source } | undefined {
  const v = getPath(blob.value, attrib.map);
  if (v === undefined) return undefined;
  const src = blob.provenance[attrib.map] ?? Object.entries(blob.provenance).find(([p]) => p.startsWith(`${attrib.map}/`))?.[1];
  return { value: v, source: src ?? { layer: 'unknown', id: 0, label: attrib.name } };
}

/** Value of an attrib in a merged blob, with the source of that value (or the attrib default). */
function readAttrib(blob: ProvenancedBlob, attrib: Attrib): { value: unknown; source: Source } | undefined {
  const own = readValue(blob, attrib);
  if (own) return own;
  if (attrib.default?.value !== undefined && attrib.default.value !== null) {
    return { value: attrib.default.value, source: { layer: 'attrib.default', id: attrib.id, label: attrib.name } };
  }
  return undefined;
}

/** Node-level attrib value: hint wins over discovery, then the attrib's default. */
export function nodeAttribValue(node: Node, attrib: Attrib): { value: unknown; source: Source } | undefined {
  const hint = getPath(node.hint, attrib.map);
  if (hint !== undefined) return { value: hint, source: { layer: 'node.hint', id: node.id, label: node.name } };
  const disc = getPath(node.discovery, attrib.map);
  if (disc !== undefined) return { value: disc, source: { layer: 'node.discovery', id: node.id, label: node.name } };
  if (attrib.default?.value !== undefined && attrib.default.value !== null) {
    return { value: attrib.default.value, source: { layer: 'attrib.default', id: attrib.id, label: attrib.name } };
  }
  return undefined;
}

/** Stages the full input of a node-role from committed data (what a run receives). */
export async function stageInputs(tx: Tx, nodeRoleId: number): Promise<StagedInput> {
  const nr = await requireNodeRole(tx, nodeRoleId);
  const node = await getNodeLite(tx, nr.node_id);
  if (!node) throw new NotFoundError('node', nr.node_id);
  const roles = await rolesByIds(tx, [nr.role_id]);
  const role = roles.get(nr.role_id)!;
  const out = new ProvenancedBlob();

  const nodeCache = new Map<number, Node>([[node.id, node]]);
  const nodeOf = async (id: number): Promise<Node> => {
    let n = nodeCache.get(id);
    if (!n) {
      n = (await getNodeLite(tx, id))!;
      nodeCache.set(id, n);
    }
    return n;
  };
  const viewCache = new Map<number, ProvenancedBlob>();
  const committedView = async (other: NodeRole): Promise<ProvenancedBlob> => {
    const hit = viewCache.get(other.id);
    if (hit) return hit;
    const r = (await rolesByIds(tx, [other.role_id])).get(other.role_id)!;
    const n = await nodeOf(other.node_id);
    const view = mergeLayers(committedLayers(other, r, await getDeploymentRole(tx, other.deployment_id, other.role_id), n));
    viewCache.set(other.id, view);
    return view;
  };

  const wanted = await wantedAttribs(tx, role.id);

  // 1. node-level wanted attribs, wrapped at their map (or `at`) path
  const nodeLevel = wanted.filter((w) => w.attrib.role_id === null);
  if (nodeLevel.length) node.discovery = await nodeDiscovery(tx, node.id);
  for (const w of nodeLevel) {
    const hit = nodeAttribValue(node, w.attrib);
    if (hit) out.merge(wrapPath(w.at, hit.value as JsonObject), hit.source);
  }

  // 2. attribs supplied by linked parent node-roles (often on other nodes); collecting wants
  // are placed after step 3
  const links = await attribLinksOf(tx, nr.id);
  const collecting = wanted.filter((w) => w.collect && w.attrib.role_id !== null && w.attrib.role_id !== role.id);
  const collected = new Set(collecting.map((w) => w.attrib.id));
  const parents = links.length ? await listNodeRoles(tx, { ids: [...new Set(links.map((l) => l.parent_id))] }) : [];
  if (links.length) {
    for (const link of links) {
      if (collected.has(link.attrib_id)) continue;
      const parent = parents.find((p) => p.id === link.parent_id);
      const attrib = await getAttrib(tx, link.attrib_id);
      if (!parent || !attrib) continue;
      const hit = readAttrib(await committedView(parent), attrib);
      const at = wanted.find((w) => w.attrib.id === attrib.id)?.at ?? attrib.map;
      if (hit) out.merge(wrapPath(at, hit.value as JsonObject), hit.source);
    }
  }

  // 3. same-node ancestors, most distant first so the nearest ancestor wins
  const ancestors = (await closure(tx, [nr.id], 'up')).filter((a) => a.node_id === node.id);
  if (ancestors.length) {
    const rows = await listNodeRoles(tx, { ids: ancestors.map((a) => a.id) }, 'asc');
    for (const a of rows) {
      const view = await committedView(a);
      for (const [path, src] of Object.entries(view.provenance)) {
        out.merge(wrapPath(path, getPath(view.value, path) as JsonObject), src);
      }
    }
  }

  // 2b. collecting wants: the list of every linked parent's own value, by node name then id
  for (const w of collecting) {
    const members: Array<{ node: string; id: number; who: string; hit: { value: Json; source: Source } | undefined }> = [];
    for (const link of links) {
      const parent = link.attrib_id === w.attrib.id ? parents.find((p) => p.id === link.parent_id) : undefined;
      if (!parent) continue;
      const n = await nodeOf(parent.node_id);
      const r = (await rolesByIds(tx, [parent.role_id])).get(parent.role_id)!;
      const hit = readValue(await committedView(parent), w.attrib);
      members.push({ node: n.name, id: parent.id, who: `${r.name} on ${n.name}`, hit: hit?.value === null ? undefined : hit });
    }
    members.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.id - b.id));
    const valued = members.filter((m) => m.hit !== undefined);
    const missing = members.filter((m) => m.hit === undefined).map((m) => m.who);
    const label = `${w.attrib.name} collected from ${valued.length ? valued.map((m) => m.who).join(', ') : 'no node-role'}${missing.length ? ` (no value yet: ${missing.join(', ')})` : ''}`;
    out.placeList(w.at, valued.map((m) => m.hit!), { layer: 'attrib.collect', id: w.attrib.id, label });
  }

  // 4. own committed data: template ⊕ DR wall ⊕ DR committed ⊕ wall ⊕ sysdata ⊕ committed
  const dr = await getDeploymentRole(tx, nr.deployment_id, nr.role_id);
  for (const l of committedLayers(nr, role, dr, node)) out.merge(l.blob, l.source);

  // 5. defaults of the role's own attribs fill what is still missing
  for (const a of await roleAttribs(tx, role.id)) {
    if (a.default?.value === undefined || a.default.value === null) continue;
    out.merge(wrapPath(a.map, a.default.value as JsonObject), { layer: 'attrib.default', id: a.id, label: a.name }, true);
  }

  // 6–7. reservations, hints and quirks
  const nodeSrc: Source = { layer: 'node.hint', id: node.id, label: node.name };
  if (isObject(node.hint.reservations)) out.merge({ crowbar_wall: { reservations: node.hint.reservations } }, nodeSrc);
  if (Object.keys(node.hint).length) out.merge({ hints: node.hint }, nodeSrc);
  else out.merge({ hints: {} }, nodeSrc);
  out.merge({ quirks: node.quirks }, { layer: 'node.quirks', id: node.id, label: node.name });
  return { inputs: out.value, provenance: out.provenance };
}
