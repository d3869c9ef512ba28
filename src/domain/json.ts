/**
 * JSON blobs and attrib paths: deep merge (right wins; arrays and scalars replace), slash-path
 * get/wrap, and merge with per-leaf provenance. Pure functions, no I/O.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of `b` onto `a` into a new object; `a` and `b` are not modified. */
export function deepMerge(a: JsonObject, b: JsonObject): JsonObject {
  const out: JsonObject = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : clone(v);
  }
  return out;
}

export function mergeAll(...blobs: JsonObject[]): JsonObject {
  return blobs.reduce((acc, b) => deepMerge(acc, b), {} as JsonObject);
}

export function clone<T extends Json>(v: T): T {
  return v === null || typeof v !== 'object' ? v : (structuredClone(v) as T);
}

export function splitPath(path: string): string[] {
  return path.split('/').filter((p) => p.length > 0);
}

/** Value at a slash path (`crowbar/ntp/servers`); numeric parts index arrays. */
export function getPath(blob: Json | undefined, path: string): Json | undefined {
  let cur: Json | undefined = blob;
  for (const part of splitPath(path)) {
    if (Array.isArray(cur) && /^\d+$/.test(part)) cur = cur[Number(part)];
    else if (isObject(cur)) cur = cur[part];
    else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** `wrapPath('a/b', 1)` is `{a: {b: 1}}`. */
export function wrapPath(path: string, value: Json): JsonObject {
  const parts = splitPath(path);
  if (parts.length === 0) {
    if (!isObject(value)) throw new Error(`cannot place a non-object value at the root path`);
    return value;
  }
  let out: Json = value;
  for (let i = parts.length - 1; i >= 0; i--) out = { [parts[i]!]: out };
  return out as JsonObject;
}

/** Every leaf of a blob as [path, value]; arrays and empty objects count as leaves. */
export function leaves(blob: Json, prefix = ''): Array<[string, Json]> {
  if (!isObject(blob) || (Object.keys(blob).length === 0 && prefix !== '')) return [[prefix, blob]];
  const out: Array<[string, Json]> = [];
  for (const [k, v] of Object.entries(blob)) out.push(...leaves(v, prefix ? `${prefix}/${k}` : k));
  return out;
}

/** Where one leaf of a staged input came from. */
export interface Source {
  /** e.g. `node.discovery`, `node.hint`, `node_role.wall`, `deployment_role.committed`, `role.template`, `attrib.default` */
  layer: string;
  /** id of the entity that holds the blob */
  id: number;
  /** human label, e.g. `ntp-service on system-phantom.internal.local` */
  label: string;
}

export type Provenance = Record<string, Source>;

/**
 * Accumulates a deep merge and records, for every leaf, the source that supplied it.
 * A later merge that replaces a subtree drops the provenance of the leaves it replaced.
 */
export class ProvenancedBlob {
  value: JsonObject = {};
  provenance: Provenance = {};

  merge(blob: JsonObject, source: Source, onlyMissing = false): void {
    for (const [path, v] of leaves(blob)) {
      if (path === '') continue;
      if (onlyMissing && getPath(this.value, path) !== undefined) continue;
      this.set(path, v, source);
    }
  }

  /**
   * Puts a list at `path`, replacing what is there, attributed as a whole to `source`; each
   * element's own source is recorded at `path/<index>` (the leaf is the list, so these extra
   * keys only describe it, and go when the list is replaced).
   */
  placeList(path: string, items: ReadonlyArray<{ value: Json; source: Source }>, source: Source): void {
    const p = splitPath(path).join('/');
    if (p === '') return;
    this.set(p, items.map((i) => i.value), source);
    items.forEach((it, i) => {
      this.provenance[`${p}/${i}`] = it.source;
    });
  }

  private set(path: string, v: Json, source: Source): void {
    const parts = splitPath(path);
    let cur: JsonObject = this.value;
    for (let i = 0; i < parts.length - 1; i++) {
      const k = parts[i]!;
      const next = cur[k];
      if (!isObject(next)) {
        if (next !== undefined) this.drop(parts.slice(0, i + 1).join('/'));
        cur[k] = {};
      }
      cur = cur[k] as JsonObject;
    }
    const last = parts[parts.length - 1]!;
    if (isObject(v) && Object.keys(v).length === 0 && isObject(cur[last])) return;
    if (cur[last] !== undefined) this.drop(path);
    cur[last] = clone(v);
    this.provenance[path] = source;
  }

  private drop(path: string): void {
    for (const p of Object.keys(this.provenance)) {
      if (p === path || p.startsWith(`${path}/`)) delete this.provenance[p];
    }
  }
}
