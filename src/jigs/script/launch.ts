/**
 * The admin-host side of `launch.sh`, which runs a script jig role on the node in one command:
 * the tar of the run's files it reads on stdin, and its stdout protocol — the runner's output,
 * then lines starting with a per-run mark that carry the values written (`wall`, `F`/`L`
 * records, `end`) and say whether the run's directory is gone (`removed`) or was never made (`nodir`).
 */
import { randomBytes } from 'node:crypto';
import type { WallFile } from './wall.js';

/** The mark that starts each protocol line of a run whose nonce is `nonce`. */
export function launchMark(nonce: string): string {
  return `\u0001scriptjig-${nonce}`;
}

/** A fresh nonce for {@link launchMark}: unguessable, so no script output can pass for the protocol. */
export function newNonce(): string {
  return randomBytes(12).toString('hex');
}

/**
 * Passes the runner's stdout on to `sink` (the run log) and holds back the protocol: everything
 * from the first mark on (all protocol lines come after the runner has exited). The tail of a
 * chunk that could be the start of a mark waits for the next chunk or {@link end}.
 */
export class LaunchLogFilter {
  readonly #mark: string;
  readonly #sink: (text: string) => void;
  #pending = '';
  #done = false;

  constructor(mark: string, sink: (text: string) => void) {
    this.#mark = mark;
    this.#sink = sink;
  }

  push(chunk: string): void {
    if (this.#done) return;
    const text = this.#pending + chunk;
    const at = text.indexOf(this.#mark);
    if (at >= 0) {
      this.#done = true;
      this.#pending = '';
      if (at > 0) this.#sink(text.slice(0, at));
      return;
    }
    // keep back the longest tail that is a prefix of the mark
    let keep = Math.min(this.#mark.length - 1, text.length);
    while (keep > 0 && !this.#mark.startsWith(text.slice(text.length - keep))) keep--;
    this.#pending = text.slice(text.length - keep);
    if (text.length > keep) this.#sink(text.slice(0, text.length - keep));
  }

  end(): void {
    if (!this.#done && this.#pending) this.#sink(this.#pending);
    this.#pending = '';
    this.#done = true;
  }
}

export interface LaunchOutput {
  /** the run's directory is not there to remove: the launcher removed it, or could not create it */
  removed: boolean;
  /** the `wall … end` frame was complete: `files` and `warnings` are everything written */
  complete: boolean;
  files: WallFile[];
  warnings: string[];
}

/**
 * Reads the protocol lines from the whole stdout of a launch. A record that does not parse makes
 * the frame incomplete (never a wrong value).
 */
export function parseLaunchOutput(stdout: string, mark: string): LaunchOutput {
  const result: LaunchOutput = { removed: false, complete: false, files: [], warnings: [] };
  const at = stdout.indexOf(mark);
  if (at < 0) return result;
  // each segment: "<sp><kind>[ <path>]\n" then, for F, the base64 lines up to the next mark
  const segments = stdout.slice(at + mark.length).split(`\n${mark}`);
  let inWall = false;
  let broken = false;
  for (const segment of segments) {
    const nl = segment.indexOf('\n');
    const head = nl < 0 ? segment : segment.slice(0, nl);
    const body = nl < 0 ? '' : segment.slice(nl + 1);
    const m = /^ (wall|end|removed|nodir|F|L)(?: (.*))?$/s.exec(head);
    if (!m) {
      broken = true;
      continue;
    }
    const [, kind, arg] = m;
    if (kind === 'removed' || kind === 'nodir') {
      result.removed = true;
    } else if (kind === 'wall') {
      inWall = true;
    } else if (kind === 'end') {
      if (inWall && !broken) result.complete = true;
      inWall = false;
    } else if (!inWall || arg === undefined) {
      broken = true;
    } else {
      const rel = unescapePath(arg);
      if (kind === 'L') {
        result.warnings.push(`ignored symlink attrs/${rel}`);
      } else {
        if (!/^[A-Za-z0-9+/=\n]*$/.test(body)) broken = true;
        const parts = rel.split('/');
        if (parts.pop() !== 'wall') broken = true;
        result.files.push({ parts, text: Buffer.from(body, 'base64').toString('utf8') });
      }
    }
  }
  return result;
}

/** Undoes launch.sh's path escaping: `\\` → `\`, `\n` → newline. */
function unescapePath(text: string): string {
  return text.replace(/\\(.)/gs, (_, c: string) => (c === 'n' ? '\n' : c));
}
