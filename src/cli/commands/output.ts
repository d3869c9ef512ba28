/**
 * What the resource commands print: aligned tables and key/value blocks by default, the raw JSON
 * with `--json`. State numbers are shown as names; on a terminal (and without NO_COLOR) states
 * and headers are coloured with node:util styleText.
 */
import { styleText } from 'node:util';
import { stateName } from '../../domain/states.js';

type Style = Parameters<typeof styleText>[0];

export interface Output {
  json: boolean;
  color: boolean;
  write(s: string): void;
}

let quietPipe = false;

export function makeOutput(o: { json?: boolean }, stream: NodeJS.WriteStream = process.stdout): Output {
  if (!quietPipe) {
    // `crowbar nodes list | head`: a closed pipe ends the command quietly
    quietPipe = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
  return {
    json: !!o.json,
    color: useColor(stream),
    write: (s) => void stream.write(s),
  };
}

export function useColor(stream: NodeJS.WriteStream): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true;
  return !!stream.isTTY;
}

export function paint(out: Pick<Output, 'color'>, style: Style, s: string): string {
  return out.color ? styleText(style, s) : s;
}

const STATE_STYLE: Record<string, Style> = {
  error: 'red',
  active: 'green',
  todo: 'yellow',
  transition: 'cyan',
  blocked: 'magenta',
  proposed: 'gray',
};

/** A node-role state (number or name) as its name, coloured. */
export function stateLabel(out: Pick<Output, 'color'>, state: number | string): string {
  const name = typeof state === 'number' ? stateName(state) : state;
  const style = STATE_STYLE[name];
  return style ? paint(out, style, name) : name;
}

const DEPLOYMENT_STATES: Record<number, string> = { [-1]: 'error', 0: 'proposed', 1: 'committed', 2: 'active' };

export function deploymentStateLabel(out: Pick<Output, 'color'>, state: number): string {
  const name = DEPLOYMENT_STATES[state] ?? String(state);
  const style: Style | undefined = name === 'error' ? 'red' : name === 'active' ? 'green' : name === 'committed' ? 'cyan' : 'gray';
  return paint(out, style, name);
}

export function printJson(out: Output, v: unknown): void {
  out.write(`${JSON.stringify(v, null, 2)}\n`);
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
export const visibleLength = (s: string) => s.replace(ANSI, '').length;

export interface Column<T> {
  header: string;
  get: (row: T) => unknown;
  /** right-align (numbers) */
  right?: boolean;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v).replace(/\s*\n\s*/g, ' ');
}

/** Aligned columns under an upper-case header; `(none)` for an empty list. */
export function table<T>(out: Output, rows: T[], columns: Array<Column<T>>): void {
  if (rows.length === 0) {
    out.write(`${paint(out, 'dim', '(none)')}\n`);
    return;
  }
  const cells = rows.map((r) => columns.map((c) => cell(c.get(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => visibleLength(r[i]!))));
  const pad = (s: string, i: number) => {
    const gap = ' '.repeat(widths[i]! - visibleLength(s));
    return columns[i]!.right ? gap + s : s + gap;
  };
  const line = (parts: string[]) => parts.map(pad).join('  ').trimEnd();
  out.write(`${paint(out, 'bold', line(columns.map((c) => c.header.toUpperCase())))}\n`);
  for (const r of cells) out.write(`${line(r)}\n`);
}

/** `key: value` lines, keys aligned. */
export function keyValues(out: Output, pairs: Array<[string, unknown]>): void {
  const w = Math.max(...pairs.map(([k]) => k.length));
  for (const [k, v] of pairs) out.write(`${paint(out, 'bold', `${k}:`.padEnd(w + 1))} ${cell(v)}\n`);
}

/** Every field of an API object as key/value lines (objects as compact JSON). */
export function objectBlock(out: Output, o: Record<string, unknown>, skip: string[] = []): void {
  keyValues(out, Object.entries(o).filter(([k]) => !skip.includes(k)));
}

/** The last `n` non-empty lines of a log. */
export function tail(log: string | null | undefined, n: number): string[] {
  return (log ?? '').replace(/\s+$/, '').split('\n').slice(-n).filter((l, i, a) => l !== '' || a.length > 1);
}
