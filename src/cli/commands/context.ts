/**
 * What every API command gets: a client for the configured server and an output. Also the
 * id → name lookups tables share, and parsing helpers for option values.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { CrowbarClient, resolveConnection, type ConnectionFlags } from '../client.js';
import { makeOutput, type Output } from './output.js';

export interface Ctx {
  client: CrowbarClient;
  out: Output;
  /** the command's own options merged with the global ones */
  opts: Record<string, any>;
}

/** The global options (connection and output), defined once on the program. */
export function addGlobalOptions(program: Command): Command {
  return program
    .option('--url <url>', 'crowbar server URL (default: $CROWBAR_URL, the config file, or http://127.0.0.1:3000)')
    .option('--user <name>', 'user for HTTP Basic (default: $CROWBAR_USER or the config file)')
    .option('--password <password>', 'password (default: $CROWBAR_PASSWORD or the config file)')
    .option('--token <token>', 'API token, sent as Bearer (default: $CROWBAR_TOKEN or the config file)')
    .option('--json', 'print the raw JSON the API answered instead of tables');
}

export function connectionFlags(opts: Record<string, any>): ConnectionFlags {
  return { url: opts.url, user: opts.user, password: opts.password, token: opts.token };
}

export function ctxOf(cmd: Command): Ctx {
  const opts = cmd.optsWithGlobals();
  return { client: new CrowbarClient(resolveConnection(connectionFlags(opts))), out: makeOutput(opts), opts };
}

/**
 * A commander action that receives the context first, then the command's positional
 * arguments (commander passes them, then the options, then the command).
 */
export function run<A extends unknown[]>(fn: (ctx: Ctx, ...args: A) => Promise<void>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    await fn(ctxOf(cmd), ...(args.slice(0, -2) as A));
  };
}

/** `/api/v2/<path>/<key>` with the key escaped (names may hold dots; ids stay ids). */
export const at = (path: string, key: string | number) => `/api/v2/${path}/${encodeURIComponent(String(key))}`;

/** Names of nodes, roles and deployments by id, fetched once per command. */
export class Names {
  private cache = new Map<string, Promise<Map<number, string>>>();
  private readonly client: CrowbarClient;
  constructor(client: CrowbarClient) {
    this.client = client;
  }

  private load(path: string, field = 'name'): Promise<Map<number, string>> {
    let p = this.cache.get(path);
    if (!p) {
      p = this.client
        .get<Array<Record<string, unknown>>>(`/api/v2/${path}`, { headers: { 'x-return-attributes': JSON.stringify(['id', field]) } })
        .then((list) => new Map(list.map((o) => [Number(o.id), String(o[field])])));
      this.cache.set(path, p);
    }
    return p;
  }

  nodes = () => this.load('nodes');
  roles = () => this.load('roles');
  deployments = () => this.load('deployments');
  /** forget a collection (something new was created) */
  reset(path: string): void {
    this.cache.delete(path);
  }
}

export const name = (m: Map<number, string>, id: number | null | undefined) => (id === null || id === undefined ? '' : m.get(id) ?? `#${id}`);

export function positiveInt(what: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
    return n;
  };
}

export function nonNegative(what: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${what} must be a non-negative number`);
    return n;
  };
}

export function bool(what: string) {
  return (v: string) => {
    const s = v.toLowerCase();
    if (['true', 'yes', '1', 'on'].includes(s)) return true;
    if (['false', 'no', '0', 'off'].includes(s)) return false;
    throw new InvalidArgumentError(`${what} must be true or false`);
  };
}

/** A value given on the command line: JSON if it parses, else the string itself. */
export function jsonOrString(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

export function jsonObject(what: string) {
  return (v: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch (e) {
      throw new InvalidArgumentError(`${what} must be a JSON object: ${(e as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError(`${what} must be a JSON object`);
    return parsed as Record<string, unknown>;
  };
}
