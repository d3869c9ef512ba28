/**
 * The CLI's HTTP client for /api/v2, over the global fetch.
 *
 * - Where: `--url`, else `CROWBAR_URL`, else `url` in the config file (`$CROWBAR_CONFIG`, else
 *   `$XDG_CONFIG_HOME/crowbar/config.json`, else `~/.config/crowbar/config.json`), else
 *   http://127.0.0.1:3000 (what `crowbar serve` listens on by default).
 * - Who: `--token` / `--user` + `--password`, else `CROWBAR_TOKEN` / `CROWBAR_USER` +
 *   `CROWBAR_PASSWORD`, else the config file's `token` / `user` + `password`. A token is sent as
 *   `Bearer`, a user and password as HTTP Basic (the server also speaks Digest; a CLI need not).
 * - Errors come back as sentences a user can act on: a 404 for a name names the closest existing
 *   one ("node 'x' not found; did you mean 'y'?"), a refused connection says the server is not
 *   running, a 401 says how to pass credentials.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface ConnectionFlags {
  url?: string;
  user?: string;
  password?: string;
  token?: string;
}

export interface Connection {
  url: string;
  user?: string;
  password?: string;
  token?: string;
  /** where the URL came from: flag, env, config or default */
  urlSource: 'flag' | 'env' | 'config' | 'default';
  /** the config file that was read, if any */
  configFile?: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:3000';

/** The config file's path: `$CROWBAR_CONFIG`, else under `$XDG_CONFIG_HOME` or `~/.config`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CROWBAR_CONFIG) return env.CROWBAR_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'crowbar', 'config.json');
}

/** The config file's settings; a missing file is no settings, a malformed one is an error naming it. */
export function readConfigFile(path: string): ConnectionFlags | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new Error(`cannot read the config file ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`the config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`the config file ${path} must hold a JSON object like {"url": "http://127.0.0.1:3000", "user": "crowbar", "password": "…"}`);
  const o = parsed as Record<string, unknown>;
  const out: ConnectionFlags = {};
  for (const k of ['url', 'user', 'password', 'token'] as const) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw new Error(`the config file ${path}: '${k}' must be a string`);
    out[k] = v;
  }
  return out;
}

/** Flags over environment over config file; credentials are taken as a set from the first source that has any. */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Connection {
  const file = configPath(env);
  const cfg = readConfigFile(file);
  const fromEnv: ConnectionFlags = { url: env.CROWBAR_URL || undefined, user: env.CROWBAR_USER || undefined, password: env.CROWBAR_PASSWORD, token: env.CROWBAR_TOKEN || undefined };
  let url: string;
  let urlSource: Connection['urlSource'];
  if (flags.url) [url, urlSource] = [flags.url, 'flag'];
  else if (fromEnv.url) [url, urlSource] = [fromEnv.url, 'env'];
  else if (cfg?.url) [url, urlSource] = [cfg.url, 'config'];
  else [url, urlSource] = [DEFAULT_URL, 'default'];
  const creds = [flags, fromEnv, cfg ?? {}].find((s) => s.token || s.user) ?? {};
  const conn: Connection = { url: normalizeUrl(url), urlSource, ...(cfg ? { configFile: file } : {}) };
  if (creds.token) conn.token = creds.token;
  else if (creds.user) {
    conn.user = creds.user;
    // a password may come from a later source than the user (e.g. --user with CROWBAR_PASSWORD)
    conn.password = creds.password ?? flags.password ?? fromEnv.password ?? cfg?.password ?? '';
  }
  return conn;
}

function normalizeUrl(raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(`'${raw}' is not a URL (expected something like http://127.0.0.1:3000)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`'${raw}' must be an http:// or https:// URL`);
  return u.toString().replace(/\/+$/, '');
}

/** A non-2xx answer: the server's message, and its status and body for callers that care. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly method: string;
  readonly path: string;
  constructor(message: string, status: number, body: unknown, method: string, path: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.method = method;
    this.path = path;
  }
}

/** Natural-key collections: the name field the server looks a key up by (api-compat §0.5). */
const COLLECTIONS: Record<string, { path: string; name: string }> = {
  node: { path: 'nodes', name: 'name' },
  deployment: { path: 'deployments', name: 'name' },
  role: { path: 'roles', name: 'name' },
  jig: { path: 'jigs', name: 'name' },
  barclamp: { path: 'barclamps', name: 'name' },
  attrib: { path: 'attribs', name: 'name' },
  user: { path: 'users', name: 'username' },
  group: { path: 'groups', name: 'name' },
  available_hammer: { path: 'available_hammers', name: 'name' },
};

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** statuses (besides 2xx) to return instead of throwing, e.g. the 202/409 of /api/v2/anneal */
  accept?: number[];
}

