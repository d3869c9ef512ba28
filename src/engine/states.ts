/**
 * The node-role state machine (spec §2) applied set-at-a-time: commit, block-or-todo, todo
 * (retry), error, activate, propose, poke. DESIGN.md's improvement is built in: an ERROR
 * blocks its descendants only, never unrelated node-roles of the same node.
 */
import { NodeRoleState as S, stateName } from '../domain/states.js';
import { InvalidTransitionError, ConflictError } from '../domain/errors.js';
import { briefs, childrenOf, closure, parentsOf, setState, strandedBlocked, type Brief } from '../store/node-roles.js';
import type { Ctx, StateChange } from './context.js';
import { chunks, now } from '../store/db.js';

/** Sets `to` on each brief whose state differs and records the changes. */
export async function apply(ctx: Ctx, items: Brief[], to: number, extra: { runlog?: string } = {}): Promise<Brief[]> {
  const moving = items.filter((b) => b.state !== to || extra.runlog !== undefined);
  if (moving.length === 0) return [];
  await setState(ctx.tx, moving.map((b) => b.id), to, extra);
  ctx.recordChanges(moving.map<StateChange>((b) => ({ id: b.id, node_id: b.node_id, from: b.state, to })));
  for (const b of moving) b.state = to;
  return moving;
}

/**
 * `block_or_todo` for a set: TODO when every parent is ACTIVE, else BLOCKED. Processed in
 * cohort order so a parent moved by this same call is seen in its new state by its children.
 */
export async function blockOrTodo(ctx: Ctx, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  const items = (await briefs(ctx.tx, ids)).sort((a, b) => a.cohort - b.cohort || a.id - b.id);
  const parents = await parentsOf(ctx.tx, ids);
  const current = new Map(items.map((b) => [b.id, b.state]));
  const todo: Brief[] = [];
  const blocked: Brief[] = [];
  for (const b of items) {
    const ok = (parents.get(b.id) ?? []).every((p) => (current.get(p.id) ?? p.state) === S.ACTIVE);
    (ok ? todo : blocked).push(b);
    current.set(b.id, ok ? S.TODO : S.BLOCKED);
  }
  await apply(ctx, todo, S.TODO);
  await apply(ctx, blocked, S.BLOCKED);
  await blockChildren(ctx, ids);
}

/** Direct children in ERROR or TODO become BLOCKED, recursively (spec §2.3). */
export async function blockChildren(ctx: Ctx, ids: number[]): Promise<void> {
  let frontier = ids;
  const seen = new Set<number>();
  while (frontier.length) {
    const kids = [...(await childrenOf(ctx.tx, frontier)).values()]
      .flat()
      .filter((c) => (c.state === S.ERROR || c.state === S.TODO) && !seen.has(c.id));
    const unique = [...new Map(kids.map((k) => [k.id, k])).values()];
    unique.forEach((k) => seen.add(k.id));
    await apply(ctx, unique, S.BLOCKED);
    frontier = unique.map((k) => k.id);
  }
}

/** Retry (`todo!`): needs every parent ACTIVE; blocks TODO/ERROR children. */
export async function todo(ctx: Ctx, id: number, label: string): Promise<void> {
  const [item] = await briefs(ctx.tx, [id]);
  if (!item) return;
  const waiting = ((await parentsOf(ctx.tx, [id])).get(id) ?? []).filter((p) => p.state !== S.ACTIVE);
  if (waiting.length) {
    throw new InvalidTransitionError(
      label,
      stateName(item.state),
      'todo',
      `parent node-role(s) ${waiting.map((p) => `${p.id} (${stateName(p.state)})`).join(', ')} are not active; fix and retry those first`,
    );
  }
  await apply(ctx, [item], S.TODO);
  await blockChildren(ctx, [id]);
}

/**
 * `error!`: ERROR (a BLOCKED node-role is left alone, as in the original), and every descendant
 * not PROPOSED or in TRANSITION becomes BLOCKED. Unrelated node-roles keep running.
 */
