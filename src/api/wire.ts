/**
 * The /api/v2 wire rules (api-compat.md §0): vendor content types on every response, compact
 * JSON, 200 for every success, the original's error shapes, string scalars coerced, unknown keys
 * ignored, `x-return-attributes` trimming. Every route answers through these helpers.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CrowbarError, InvalidError } from '../domain/errors.js';

export type Form = 'obj' | 'list' | 'empty' | 'error' | 'array' | 'result' | 'action';

export function contentType(type: string, form: Form): string {
  return `application/vnd.crowbar.${type}.${form}+json; version=2.0`;
}

/** Sends `body` as compact JSON with the exact vendor content type (a Buffer keeps Fastify from rewriting it). */
export function send(reply: FastifyReply, type: string, form: Form, body: unknown, status = 200): FastifyReply {
  const req = reply.request;
  const trimmed = status === 200 ? returnAttributes(req, body) : body;
  return reply.code(status).header('content-type', contentType(type, form)).send(Buffer.from(JSON.stringify(trimmed)));
}

export const sendObj = (reply: FastifyReply, type: string, body: unknown) => send(reply, type, 'obj', body);
export const sendList = (reply: FastifyReply, type: string, body: unknown[]) => send(reply, type, 'list', body);
export const sendDeleted = (reply: FastifyReply, type: string, what: string) => send(reply, type, 'empty', { message: `${what} deleted` });

/** `x-return-attributes: ["name","id"]` trims objects (and each object of a list) to those keys. */
function returnAttributes(req: FastifyRequest, body: unknown): unknown {
  const raw = req.headers['x-return-attributes'];
  if (!raw || typeof raw !== 'string') return body;
  let keys: string[];
  try {
    const parsed = JSON.parse(raw);
    keys = Array.isArray(parsed) ? parsed.map(String) : [String(parsed)];
  } catch {
    keys = raw.split(',').map((s) => s.trim().replace(/^"|"$/g, '')).filter(Boolean);
  }
  const pick = (o: unknown) => (o && typeof o === 'object' && !Array.isArray(o) ? Object.fromEntries(Object.entries(o).filter(([k]) => keys.includes(k))) : o);
  return Array.isArray(body) ? body.map(pick) : pick(body);
}

/** HTTP status for an engine error code; bad input is always 4xx. */
export function statusFor(e: unknown): number {
  if (e instanceof CrowbarError) {
    switch (e.code) {
      case 'NOT_FOUND':
        return 404;
      case 'INVALID':
      case 'BARCLAMP_INVALID':
        return 422;
      case 'NOT_SUPPORTED':
        return 405;
      default:
        return 409;
    }
  }
  const status = (e as { statusCode?: number }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return status;
  return 500;
}

/** The original's error bodies: 404 `{status, message}`, others `{message, status}` (+ backtrace on 500). */
export function errorBody(e: unknown, status: number): Record<string, unknown> {
  const message = e instanceof Error ? e.message : String(e);
  if (status === 404) return { status, message };
  const body: Record<string, unknown> = { message, status };
  if (e instanceof CrowbarError && Object.keys(e.details).length) body.details = e.details;
  if (status >= 500) body.backtrace = e instanceof Error ? (e.stack ?? '').split('\n').slice(1, 8).map((l) => l.trim()) : [];
  return body;
}

// Coercion of request bodies: the original clients send every scalar as a string //////////////

export type Body = Record<string, unknown>;

export function body(req: FastifyRequest): Body {
  const b = req.body;
  if (b === undefined || b === null || b === '') return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new InvalidError('the request body must be a JSON object');
  return b as Body;
}

export function optString(b: Body, key: string): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new InvalidError(`'${key}' must be a string`, { field: key });
}

export function reqString(b: Body, key: string): string {
  const v = optString(b, key);
  if (v === undefined || v === '') throw new InvalidError(`'${key}' is required`, { field: key });
  return v;
}

export function optBool(b: Body, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 1) return true;
  if (v === 'false' || v === '0' || v === 0) return false;
  throw new InvalidError(`'${key}' must be true or false, not ${JSON.stringify(v)}`, { field: key });
}

export function optInt(b: Body, key: string): number | undefined {
  const v = b[key];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw new InvalidError(`'${key}' must be an integer, not ${JSON.stringify(v)}`, { field: key });
  return n;
}

export function optObject(b: Body, key: string): Record<string, unknown> | undefined {
  let v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      throw new InvalidError(`'${key}' must be a JSON object`, { field: key });
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidError(`'${key}' must be a JSON object`, { field: key });
  return v as Record<string, unknown>;
}

/** `node` or `node_id` (name or id) — the original accepts either spelling. */
export function ref(b: Body, key: string): string | number | undefined {
  const v = b[key] ?? b[`${key}_id`];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return /^\d+$/.test(v) ? Number(v) : v;
  throw new InvalidError(`'${key}' must be an id or a name`, { field: key });
}

/** `:id` path parameter: a number when numeric, else a natural key. */
export function key(raw: string): number | string {
  return /^\d+$/.test(raw) ? Number(raw) : raw;
}
