/**
 * Row ↔ entity mapping shared by every aggregate file: JSON text → objects, 0/1 → booleans.
 * The one place that knows how the tables encode domain values.
 */
import type { Selectable } from 'kysely';
import { ROLE_FLAGS } from '../domain/entities.js';
import type {
  Attrib, AvailableHammer, Barclamp, Deployment, DeploymentRole, Hammer, Jig, Node, NodeRole, Role, Run,
} from '../domain/entities.js';
import type {
  AttribTable, AvailableHammerTable, BarclampTable, DeploymentRoleTable, DeploymentTable, HammerTable, JigTable,
  NodeRoleTable, NodeTable, RoleTable, RunTable,
} from './schema.js';
import { fromJson } from './db.js';

const b = (v: number | boolean | null | undefined) => v === 1 || v === true;

export function toBarclamp(r: Selectable<BarclampTable>): Barclamp {
  return { ...r, cfg_data: fromJson(r.cfg_data, {}) };
}

export function toJig(r: Selectable<JigTable>): Jig {
  return { ...r, active: b(r.active) };
}

export function toRole(r: Selectable<RoleTable>): Role {
  const role = {
    ...r,
    template: fromJson(r.template, {}),
    provides: fromJson<string[]>(r.provides, []),
    conflicts: fromJson<string[]>(r.conflicts, []),
    notes: fromJson(r.notes, {}),
  } as unknown as Role;
  for (const f of ROLE_FLAGS) role[f] = b(r[f]);
  return role;
}

export function toAttrib(r: Selectable<AttribTable>): Attrib {
  return {
    ...r,
    schema: r.schema === null ? null : fromJson(r.schema, null),
    writable: b(r.writable),
    default: fromJson(r.default, { value: null }),
  };
}

export function toDeployment(r: Selectable<DeploymentTable>): Deployment {
  return { ...r, system: b(r.system) };
}

export function toDeploymentRole(r: Selectable<DeploymentRoleTable>): DeploymentRole {
  return {
    ...r,
    committed_data: fromJson(r.committed_data, {}),
    proposed_data: r.proposed_data === null ? null : fromJson(r.proposed_data, {}),
    wall: fromJson(r.wall, {}),
    notes: fromJson(r.notes, {}),
  };
}

export function toNode(r: Selectable<NodeTable>): Node {
  return {
    ...r,
    admin: b(r.admin),
    system: b(r.system),
    allocated: b(r.allocated),
    alive: b(r.alive),
    available: b(r.available),
    discovery: fromJson(r.discovery, {}),
    hint: fromJson(r.hint, {}),
    notes: fromJson(r.notes, {}),
    quirks: fromJson<string[]>(r.quirks, []),
  };
}

/** The node columns the API shows (nodeJson's): no discovery, hint or notes. */
export const NODE_SHOWN_COLUMNS = [
  'id', 'name', 'description', 'admin', 'system', 'target_role_id', 'deployment_id', 'quirks', 'allocated', 'alive', 'available',
  'bootenv', 'created_at', 'updated_at',
] as const;
export type NodeShown = Pick<Node, (typeof NODE_SHOWN_COLUMNS)[number]>;

/** toNode for those columns only; no spread, so 10,000 rows convert in a few ms. */
export function toNodeShown(r: Pick<Selectable<NodeTable>, (typeof NODE_SHOWN_COLUMNS)[number]>): NodeShown {
  return {
    id: r.id, name: r.name, description: r.description, admin: b(r.admin), system: b(r.system), target_role_id: r.target_role_id,
    deployment_id: r.deployment_id, quirks: r.quirks === '[]' ? [] : fromJson<string[]>(r.quirks, []), allocated: b(r.allocated),
    alive: b(r.alive), available: b(r.available), bootenv: r.bootenv, created_at: r.created_at, updated_at: r.updated_at,
  };
}

export function toNodeRole(r: Selectable<NodeRoleTable>): NodeRole {
  return {
    ...r,
    available: b(r.available),
    proposed_data: fromJson(r.proposed_data, {}),
    committed_data: fromJson(r.committed_data, {}),
    sysdata: fromJson(r.sysdata, {}),
    wall: fromJson(r.wall, {}),
    notes: fromJson(r.notes, {}),
  };
}

export function toRun(r: Selectable<RunTable>): Run {
  return {
    ...r,
    status: r.status as Run['status'],
    inputs: r.inputs === null ? null : fromJson(r.inputs, {}),
    provenance: r.provenance === null ? null : fromJson(r.provenance, {}),
    wall: r.wall === null ? null : fromJson(r.wall, {}),
  };
}

export function toAvailableHammer(r: Selectable<AvailableHammerTable>): AvailableHammer {
  return { ...r };
}

export function toHammer(r: Selectable<HammerTable>): Hammer {
  return { ...r };
}

export const bool = (v: boolean | undefined): number => (v ? 1 : 0);

/** A numeric key (number or all-digit string) as an id; null for a natural key (a name). */
export function keyAsId(key: number | string): number | null {
  if (typeof key === 'number') return Number.isInteger(key) ? key : null;
  return /^\d+$/.test(key) ? Number(key) : null;
}
