/**
 * `attrs.map`: the script jig's inputs flattened for `runner.sh`, so that its attribute helpers
 * answer from a bash associative array instead of starting jq for every call. Owns which values
 * the map answers itself and which it leaves to jq (so what scripts read stays what jq prints).
 * Pure data; the runner reads it with `read -d ''` (never evaluated as code).
 */
import type { Json, JsonObject } from '../../domain/json.js';

/**
 * The map of `inputs` as NUL-separated `path, entry` pairs, or undefined when the inputs hold a
 * NUL character anywhere (then the runner falls back to jq for every helper). Paths: `/` for the
 * whole document, `/a/b/0` below it (array indexes in decimal without leading zeros); keys that
 * contain `/` or are empty cannot be named by a helper's path and get no entry of their own.
 * Entries, by their first character:
 * - `s<text>`: a string, boolean or safe integer, as `read_attribute` prints it (jq's raw text,
 *   trailing newlines removed as the shell's `$(…)` removes them);
 * - `o<keys>` / `a<keys>`: an object / array, with the lines `get_keys` prints (`key\n` each);
 *   `read_attribute` of it asks jq (compact JSON exactly as before);
 * - `j`: a value whose text only jq can tell (a fraction, an integer beyond ±2^53).
 * A null has no entry: to the helpers it is missing.
 */
export function attrsMap(inputs: JsonObject): Buffer | undefined {
  if (JSON.stringify(inputs).includes('\\u0000')) return undefined;
  const out: string[] = [];
  const add = (path: string, entry: string): void => {
    out.push(path, '\0', entry, '\0');
  };
  const below = (path: string, key: string): string => (path === '/' ? `/${key}` : `${path}/${key}`);
  const walk = (path: string, value: Json | undefined): void => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      add(path, `a${value.map((_, i) => `${i}\n`).join('')}`);
      value.forEach((v, i) => walk(below(path, String(i)), v));
    } else if (typeof value === 'object') {
      // JSON.stringify leaves out keys whose value is undefined: so do we
      const keys = Object.keys(value).filter((k) => value[k] !== undefined);
      add(path, `o${keys.map((k) => `${k}\n`).join('')}`);
      for (const k of keys) if (k !== '' && !k.includes('/')) walk(below(path, k), value[k]);
    } else if (typeof value === 'string') {
      add(path, `s${value.replace(/\n+$/, '')}`);
    } else if (typeof value === 'boolean') {
      add(path, `s${value}`);
    } else if (Number.isSafeInteger(value)) {
      add(path, `s${JSON.stringify(value)}`);
    } else if (Number.isFinite(value)) {
      add(path, 'j');
    }
    // NaN and ±Infinity are written to attrs.json as null: no entry
  };
  walk('/', inputs);
  return Buffer.from(out.join(''), 'utf8');
}
