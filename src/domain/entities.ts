/**
 * The domain entities as the engine sees them (spec §1): plain data, JSON blobs parsed,
 * booleans as booleans. The store maps rows to these; the API maps these to wire objects.
 */
import type { JsonObject, Json } from './json.js';

export const ROLE_FLAGS = [
  'library',
  'implicit',
  'bootstrap',
  'discovery',
  'cluster',
  'destructive',
  'abstract',
  'milestone',
  'powersave',
  'service',
] as const;
export type RoleFlag = (typeof ROLE_FLAGS)[number];

export interface Barclamp {
  id: number;
  name: string;
  description: string;
  barclamp_id: number | null;
  version: string;
  build_version: string;
  source_url: string | null;
  source_path: string | null;
  commit: string | null;
  build_on: string | null;
  cfg_data: JsonObject;
  created_at: string;
  updated_at: string;
}

export interface Jig {
  id: number;
  name: string;
  description: string;
  order: number;
  type: string;
  active: boolean;
  client_role_name: string | null;
  server: string | null;
  client_name: string | null;
  key: string | null;
  barclamp_id: number | null;
  created_at: string;
  updated_at: string;
}

export type RoleFlags = Record<RoleFlag, boolean>;

export interface Role extends RoleFlags {
  id: number;
  name: string;
  description: string;
  type: string;
  template: JsonObject;
  jig_name: string;
  barclamp_id: number;
  cohort: number;
  provides: string[];
  conflicts: string[];
  /** run timeout in seconds, null = the jig's default */
  timeout: number | null;
  notes: JsonObject;
  created_at: string;
  updated_at: string;
}

export interface Attrib {
  id: number;
  name: string;
  description: string;
  barclamp_id: number;
  /** null ⇒ node-level attrib (lives in node discovery/hint) */
  role_id: number | null;
  type: string;
  order: number;
  map: string;
  /** Kwalify-style schema fragment; present ⇒ writable */
  schema: Json | null;
  writable: boolean;
  ui_renderer: string;
  default: { value: Json };
  created_at: string;
  updated_at: string;
}

export interface Deployment {
  id: number;
  name: string;
  description: string;
  system: boolean;
  parent_id: number | null;
  /** stored state: PROPOSED 0 or COMMITTED 1 (the API computes ERROR/ACTIVE) */
  state: number;
  created_at: string;
  updated_at: string;
}

export interface DeploymentRole {
  id: number;
  deployment_id: number;
  role_id: number;
  committed_data: JsonObject;
  /** null ⇔ committed */
  proposed_data: JsonObject | null;
  wall: JsonObject;
  notes: JsonObject;
  created_at: string;
  updated_at: string;
}

export interface Node {
  id: number;
  name: string;
  description: string;
  order: number;
  admin: boolean;
  system: boolean;
  target_role_id: number | null;
  deployment_id: number;
  discovery: JsonObject;
  hint: JsonObject;
  notes: JsonObject;
  quirks: string[];
  allocated: boolean;
  alive: boolean;
  available: boolean;
  bootenv: string;
  created_at: string;
  updated_at: string;
}

export interface NodeRole {
  id: number;
  deployment_id: number;
  role_id: number;
  node_id: number;
  state: number;
  cohort: number;
  run_count: number;
  rerun: number;
  replay_of: number | null;
  status: string | null;
  runlog: string;
  available: boolean;
  order: number;
  proposed_data: JsonObject;
  committed_data: JsonObject;
  sysdata: JsonObject;
  wall: JsonObject;
  notes: JsonObject;
  created_at: string;
  updated_at: string;
}

export const RunStatus = {
  RUNNING: 'running',
  ASYNC: 'async',
  DONE: 'done',
  FAILED: 'failed',
  TIMEOUT: 'timeout',
  INTERRUPTED: 'interrupted',
  SKIPPED: 'skipped',
} as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

export interface Run {
  id: number;
  node_role_id: number;
  node_id: number;
  jig: string;
  status: RunStatus;
  worker: string | null;
  lease_until: string | null;
  deadline: string | null;
  inputs: JsonObject | null;
  provenance: Record<string, unknown> | null;
  wall: JsonObject | null;
  log: string;
  exit_status: number | null;
  error: string | null;
  replay_of: number | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

export interface AvailableHammer {
  id: number;
  name: string;
  klass: string;
  priority: number;
  created_at: string;
  updated_at: string;
}

export interface Hammer {
  id: number;
  node_id: number;
  available_hammer_id: number;
  priority: number;
  type: string;
  name: string;
  endpoint: string | null;
  username: string;
  authenticator: string | null;
  created_at: string;
  updated_at: string;
}

/** Names follow spec §1 validations. */
export const NAME_RE = {
  barclamp: /^[a-zA-Z][_a-zA-Z0-9]*$/,
  role: /^[a-zA-Z][-_a-zA-Z0-9]*$/,
  jig: /^[a-zA-Z][-_a-zA-Z0-9]*$/,
  node: /^([A-Za-z0-9_-]{1,63}\.){2,}[A-Za-z]{2,}$/,
  group: /^[a-zA-Z][_a-zA-Z0-9]*$/,
};

export const RESERVED_BARCLAMP_NAMES = [
  'framework', 'api', 'barclamp', 'docs', 'machines', 'jigs', 'roles', 'groups', 'users', 'support', 'application',
];
