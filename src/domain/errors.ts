/**
 * The one error base class: a stable `code`, a message that says what to do next, and context
 * fields. Business errors never know HTTP; the API layer maps codes to status codes.
 */

export type ErrorCode =
  | 'NOT_FOUND'
  | 'INVALID'
  | 'CONFLICT'
  | 'BAD_TRANSITION'
  | 'CYCLE'
  | 'BARCLAMP_INVALID'
  | 'NOT_SUPPORTED'
  | 'JIG_FAILED'
  | 'INTERNAL';

export class CrowbarError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

export class NotFoundError extends CrowbarError {
  constructor(kind: string, key: string | number, hint?: string) {
    super('NOT_FOUND', `${kind} '${key}' not found${hint ? `; ${hint}` : ''}`, { kind, key });
  }
}

export class ConflictError extends CrowbarError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('CONFLICT', message, details);
  }
}

export class InvalidError extends CrowbarError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('INVALID', message, details);
  }
}

export class InvalidTransitionError extends CrowbarError {
  constructor(what: string, from: string, to: string, reason: string) {
    super('BAD_TRANSITION', `${what}: invalid state transition from ${from} to ${to}: ${reason}`, { from, to });
  }
}

/** Turns any thrown value into an Error. */
export function coerceError(e: unknown): Error {
  return e instanceof Error ? e : new Error(typeof e === 'string' ? e : JSON.stringify(e));
}