export interface Response<T> {
  status: number;
  body: T;
  contentType: string;
}

/** One Server-Sent Event. `id` is set for stored events, not for `run.log` lines. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

export class CrowbarClient {
  readonly conn: Connection;
  constructor(conn: Connection) {
    this.conn = conn;
  }

  get url(): string {
    return this.conn.url;
  }

  authHeader(): Record<string, string> {
    if (this.conn.token) return { authorization: `Bearer ${this.conn.token}` };
    if (this.conn.user !== undefined) return { authorization: `Basic ${Buffer.from(`${this.conn.user}:${this.conn.password ?? ''}`).toString('base64')}` };
    return {};
  }

  href(path: string, query?: RequestOptions['query']): string {
    const u = new URL(this.conn.url + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** fetch with the credentials; a network failure becomes "cannot reach crowbar at URL". */
  async fetch(path: string, init: RequestInit & { query?: RequestOptions['query'] } = {}): Promise<globalThis.Response> {
    const { query, ...rest } = init;
    try {
      return await fetch(this.href(path, query), { ...rest, headers: { ...this.authHeader(), ...(rest.headers as Record<string, string> | undefined) } });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw this.unreachable(e);
    }
  }

  unreachable(e: unknown): Error {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? '';
    const why = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' ? 'unknown host' : cause?.message ?? (e as Error).message;
    const hint = this.conn.urlSource === 'default' ? ' (set it with --url, CROWBAR_URL or the config file)' : '';
    return new Error(`cannot reach crowbar at ${this.conn.url}${hint}: ${why}; is \`crowbar serve\` running?`);
  }

  async call<T = any>(method: string, path: string, body?: unknown, o: RequestOptions = {}): Promise<Response<T>> {
    const res = await this.fetch(path, {
      method,
      query: o.query,
      headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON: keep the text */
      }
    }
    const contentType = res.headers.get('content-type') ?? '';
    if (res.ok || o.accept?.includes(res.status)) return { status: res.status, body: parsed as T, contentType };
    throw await this.error(method, path, res.status, parsed);
  }

  async request<T = any>(method: string, path: string, body?: unknown, o: RequestOptions = {}): Promise<T> {
    return (await this.call<T>(method, path, body, o)).body;
  }

  get<T = any>(path: string, o?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, undefined, o);
  }
  post<T = any>(path: string, body: unknown = {}, o?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, body, o);
  }
  put<T = any>(path: string, body: unknown = {}, o?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, body, o);
  }
  delete<T = any>(path: string, body?: unknown, o?: RequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, body, o);
  }

  /** The error for a non-2xx answer, with a suggestion when a name was not found. */
  private async error(method: string, path: string, status: number, body: unknown): Promise<ApiError> {
    const serverMessage = body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string' ? (body as { message: string }).message : typeof body === 'string' && body ? body : undefined;
    let message = serverMessage ?? `${method} ${path} failed with HTTP ${status}`;
    if (status === 401) {
      const who = this.conn.token ? 'the API token' : this.conn.user !== undefined ? `user '${this.conn.user}'` : 'no credentials';
      message = `authentication failed at ${this.conn.url} with ${who}: pass --user and --password, or --token (or CROWBAR_USER/CROWBAR_PASSWORD, CROWBAR_TOKEN, or the config file ${configPath()})`;
    } else if (status === 403) {
      message = `permission denied: ${serverMessage ?? `${method} ${path}`}`;
    } else if (status === 404 && serverMessage) {
      message = await this.suggest(serverMessage);
    } else if (status === 404) {
      message = `${method} ${path}: not found (is ${this.conn.url} a crowbar server?)`;
    }
    return new ApiError(message, status, body, method, path);
  }

  /** "node 'x' not found" → "node 'x' not found; did you mean 'y'?" when a close name exists. */
  private async suggest(message: string): Promise<string> {
    const m = /^([a-z_]+) '(.+?)' not found/.exec(message);
    if (!m || /did you mean/.test(message)) return message;
    const [, kind, key] = m as unknown as [string, string, string];
    const coll = COLLECTIONS[kind];
    if (!coll || /^\d+$/.test(key)) return message;
    let names: string[];
    try {
      const list = await this.request<Array<Record<string, unknown>>>('GET', `/api/v2/${coll.path}`, undefined, { headers: { 'x-return-attributes': JSON.stringify([coll.name]) } });
      names = list.map((o) => String(o[coll.name]));
    } catch {
      return message;
    }
    const best = closest(key, names);
    if (!best) return names.length === 0 ? `${message} (there are no ${coll.path} yet)` : message;
    return `${kind} '${key}' not found; did you mean '${best}'?`;
  }

  /**
   * One connection to `GET /api/v2/events` as Server-Sent Events. Resolves once the stream is
   * open; `onEvent` gets every event and `onComment` every comment line, until the stream ends
   * (resolved promise of `done`) or fails (rejected). `lastEventId` resumes after that id.
   */
  async openEvents(o: {
    lastEventId?: string;
    query?: RequestOptions['query'];
    signal?: AbortSignal;
    onEvent: (e: SseEvent) => void;
    onComment?: (text: string) => void;
  }): Promise<{ done: Promise<void> }> {
    const res = await this.fetch('/api/v2/events', {
      method: 'GET',
      query: o.query,
      signal: o.signal,
      headers: { accept: 'text/event-stream', ...(o.lastEventId !== undefined ? { 'last-event-id': o.lastEventId } : {}) },
    });
    if (!res.ok) {
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* keep text */
      }
      throw await this.error('GET', '/api/v2/events', res.status, parsed);
    }
    if (!res.body) throw new Error('the event stream has no body');
    const parser = new SseParser(o.onEvent, o.onComment);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const done = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
      parser.push(decoder.decode());
    })();
    return { done };
  }
}

