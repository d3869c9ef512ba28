/**
 * Wire objects with the exact key sets of api-compat.md §1.6. Internal fields (blobs, hashes,
 * credentials) never leave through here; new information goes to new endpoints, not new keys.
 */
import type { Attrib, AvailableHammer, Barclamp, Deployment, DeploymentRole, Hammer, Jig, Node, NodeRole, Role, Run } from '../domain/entities.js';
import { ROLE_FLAGS } from '../domain/entities.js';

/** What nodeJson reads of a node (store/rows.ts NODE_SHOWN_COLUMNS): listings need not load the rest. */
export type NodeShown = Pick<Node, 'id' | 'name' | 'description' | 'admin' | 'target_role_id' | 'deployment_id' | 'allocated' | 'alive' | 'available' | 'bootenv' | 'quirks' | 'system' | 'created_at' | 'updated_at'>;

export function nodeJson(n: NodeShown) {
  return {
    id: n.id, name: n.name, description: n.description, admin: n.admin, target_role_id: n.target_role_id,
    deployment_id: n.deployment_id, allocated: n.allocated, alive: n.alive, available: n.available, bootenv: n.bootenv,
    quirks: n.quirks, system: n.system, created_at: n.created_at, updated_at: n.updated_at,
  };
}

/** `state` is the computed deployment state (−1..2). */
export function deploymentJson(d: Deployment, state: number) {
  return { id: d.id, name: d.name, description: d.description, state, system: d.system, parent_id: d.parent_id, created_at: d.created_at, updated_at: d.updated_at };
}

export function roleJson(r: Role) {
  const flags = Object.fromEntries(ROLE_FLAGS.map((f) => [f, r[f]]));
  return {
    id: r.id, name: r.name, description: r.description, type: r.type, jig_name: r.jig_name, provides: r.provides,
    conflicts: r.conflicts, ...flags, barclamp_id: r.barclamp_id, cohort: r.cohort, created_at: r.created_at, updated_at: r.updated_at,
  };
}

export function nodeRoleJson(nr: NodeRole, nodeError: boolean) {
  return {
    id: nr.id, deployment_id: nr.deployment_id, role_id: nr.role_id, node_id: nr.node_id, state: nr.state, cohort: nr.cohort,
    run_count: nr.run_count, status: nr.status, runlog: nr.runlog, available: nr.available, order: nr.order, node_error: nodeError,
    created_at: nr.created_at, updated_at: nr.updated_at,
  };
}

export function deploymentRoleJson(dr: DeploymentRole) {
  return { id: dr.id, deployment_id: dr.deployment_id, role_id: dr.role_id, created_at: dr.created_at, updated_at: dr.updated_at };
}

export function attribJson(a: Attrib, value?: unknown) {
  const o: Record<string, unknown> = {
    id: a.id, barclamp_id: a.barclamp_id, role_id: a.role_id, type: a.type, name: a.name, description: a.description,
    writable: a.writable, schema: a.schema, order: a.order, map: a.map, ui_renderer: a.ui_renderer, default: a.default,
    created_at: a.created_at, updated_at: a.updated_at,
  };
  if (value !== undefined) o.value = value;
  return o;
}

export function jigJson(j: Jig) {
  return {
    id: j.id, name: j.name, description: j.description, order: j.order, type: j.type, active: j.active,
    client_role_name: j.client_role_name, server: j.server, client_name: j.client_name, key: j.key,
    created_at: j.created_at, updated_at: j.updated_at,
  };
}

export function barclampJson(b: Barclamp) {
  return {
    id: b.id, name: b.name, description: b.description, barclamp_id: b.barclamp_id, version: b.version, source_url: b.source_url,
    source_path: b.source_path, commit: b.commit, build_on: b.build_on, build_version: b.build_version,
    cfg_data: JSON.stringify(b.cfg_data), created_at: b.created_at, updated_at: b.updated_at,
  };
}

export function hammerJson(h: Hammer, actions: Record<string, string[]>) {
  return {
    id: h.id, node_id: h.node_id, available_hammer_id: h.available_hammer_id, priority: h.priority, type: h.type, name: h.name,
    endpoint: h.endpoint, username: h.username, actions, created_at: h.created_at, updated_at: h.updated_at,
  };
}

/** STI class → underscored type name for the content type (`SecureShellHammer` → `secure_shell_hammer`). */
export function underscore(klass: string): string {
  return klass.replace(/::/g, '_').replace(/([a-z\d])([A-Z])/g, '$1_$2').toLowerCase();
}

export function availableHammerJson(h: AvailableHammer) {
  return { id: h.id, name: h.name, klass: h.klass, priority: h.priority, created_at: h.created_at, updated_at: h.updated_at };
}

/** Devise hid the password and tracking columns: exactly these seven keys. */
export function userJson(u: { id: number; username: string; email: string | null; is_admin: boolean; is_locked: boolean; created_at: string; updated_at: string }) {
  return { id: u.id, username: u.username, email: u.email, is_admin: u.is_admin, is_locked: u.is_locked, created_at: u.created_at, updated_at: u.updated_at };
}

export function groupJson(g: { id: number; name: string; description: string; category: string; order: number; created_at: string; updated_at: string }) {
  return { id: g.id, name: g.name, description: g.description, category: g.category, order: g.order, created_at: g.created_at, updated_at: g.updated_at };
}

/**
 * A run as the original's queue showed it (spec §11.3): `run_data` is the staged input,
 * `running` is true while the jig works (false for an async run waiting for its retry),
 * `queue` names the runner (`HighPriorityRunner` for a replay), `job_id` is the run id while
 * it is running (there is no separate job table).
 */
export function runQueueJson(r: Run) {
  return {
    id: r.id, node_role_id: r.node_role_id, node_id: r.node_id, run_data: { data: r.inputs ?? {} }, running: r.status === 'running',
    queue: r.replay_of !== null ? 'HighPriorityRunner' : 'NodeRoleRunner', job_id: r.status === 'running' ? r.id : null,
  };
}

/** A run's history record: inputs with provenance, output wall, log, exit status and timings. */
export function runJson(r: Run) {
  const ms = r.started_at && r.ended_at ? Date.parse(r.ended_at) - Date.parse(r.started_at) : null;
  return {
    id: r.id, node_role_id: r.node_role_id, node_id: r.node_id, jig: r.jig, status: r.status, worker: r.worker, replay_of: r.replay_of,
    inputs: r.inputs, provenance: r.provenance, wall: r.wall, log: r.log, exit_status: r.exit_status, error: r.error,
    created_at: r.created_at, started_at: r.started_at, ended_at: r.ended_at, deadline: r.deadline, duration_ms: ms,
  };
}
