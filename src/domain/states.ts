/**
 * Node-role and deployment states. The numbers are wire-visible (api-compat.md) and must not change.
 * Owns the legal node-role transitions; the engine applies them, this module only decides.
 */

export const NodeRoleState = {
  ERROR: -1,
  ACTIVE: 0,
  TODO: 1,
  TRANSITION: 2,
  BLOCKED: 3,
  PROPOSED: 4,
} as const;
export type NodeRoleState = (typeof NodeRoleState)[keyof typeof NodeRoleState];

export const DeploymentState = {
  ERROR: -1,
  PROPOSED: 0,
  COMMITTED: 1,
  ACTIVE: 2,
} as const;
export type DeploymentState = (typeof DeploymentState)[keyof typeof DeploymentState];

const names: Record<number, string> = {
  [-1]: 'error',
  0: 'active',
  1: 'todo',
  2: 'transition',
  3: 'blocked',
  4: 'proposed',
};

/** Lower-case name of a node-role state, e.g. `stateName(1) === 'todo'`. */
export function stateName(state: number): string {
  return names[state] ?? `unknown(${state})`;
}

/** Parses a state given as a number or a name ("todo", "TODO", "1"). */
export function parseState(value: string | number): NodeRoleState | undefined {
  const n = typeof value === 'number' ? value : /^-?\d+$/.test(value) ? Number(value) : undefined;
  if (n !== undefined) return n in names ? (n as NodeRoleState) : undefined;
  const hit = Object.entries(names).find(([, name]) => name === String(value).toLowerCase());
  return hit ? (Number(hit[0]) as NodeRoleState) : undefined;
}

/**
 * Which states a method may start from (spec §2.2). `todo` and `block` are allowed from
 * anywhere (todo additionally needs every parent ACTIVE, checked by the engine).
 */
export const allowedFrom = {
  commit: [NodeRoleState.PROPOSED],
  transition: [NodeRoleState.TODO, NodeRoleState.ACTIVE, NodeRoleState.TRANSITION],
  active: [NodeRoleState.TRANSITION],
} as const;

export function canTransition(method: keyof typeof allowedFrom, from: number): boolean {
  return (allowedFrom[method] as readonly number[]).includes(from);
}
