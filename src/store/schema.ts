/**
 * Table types for Kysely. Both dialects store the same shapes: JSON as text, booleans as 0/1
 * integers, timestamps as ISO-8601 text, so every query and every mapper is dialect-neutral.
 */
import type { Generated } from 'kysely';

type Bool = number; // 0 | 1
type JsonText = string;
type Stamp = string;

export interface BarclampTable {
  id: Generated<number>;
  name: string;
  description: string;
  barclamp_id: number | null;
  version: string;
  build_version: string;
  source_url: string | null;
  source_path: string | null;
  commit: string | null;
  build_on: string | null;
  cfg_data: JsonText;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface JigTable {
  id: Generated<number>;
  name: string;
  description: string;
  order: number;
  type: string;
  active: Bool;
  client_role_name: string | null;
  server: string | null;
  client_name: string | null;
  key: string | null;
  barclamp_id: number | null;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface RoleTable {
  id: Generated<number>;
  name: string;
  description: string;
  type: string;
  template: JsonText;
  jig_name: string;
  barclamp_id: number;
  cohort: number;
  provides: JsonText;
  conflicts: JsonText;
  library: Bool;
  implicit: Bool;
  bootstrap: Bool;
  discovery: Bool;
  cluster: Bool;
  destructive: Bool;
  abstract: Bool;
  milestone: Bool;
  powersave: Bool;
  service: Bool;
  /** run timeout in seconds; null = the jig's default */
  timeout: number | null;
  notes: JsonText;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface RoleRequireTable {
  id: Generated<number>;
  role_id: number;
  requires: string;
  required_role_id: number | null;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface RoleRequireAttribTable {
  id: Generated<number>;
  role_id: number;
  attrib_name: string;
  attrib_at: string | null;
  /** 1: receive the attrib from every ancestor node-role of its owner, as a list (migration 0003) */
  collect: Generated<Bool>;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface AttribTable {
  id: Generated<number>;
  name: string;
  description: string;
  barclamp_id: number;
  role_id: number | null;
  type: string;
  order: number;
  map: string;
  schema: JsonText | null;
  writable: Bool;
  ui_renderer: string;
  default: JsonText;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface DeploymentTable {
  id: Generated<number>;
  name: string;
  description: string;
  system: Bool;
  parent_id: number | null;
  state: number;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface DeploymentRoleTable {
  id: Generated<number>;
  deployment_id: number;
  role_id: number;
  committed_data: Generated<JsonText>;
  proposed_data: JsonText | null;
  wall: Generated<JsonText>;
  notes: Generated<JsonText>;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface NodeTable {
  id: Generated<number>;
  name: string;
  description: Generated<string>;
  order: Generated<number>;
  admin: Bool;
  system: Bool;
  target_role_id: Generated<number | null>;
  deployment_id: number;
  discovery: Generated<JsonText>;
  hint: Generated<JsonText>;
  notes: Generated<JsonText>;
  quirks: Generated<JsonText>;
  allocated: Generated<Bool>;
  alive: Generated<Bool>;
  available: Generated<Bool>;
  bootenv: Generated<string>;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface NodeRoleTable {
  id: Generated<number>;
  deployment_id: number;
  role_id: number;
  node_id: number;
  state: Generated<number>;
  cohort: Generated<number>;
  run_count: Generated<number>;
  /** 1 ⇒ poked while in flight: when the current run ends, run again instead of going ACTIVE */
  rerun: Generated<number>;
  /** a run whose recorded inputs the next run of this node-role re-uses (replay) */
  replay_of: Generated<number | null>;
  status: Generated<string | null>;
  runlog: Generated<string>;
  available: Generated<Bool>;
  order: Generated<number>;
  proposed_data: Generated<JsonText>;
  committed_data: Generated<JsonText>;
  sysdata: Generated<JsonText>;
  wall: Generated<JsonText>;
  notes: Generated<JsonText>;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface NodeRolePcmTable {
  parent_id: number;
  child_id: number;
}

export interface NodeRoleAttribLinkTable {
  id: Generated<number>;
  parent_id: number;
  child_id: number;
  attrib_id: number;
}

/** Every execution of a node-role by its jig, kept as history. */
export interface RunTable {
  id: Generated<number>;
  node_role_id: number;
  node_id: number;
  jig: string;
  /** running | async | done | failed | timeout | interrupted | skipped */
  status: string;
  /** worker that claimed it (`host:pid:n`) */
  worker: string | null;
  lease_until: Stamp | null;
  deadline: Stamp | null;
  inputs: JsonText | null;
  provenance: JsonText | null;
  wall: JsonText | null;
  log: string;
  exit_status: number | null;
  error: string | null;
  replay_of: number | null;
  created_at: Stamp;
  started_at: Stamp | null;
  ended_at: Stamp | null;
}

export interface AvailableHammerTable {
  id: Generated<number>;
  name: string;
  klass: string;
  priority: number;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface HammerTable {
  id: Generated<number>;
  node_id: number;
  available_hammer_id: number;
  priority: number;
  type: string;
  name: string;
  endpoint: string | null;
  username: string;
  authenticator: string | null;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface GroupTable {
  id: Generated<number>;
  name: string;
  description: string;
  category: string;
  order: number;
  created_at: Stamp;
  updated_at: Stamp;
}

export interface NodeGroupTable {
  node_id: number;
  group_id: number;
}

export interface UserTable {
  id: Generated<number>;
  username: string;
  email: string | null;
  password_hash: string | null;
  /** MD5(username:Crowbar:password) for HTTP Digest; null = Digest unavailable for this user */
  digest_ha1: string | null;
  is_admin: Bool;
  is_locked: Bool;
  settings: JsonText;
  created_at: Stamp;
  updated_at: Stamp;
}

/** Bearer API tokens; only the SHA-256 of the token is kept. */
export interface ApiTokenTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  token_hash: string;
  created_at: Stamp;
  last_used_at: Stamp | null;
}

/** Form-login sessions; only the SHA-256 of the cookie value is kept. */
export interface SessionTable {
  id: Generated<number>;
  user_id: number;
  token_hash: string;
  created_at: Stamp;
  expires_at: Stamp;
}

/** Server-wide secrets shared by every server on the database (e.g. the Digest nonce key). */
export interface AuthSecretTable {
  name: string;
  value: string;
  created_at: Stamp;
}

/** Append-only event log; `id` is the monotonically increasing SSE event id. */
export interface EventTable {
  id: Generated<number>;
  type: string;
  payload: JsonText;
  created_at: Stamp;
}

export interface SettingTable {
  key: string;
  value: JsonText;
}

export interface Database {
  barclamps: BarclampTable;
  jigs: JigTable;
  roles: RoleTable;
  role_requires: RoleRequireTable;
  role_require_attribs: RoleRequireAttribTable;
  attribs: AttribTable;
  deployments: DeploymentTable;
  deployment_roles: DeploymentRoleTable;
  nodes: NodeTable;
  node_roles: NodeRoleTable;
  node_role_pcms: NodeRolePcmTable;
  node_role_attrib_links: NodeRoleAttribLinkTable;
  runs: RunTable;
  available_hammers: AvailableHammerTable;
  hammers: HammerTable;
  groups: GroupTable;
  node_groups: NodeGroupTable;
  users: UserTable;
  api_tokens: ApiTokenTable;
  sessions: SessionTable;
  auth_secrets: AuthSecretTable;
  events: EventTable;
  settings: SettingTable;
}
