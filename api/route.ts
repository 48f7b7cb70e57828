import type { Context } from 'koa';
import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import type { TemporalDeps } from './temporal';

/** Hydra's role vocabulary; `admin` passes every check. */
export const ROLES = ['admin', 'read-only', 'create-projects', 'eval-jobset', 'cancel-build', 'restart-jobs', 'bump-to-front'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Who may call a route:
 * - `public`: anyone (reads), unless the require-auth-for-reads setting is on;
 * - `always-public`: anyone, always (health, metrics, OpenAPI, webhooks that check their own signature);
 * - `user`: any signed-in user or key;
 * - a Role: a principal holding it (or admin).
 */
export type Access = 'public' | 'always-public' | 'user' | Role;

export type JsonSchema = Record<string, unknown>;

export interface Principal {
  kind: 'api_key' | 'user';
  id: string;
  name: string;
  role: Role;
  /** The user behind the principal (a session's user, or a key's owner). */
  userId: string | null;
  /** Set for session-cookie principals; mutations must echo it in x-csrf-token. */
  viaCookie: boolean;
}

export interface AppDeps {
  db: Db;
  config: RingmasterConfig;
  temporal: TemporalDeps | undefined;
  startedAt: Date;
  version: string;
}

export interface AuditEntry {
  action?: string;
  targetKind?: string;
  targetId?: string | null;
  details?: Record<string, unknown>;
}

export interface RequestContext {
  deps: AppDeps;
  db: Db;
  principal: Principal | undefined;
  koa: Context;
  remoteAddr: string;
  /** Filled by handlers of mutations; the app writes the audit row after success. */
  audit: AuditEntry;
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
}

/** What a handler returns: the JSON body (status from the route), or a full reply. */
export type HandlerResult = unknown;
export class Reply {
  constructor(
    readonly status: number,
    readonly body?: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}
/** Returned by handlers that wrote the Koa response themselves (streams, text, redirects). */
export const HANDLED = Symbol('handled');

export interface RouteDef<P = any, Q = any, B = any> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** OpenAPI-style path: /api/v1/projects/{id} */
  path: string;
  summary: string;
  tag: string;
  access: Access;
  params?: JsonSchema;
  query?: JsonSchema;
  body?: JsonSchema;
  /** status → response schema (or a description for non-JSON bodies). */
  responses: Record<number, JsonSchema | { description: string; contentType: string }>;
  /** Status of a success that returns a value; defaults to the lowest key of responses. */
  successStatus?: number;
  /** Keep the raw request body (webhook signatures). */
  rawBody?: boolean;
  /**
   * Concurrent identical GETs, anonymous or with an API key, share one run of the handler (single-flight.ts,
   * flight-key.ts): set only on a read whose answer depends on nothing but its path, its query and the caller's
   * visibility class (an administrator or not; never on who the caller is, nor on a header), that writes nothing, and
   * whose body is JSON or text (never a stream).
   */
  coalesce?: boolean;
  handler: (input: RouteInput<P, Q, B>, rc: RequestContext) => Promise<HandlerResult>;
}

export function defineRoute<P = Record<string, string>, Q = Record<string, unknown>, B = unknown>(def: RouteDef<P, Q, B>): RouteDef<P, Q, B> {
  return def;
}

/** Answers 200 with a JSON body serialised already (by PostgreSQL, or a cache): nothing is parsed or stringified again. */
export function sendJsonText(rc: RequestContext, json: string): typeof HANDLED {
  rc.koa.status = 200;
  rc.koa.type = 'application/json';
  rc.koa.body = json;
  return HANDLED;
}
