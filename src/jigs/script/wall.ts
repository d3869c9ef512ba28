/**
 * Reading a script jig's outputs: the `attrs/` tree its scripts wrote, where every `<path>/wall`
 * file holds one value (from a local tree, or as the launcher sent them). Owns the value coercion
 * (fixing the original, which turned strings such as "abc" into hex numbers) and the tree → JSON
 * placement. No node access.
 */
import { lstat, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { isObject } from '../../domain/json.js';
import type { Json, JsonObject } from '../../domain/json.js';

const DECIMAL = /^-?[0-9]+$/;
const PREFIXED = /^(-?)0(?:x[0-9a-f]+|o[0-7]+|b[01]+)$/i;

/**
 * The JSON value of a wall file's text, or undefined when it is empty:
 * - trailing newlines are dropped; blank text is no value;
 * - `true`/`false` (any case) → boolean;
 * - a decimal integer (optionally negative) or a `0x`/`0o`/`0b` literal → number, unless it is
 *   beyond ±2^53 (then it stays a string, so serial numbers are not rounded);
 * - text starting with `{` or `[` that parses as JSON → that object or array;
 * - anything else stays the string it was ("abc", "deadbeef", "1.2.3.4", "1.5").
 */
export function coerceWallValue(raw: string): Json | undefined {
  const text = raw.replace(/(?:\r?\n)+$/, '');
  const t = text.trim();
  if (t.length === 0) return undefined;
  const lower = t.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (DECIMAL.test(t) || PREFIXED.test(t)) {
    const negative = t.startsWith('-');
    const big = BigInt(negative ? t.slice(1) : t);
    if (big <= BigInt(Number.MAX_SAFE_INTEGER)) return negative ? -Number(big) : Number(big);
    return text;
  }
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(t);
      if (typeof parsed === 'object' && parsed !== null) return parsed as Json;
    } catch {
      // not JSON after all: keep the text
    }
  }
  return text;
}

export interface WallTree {
  wall: JsonObject;
  /** things skipped or overridden, worth a line in the run log */
  warnings: string[];
}

/** One `wall` file the scripts wrote: the attribute path of its directory and its text. */
export interface WallFile {
  /** `['a', 'b']` for `attrs/a/b/wall`; empty for `attrs/wall` itself */
  parts: string[];
  text: string;
}

/**
 * Turns `<dir>/**\/wall` files into one object (see {@link wallFromFiles}). Symlinks are never
 * followed: a node must not make us read files of the admin host. A missing dir is an empty wall.
 */
export async function readWallTree(dir: string): Promise<WallTree> {
  const warnings: string[] = [];
  const files: WallFile[] = [];

  const walk = async (rel: string[]): Promise<void> => {
    const abs = path.join(dir, ...rel);
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (err) {
      if (rel.length === 0 && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      const where = [...rel, entry.name].join('/');
      if (entry.isSymbolicLink()) {
        warnings.push(`ignored symlink attrs/${where}`);
      } else if (entry.isDirectory()) {
        await walk([...rel, entry.name]);
      } else if (entry.name === 'wall' && entry.isFile()) {
        const file = path.join(abs, entry.name);
        if (!(await lstat(file)).isFile()) continue;
        files.push({ parts: rel, text: await readFile(file, 'utf8') });
      }
    }
  };
  await walk([]);
  return wallFromFiles(files, warnings);
}

/**
 * The wall of the `wall` files found (each value coerced by {@link coerceWallValue}): `a/b/wall`
 * containing `42` gives `{a: {b: 42}}`. Shallower paths are placed first, so when both `a/wall`
 * and `a/b/wall` exist the deeper value wins (a JSON object at `a` is merged into instead).
 * `warnings` (things already skipped) is extended and returned with the wall.
 */
export function wallFromFiles(files: WallFile[], warnings: string[] = []): WallTree {
  const found: Array<{ parts: string[]; value: Json }> = [];
  for (const { parts, text } of files) {
    if (parts.length === 0) {
      warnings.push('ignored attrs/wall: a value needs an attribute path');
      continue;
    }
    const value = coerceWallValue(text);
    if (value !== undefined) found.push({ parts, value });
  }

  found.sort((a, b) => a.parts.length - b.parts.length || a.parts.join('/').localeCompare(b.parts.join('/')));
  const wall: JsonObject = {};
  for (const { parts, value } of found) {
    let cur: JsonObject = wall;
    for (let i = 0; i < parts.length - 1; i++) {
      const key = parts[i]!;
      const next = cur[key];
      if (!isObject(next)) {
        if (next !== undefined) {
          warnings.push(`attribute ${parts.slice(0, i + 1).join('/')} was replaced by deeper attributes under it`);
        }
        cur[key] = {};
      }
      cur = cur[key] as JsonObject;
    }
    cur[parts[parts.length - 1]!] = value;
  }
  return { wall, warnings };
}