export async function error(ctx: Ctx, ids: number[], runlog?: string): Promise<void> {
  const items = (await briefs(ctx.tx, ids)).filter((b) => b.state !== S.BLOCKED);
  if (items.length === 0) return;
  await apply(ctx, items, S.ERROR, runlog !== undefined ? { runlog } : {});
  const desc = (await closure(ctx.tx, items.map((b) => b.id), 'down')).filter(
    (d) => d.state !== S.PROPOSED && d.state !== S.TRANSITION && d.state !== S.BLOCKED,
  );
  await apply(ctx, desc, S.BLOCKED);
}

/**
 * `active!` for node-roles whose runs succeeded: run_count += 1, then ACTIVE — or back to
 * TODO/BLOCKED when poked while running. BLOCKED children whose parents are now all ACTIVE
 * become TODO.
 */
export async function activate(ctx: Ctx, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  const t = now();
  const rerun: number[] = [];
  for (const c of chunks(ids)) {
    const rows = await ctx.tx.selectFrom('node_roles').select(['id', 'rerun']).where('id', 'in', c).where('rerun', '=', 1).execute();
    rerun.push(...rows.map((r) => r.id));
    await ctx.tx
      .updateTable('node_roles')
      .set((eb) => ({ run_count: eb('run_count', '+', 1), rerun: 0, updated_at: t }))
      .where('id', 'in', c)
      .execute();
  }
  const rerunSet = new Set(rerun);
  const items = (await briefs(ctx.tx, ids)).filter((b) => b.state === S.TRANSITION);
  const done = items.filter((b) => !rerunSet.has(b.id));
  await apply(ctx, done, S.ACTIVE);
  if (rerun.length) await blockOrTodo(ctx, rerun);
  await unblockChildren(ctx, done.map((b) => b.id));
}

/** BLOCKED children of `ids` whose parents are all ACTIVE become TODO. */
export async function unblockChildren(ctx: Ctx, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  const kids = [...new Map([...(await childrenOf(ctx.tx, ids)).values()].flat().filter((c) => c.state === S.BLOCKED).map((c) => [c.id, c])).values()];
  if (kids.length === 0) return;
  const parents = await parentsOf(ctx.tx, kids.map((k) => k.id));
  const ready = kids.filter((k) => (parents.get(k.id) ?? []).every((p) => p.state === S.ACTIVE));
  await apply(ctx, ready, S.TODO);
}

/**
 * Moves BLOCKED node-roles whose parents are all ACTIVE to TODO; returns how many. With several
 * writers a commit can decide BLOCKED from a parent state that a concurrent annealer cycle
 * changes to ACTIVE before the commit lands, and that cycle's unblock cannot see the commit's
 * rows yet; the annealer calls this when it goes idle to repair exactly that.
 */
export async function unblockStranded(ctx: Ctx, limit = 1000): Promise<number> {
  const ids = await strandedBlocked(ctx.tx, limit);
  await apply(ctx, await briefs(ctx.tx, ids), S.TODO);
  return ids.length;
}

export async function propose(ctx: Ctx, ids: number[]): Promise<void> {
  await apply(ctx, await briefs(ctx.tx, ids), S.PROPOSED);
}

/**
 * Poke (spec §4.5): node-roles that are ACTIVE go back to block-or-todo so they run again; a
 * node-role in TRANSITION is flagged to run again as soon as its current run ends.
 */
export async function poke(ctx: Ctx, ids: number[]): Promise<number[]> {
  const items = await briefs(ctx.tx, ids);
  const active = items.filter((b) => b.state === S.ACTIVE).map((b) => b.id);
  const inFlight = items.filter((b) => b.state === S.TRANSITION).map((b) => b.id);
  for (const c of chunks(inFlight)) await ctx.tx.updateTable('node_roles').set({ rerun: 1 }).where('id', 'in', c).execute();
  await blockOrTodo(ctx, active);
  return [...active, ...inFlight];
}

export function assertState(label: string, state: number, allowed: number[], to: string): void {
  if (!allowed.includes(state)) {
    throw new ConflictError(`${label} is ${stateName(state)}; it must be ${allowed.map(stateName).join(' or ')} to ${to}`);
  }
}