/** A Server-Sent Events line parser (the WHATWG rules: fields, comments, blank-line dispatch, CR/LF/CRLF). */
export class SseParser {
  private buf = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  /** the last event id seen (sticky across events, as an EventSource keeps it) */
  lastEventId: string | undefined;

  private readonly onEvent: (e: SseEvent) => void;
  private readonly onComment: ((text: string) => void) | undefined;

  constructor(onEvent: (e: SseEvent) => void, onComment?: (text: string) => void) {
    this.onEvent = onEvent;
    this.onComment = onComment;
  }

  push(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const i = this.buf.search(/\r\n|\r|\n/);
      if (i < 0) break;
      // a lone CR at the end of the buffer may be the first half of a CRLF
      if (this.buf[i] === '\r' && i === this.buf.length - 1) break;
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + (this.buf.startsWith('\r\n', i) ? 2 : 1));
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.id !== undefined) this.lastEventId = this.id;
      if (this.data.length) this.onEvent({ ...(this.id !== undefined ? { id: this.id } : {}), event: this.event || 'message', data: this.data.join('\n') });
      this.data = [];
      this.event = '';
      this.id = undefined;
      return;
    }
    if (line.startsWith(':')) {
      this.onComment?.(line.slice(1).trimStart());
      return;
    }
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

// Suggestions /////////////////////////////////////////////////////////////////////////////

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** Edits to turn `q` into some substring of `s` (Sellers): how nearly `q` occurs inside `s`. */
function substringDistance(q: string, s: string): number {
  let prev = Array.from({ length: s.length + 1 }, () => 0);
  for (let i = 1; i <= q.length; i++) {
    const cur = [i];
    for (let j = 1; j <= s.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (q[i - 1] === s[j - 1] ? 0 : 1));
    prev = cur;
  }
  return Math.min(...prev);
}

/**
 * The name a user most likely meant by `key`: close as a whole (a typo) or nearly contained (a
 * short or partial name, e.g. `node-0001` for `node-00001.sim.crowbar.local`); among those,
 * the closest as a whole, then the first alphabetically. Undefined when nothing is close.
 */
export function closest(key: string, names: string[]): string | undefined {
  const q = key.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of names) {
    const n = name.toLowerCase();
    const d = levenshtein(q, n);
    const close = d <= Math.max(2, Math.floor(q.length / 3)) || substringDistance(q, n) <= Math.max(1, Math.floor(q.length / 4));
    if (!close) continue;
    if (!best || d < best.d || (d === best.d && name < best.name)) best = { name, d };
  }
  return best?.name;
}
