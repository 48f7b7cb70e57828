import { isDatabaseUnavailable } from '../lib/database-unavailable';

/** The error body every failure answers with: {"error", "error_code", "details"} as circus clients expect. */
export type ErrorCode =
  | 'VALIDATION_ERROR'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'TIMEOUT'
  | 'CONFLICT'
  | 'NIX_EVAL_ERROR'
  | 'BUILD_ERROR'
  | 'RATE_LIMITED'
  | 'INTERNAL_ERROR'
  | 'DATABASE_UNAVAILABLE'
  | 'SERVICE_UNAVAILABLE';

const statusOf: Record<ErrorCode, number> = {
  VALIDATION_ERROR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  TIMEOUT: 408,
  CONFLICT: 409,
  NIX_EVAL_ERROR: 422,
  BUILD_ERROR: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  DATABASE_UNAVAILABLE: 503,
  SERVICE_UNAVAILABLE: 503,
};

export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    status?: number,
  ) {
    super(message);
    this.status = status ?? statusOf[code];
  }

  toBody(): { error: string; error_code: ErrorCode; details?: unknown } {
    return this.details === undefined
      ? { error: this.message, error_code: this.code }
      : { error: this.message, error_code: this.code, details: this.details };
  }
}

export const notFound = (what: string, id?: string) =>
  new ApiError('NOT_FOUND', id === undefined ? `${what} not found` : `${what} ${id} not found`);
export const conflict = (message: string, details?: unknown) => new ApiError('CONFLICT', message, details);
export const unauthorized = (message = 'authentication required: send Authorization: Bearer <api-key>') =>
  new ApiError('UNAUTHORIZED', message);
export const forbidden = (message: string) => new ApiError('FORBIDDEN', message);

/** A 400 naming the failing field, e.g. invalidField('body.name', 'must not be empty'). */
export function invalidField(field: string, message: string): ApiError {
  return new ApiError('VALIDATION_ERROR', `${field}: ${message}`, [{ field, message }]);
}

/** A 503 for any request that needs the database while PostgreSQL cannot be reached; clients retry later. */
export const databaseUnavailable = () => new ApiError('DATABASE_UNAVAILABLE', 'the database is unavailable; try again shortly');

/** Maps PostgreSQL errors caused by user input (unique, foreign key, check) onto 409/400. */
export function fromDatabaseError(err: unknown): ApiError | undefined {
  if (isDatabaseUnavailable(err)) return databaseUnavailable();
  const e = err as { code?: string; detail?: string; constraint?: string };
  if (typeof e?.code !== 'string') return undefined;
  if (e.code === '23505') return conflict(`already exists${e.detail ? `: ${e.detail}` : ''}`, { constraint: e.constraint });
  if (e.code === '23503') return conflict(`refers to a missing or still-referenced row${e.detail ? `: ${e.detail}` : ''}`, { constraint: e.constraint });
  if (e.code === '22P02' || e.code === '22003' || e.code === '23514') return new ApiError('VALIDATION_ERROR', 'invalid value', { constraint: e.constraint });
  // 22021: text PostgreSQL cannot store (a NUL byte) sent by the caller.
  if (e.code === '22021') return new ApiError('VALIDATION_ERROR', 'invalid value: text must not contain NUL bytes', [{ field: 'body', message: 'must not contain NUL bytes' }]);
  // 54000: a value past PostgreSQL's limits (e.g. an index row too large); class 22: data PostgreSQL
  // refuses (a time zone offset past ±15:59, text it cannot encode, ...). Both come from the caller's input.
  if (e.code === '54000' || e.code.startsWith('22')) {
    return new ApiError('VALIDATION_ERROR', `invalid value: ${(err as Error).message ?? 'refused by the database'}`, [{ field: 'request', message: 'holds a value the database refuses' }]);
  }
  return undefined;
}
