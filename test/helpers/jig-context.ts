/**
 * A `JigContext` for running a jig directly in a test: the log is collected (`log()` joins it,
 * `chunks` keeps the pieces as written), the work dir is a fresh temp dir under `workRoot`, and
 * the run, node-role, role and node ids come from a counter unless given.
 */
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import type { JsonObject } from '../../src/domain/json.js';
import type { NodeHammer } from '../../src/hammers/types.js';
import type { JigContext } from '../../src/jigs/types.js';

export interface JigHarness {
  ctx: JigContext;
  /** everything logged so far */
  log(): string;
  chunks: string[];
}

let seq = 0;

export async function jigContext(o: {
  hammer: NodeHammer;
  jig: string;
  role: string;
  sourcePath: string | null;
  workRoot: string;
  inputs?: JsonObject;
  signal?: AbortSignal;
  node?: { id?: number; name?: string };
  id?: number;
}): Promise<JigHarness> {
  const chunks: string[] = [];
  const id = o.id ?? ++seq;
  const nodeId = o.node?.id ?? id;
  const ctx: JigContext = {
    run: { id, attempt: 1 },
    nodeRole: { id, state: 2, runCount: 0 },
    role: { id, name: o.role, jig: o.jig, barclamp: 'test' },
    node: { id: nodeId, name: o.node?.name ?? `node-${nodeId}.test`, admin: false, system: false, quirks: [] },
    sourcePath: o.sourcePath,
    inputs: o.inputs ?? {},
    hammer: o.hammer,
    log: (text) => chunks.push(text),
    signal: o.signal ?? new AbortController().signal,
    workDir: await mkdtemp(path.join(o.workRoot, 'work-')),
  };
  return { ctx, log: () => chunks.join(''), chunks };
}
