/**
 * Reading what an ansible-playbook run left behind: the wall from the callback plugin's
 * wall.json (set_stats values), and — when the run failed — a message naming the failed task and
 * its error, from the plugin's failures.jsonl and the tail of the play's output. Local files
 * and text only.
 */
import { readFile } from 'node:fs/promises';
import { deepMerge, isObject } from '../../domain/json.js';
import type { JsonObject } from '../../domain/json.js';

/** One line of failures.jsonl (see callback/crowbar_wall.py). */
export interface TaskFailure {
  kind: 'failed' | 'unreachable';
  host: string;
  task: string;
  result: Record<string, unknown>;
  items?: Array<Record<string, unknown>>;
}

const LINE_MAX = 400;
const DETAIL_LINES = 12;
const OUTPUT_LINES = 10;
/** lines of the default stdout callback that carry an error */
const ERROR_LINE = /^(?:fatal: |failed: |ERROR! |\[ERROR\]|An exception occurred)/;

/**
 * The wall: set_stats values of the run (`_run`, from `per_host: false`) deep-merged with the
 * ones recorded for `host` (`per_host: true`; they win). Missing file ⇒ undefined.
 */
export async function readWall(file: string, host: string): Promise<JsonObject | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const custom: unknown = JSON.parse(text);
  if (!isObject(custom)) throw new Error('wall.json does not hold an object');
  const run = custom['_run'];
  const mine = custom[host];
  return deepMerge(isObject(run) ? run : {}, isObject(mine) ? mine : {});
}

/** The entries of failures.jsonl; none when the file is missing. Unparsable lines are skipped. */
export async function readFailures(file: string): Promise<TaskFailure[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const out: TaskFailure[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (isObject(v) && typeof v['task'] === 'string' && isObject(v['result'])) out.push(v as unknown as TaskFailure);
    } catch {
      // a line cut short by a kill
    }
  }
  return out;
}

/** True when a failure list says the host could not be reached. */
export function unreachableFailure(failures: TaskFailure[]): TaskFailure | undefined {
  return failures.findLast((f) => f.kind === 'unreachable');
}

/**
 * What went wrong, for the run's error: the last failed task (the one that stopped the play)
 * with its message and stderr, or ansible-playbook's own `ERROR!` text; then the error lines of
 * the output (`fatal:`, `failed:`, `ERROR!`), last ones first cut.
 */
export function describeFailure(failures: TaskFailure[], outputTail: string[]): string {
  const parts: string[] = [];
  const last = failures.at(-1);
  if (last?.kind === 'unreachable') {
    parts.push(`the node is unreachable: ${oneLine(text(last.result['msg']) || 'no message')} (task "${last.task}")`);
  } else if (last) {
    parts.push(`task "${last.task}" failed: ${taskDetail(last)}`);
  }
  const errorLines = errorLinesOf(outputTail);
  if (!last) {
    // no task failed: ansible-playbook itself stopped (syntax error, missing role, …)
    const firstError = outputTail.findIndex((l) => l.startsWith('ERROR!'));
    const lines =
      firstError >= 0
        ? outputTail.slice(firstError, firstError + DETAIL_LINES)
        : outputTail.filter((l) => l.trim()).slice(-DETAIL_LINES);
    parts.push(lines.map(clip).join('\n') || 'no output');
  } else if (errorLines.length > 0) {
    parts.push(`ansible output:\n${errorLines.join('\n')}`);
  }
  return parts.join('\n');
}

function errorLinesOf(lines: string[]): string[] {
  return lines.filter((l) => ERROR_LINE.test(l)).slice(-OUTPUT_LINES).map(clip);
}

function taskDetail(f: TaskFailure): string {
  const r = f.result;
  const failedItem = f.items?.find((i) => i['failed'] || i['unreachable']);
  const src = failedItem && !text(r['stderr']) ? { ...r, ...failedItem } : r;
  const lines: string[] = [];
  const msg = text(src['msg']);
  if (msg) lines.push(oneLine(msg));
  if (failedItem && 'item' in failedItem) lines.push(`item: ${clip(JSON.stringify(failedItem['item']) ?? '')}`);
  if (typeof src['rc'] === 'number' && !/non-zero return code/.test(msg)) lines.push(`return code ${src['rc']}`);
  const stream = text(src['stderr']) || text(src['module_stderr']) || (msg ? '' : text(src['stdout']) || text(src['module_stdout']));
  if (stream) lines.push(...tail(stream, DETAIL_LINES));
  const exception = text(src['exception']);
  if (exception) lines.push(...tail(exception, 1));
  return lines.join('\n') || 'no message';
}

function text(v: unknown): string {
  if (typeof v === 'string') return v.trim();
  if (v === undefined || v === null) return '';
  return JSON.stringify(v);
}

function tail(s: string, n: number): string[] {
  return s
    .split('\n')
    .filter((l) => l.trim())
    .slice(-n)
    .map(clip);
}

function oneLine(s: string): string {
  return clip(s.replace(/\s*\n\s*/g, ' '));
}

function clip(s: string): string {
  return s.length > LINE_MAX ? `${s.slice(0, LINE_MAX)}…` : s;
}
