/**
 * The jig contract. A jig receives only its staged inputs and a hammer to reach the node —
 * never a handle to the database — and returns outputs (the wall) or fails. The annealer owns
 * claiming, staging, timeouts and recording; jigs own execution.
 */
import type { JsonObject } from '../domain/json.js';
import type { NodeHammer } from '../hammers/types.js';

export interface JigContext {
  run: { id: number; attempt: number };
  nodeRole: { id: number; state: number; runCount: number };
  role: { id: number; name: string; jig: string; barclamp: string };
  node: { id: number; name: string; admin: boolean; system: boolean; quirks: string[] };
  /** directory of the role's barclamp (holds script/, ansible/, puppet/ trees); null for built-ins without files */
  sourcePath: string | null;
  /** the staged, injected attributes (attrs.json for scripts) */
  inputs: JsonObject;
  /** the node's run/xfer/power hammer */
  hammer: NodeHammer;
  /** appends a line (or chunk) to the run log; streamed to watchers */
  log(text: string): void;
  /** aborted on timeout or shutdown; jigs must stop promptly and clean up */
  signal: AbortSignal;
  /** scratch directory on the admin host private to this run, removed afterwards */
  workDir: string;
}

export interface JigResult {
  /** outputs; replace the node-role's wall (spec §7.3) */
  wall?: JsonObject;
  /** true ⇒ the work continues elsewhere; the node-role stays in TRANSITION until re-run */
  async?: boolean;
}

/** Thrown (or rejected) by a jig to fail a run with an exit status and a clear message. */
export class JigFailure extends Error {
  readonly exitStatus: number | null;
  constructor(message: string, exitStatus: number | null = null, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JigFailure';
    this.exitStatus = exitStatus;
  }
}

export interface JigDefinition {
  name: string;
  description: string;
  /**
   * `none`: the jig ignores inputs (noop), so the annealer skips staging them;
   * `full`: full attribute injection (spec §4.4).
   */
  stage: 'none' | 'full';
  /** default run timeout in seconds */
  timeoutSeconds: number;
  /**
   * may a run interrupted by a crash be run again from the start? (scripts, playbooks and
   * manifests are written to be idempotent; destructive roles are never re-run regardless)
   */
  rerunAfterCrash: boolean;
  /**
   * true ⇒ the run does no I/O and completes at once (noop): it does not hold one of the
   * annealer's global concurrency slots.
   */
  inline?: boolean;
  run(ctx: JigContext): Promise<JigResult>;
}

export function defineJig(def: JigDefinition): JigDefinition {
  return def;
}
