import Koa, { type Context, type Next } from 'koa';
import Router from '@koa/router';
import getRawBody from 'raw-body';
import { ApiError, fromDatabaseError } from './errors';
import { authorize, readsRequireSignIn, resolvePrincipal } from './auth';
import { compileValidator, type Validator } from './validation';
import { allowedMethods, paramCount, type AllowedMethods } from './allowed-methods';
import { applyCaps, fieldWithNul, nestingDepth, requestSchema } from './request-schema';
import { writeAuditEntry } from './queries/audit-log';
import { ApiMetrics } from './metrics';
import { registerNotificationMetrics } from './notification-metrics';
import { registerReadModelMetrics } from './read-model-metrics';
import { HANDLED, Reply, type AppDeps, type RequestContext, type RouteDef } from './route';
import { dashboardRouter } from './dashboard/router';
import { SingleFlight, writeEpochOf, type WriteEpoch } from './single-flight';
import { flightKeyOf } from './flight-key';

const MUTATING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
/** Methods that write nothing: any other request bumps the write epoch when it ends (single-flight.ts). */
const READ_ONLY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** JSON bodies nest at most this deep (validators and jsonb recurse over them). */
export const MAX_BODY_DEPTH = 64;

/** The route table's OpenAPI path in @koa/router's syntax: `/builds/{id}` → `/builds/:id`, `{hash}.narinfo` → `:hash.narinfo`. */
export function routerPath(openApiPath: string): string {
  return openApiPath.replace(/\{(\w+)\}/g, ':$1');
}

function bodyTooLarge(): ApiError {
  return new ApiError('VALIDATION_ERROR', 'request body too large', [{ field: 'body', message: `must be at most ${MAX_BODY_BYTES} bytes` }], 413);
}

/** A body parser's failure as the API's error: 413 when too large, else a 400 naming the body. */
function bodyError(err: unknown): ApiError {
  const e = err as { status?: number; type?: string; message?: string };
  if (e.status === 413 || e.type === 'entity.too.large') return bodyTooLarge();
  const message = e.message ?? String(err);
  return new ApiError('VALIDATION_ERROR', `body: malformed JSON (${message})`, [{ field: 'body', message: 'malformed JSON' }]);
}

/** The exact bytes of the body (webhook signatures are computed over them), at most MAX_BODY_BYTES. */
async function readRawBody(ctx: Context): Promise<Buffer> {
  try {
    return await getRawBody(ctx.req, { length: ctx.get('content-length') || undefined, limit: MAX_BODY_BYTES });
  } catch (err) {
    throw bodyError(err);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Every body is JSON, whatever the Content-Type says (circus clients do not always send one): valid
 * UTF-8, at most MAX_BODY_BYTES, nested at most MAX_BODY_DEPTH deep, an object or an array at the top;
 * an empty body is `{}`.
 */
function parseRawJson(raw: Buffer): unknown {
  if (raw.length === 0) return {};
  let text: string;
  try {
    text = strictUtf8.decode(raw);
  } catch {
    throw new ApiError('VALIDATION_ERROR', 'body: is not valid UTF-8', [{ field: 'body', message: 'is not valid UTF-8' }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bodyError(err);
  }
  if (!value || typeof value !== 'object') {
    throw new ApiError('VALIDATION_ERROR', 'body: must be a JSON object or array', [{ field: 'body', message: 'must be a JSON object or array' }]);
  }
  if (nestingDepth(value) > MAX_BODY_DEPTH) {
    throw new ApiError('VALIDATION_ERROR', `body: nests deeper than ${MAX_BODY_DEPTH} levels`, [{ field: 'body', message: `must nest at most ${MAX_BODY_DEPTH} levels deep` }]);
  }
  return value;
}

/** A 400 naming the field when some string of params, query or body holds a NUL character. */
function refuseNul(value: unknown, where: string): void {
  const field = fieldWithNul(value, where);
  if (field) throw new ApiError('VALIDATION_ERROR', `${field}: must not contain NUL characters`, [{ field, message: 'must not contain NUL characters' }]);
}

function queryObject(ctx: Context): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ctx.query)) out[k] = v;
  return out;
}

/** The route's parameters, decoded; a parameter that is not valid URL encoding is a 400 naming it. */
function decodedParams(names: readonly string[], ctx: Context): Record<string, unknown> {
  const captures = (ctx as Context & { captures?: string[] }).captures ?? [];
  const params: Record<string, unknown> = {};
  names.forEach((name, i) => {
    try {
      params[name] = decodeURIComponent(captures[i] ?? '');
    } catch {
      throw new ApiError('VALIDATION_ERROR', `params.${name}: bad URL encoding`, [{ field: `params.${name}`, message: 'bad URL encoding' }]);
    }
  });
  return params;
}

function auditAction(def: RouteDef): string {
  return `${def.method} ${def.path}`;
}

interface RouteState {
  /** The route template that answered, for the metrics label; unset when none did. */
  route?: string;
}

/**
 * A request that reached a route with parameters only because a more specific path (fewer
 * parameters) lacks its method: `PUT /api/v1/projects/probe` is a 405 with that path's methods in
 * Allow, not a bad `id` of `PUT /api/v1/projects/{id}`.
 */
function refuseShadowedMethod(ctx: Context, own: number, allowed: AllowedMethods): void {
  if (own === 0) return;
  const match = allowed.of(ctx.path);
  if (!match || match.params >= own) return;
  ctx.set('Allow', match.methods.join(', '));
  throw new ApiError('NOT_FOUND', `method ${ctx.method} is not allowed on ${ctx.path}`, undefined, 405);
}

/** A coalesced route's answer, shared by the requests of one flight. */
interface SharedAnswer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  /** The body's bytes, encoded once for all (an object body serialised as Koa would have), or none. */
  body: Buffer | null | undefined;
}

/** The answer the handler wrote on `ctx`, in a form every request of the flight can send. */
function sharedAnswer(ctx: Context): SharedAnswer {
  const body: unknown = ctx.body;
  if (body !== null && body !== undefined && !Buffer.isBuffer(body)) {
    if (typeof body === 'object' && typeof (body as { pipe?: unknown }).pipe === 'function') throw new Error(`${ctx.path}: a coalesced route answered a stream`);
    // The Content-Type Koa chose for a string or an object stays: a Buffer body keeps the header it finds.
    if (typeof body === 'object') ctx.type = 'application/json';
    ctx.body = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  }
  const headers = { ...ctx.response.headers };
  delete headers['content-length'];
  return { status: ctx.status, headers, body: ctx.body as Buffer | null | undefined };
}

function sendShared(ctx: Context, answer: SharedAnswer): void {
  ctx.status = answer.status;
  // A cookie belongs to the request that set it, never to the others of its flight.
  for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && name !== 'set-cookie') ctx.set(name, value as string | string[]);
  ctx.body = answer.body;
}

/** One route of the table as Koa middleware: authorize, validate, parse the body, run the handler, audit, reply. */
function routeHandler(def: RouteDef, deps: AppDeps, allowed: AllowedMethods, flights: SingleFlight<SharedAnswer>) {
  const query = def.query ? requestSchema(def.query, 'query') : undefined;
  const validate: { params?: Validator; query?: Validator; body?: Validator } = {
    params: def.params ? compileValidator('params', requestSchema(def.params, 'params').schema) : undefined,
    query: query ? compileValidator('query', query.schema) : undefined,
    body: def.body ? compileValidator('body', requestSchema(def.body, 'body').schema) : undefined,
  };
  const caps = query?.caps ?? {};
  const mutating = MUTATING.has(def.method);
  // Read from the path once, not per request.
  const paramNames = [...def.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
  const ownParams = paramCount(def.path);

  return async (ctx: Context) => {
    (ctx.state as RouteState).route = def.path;
    refuseShadowedMethod(ctx, ownParams, allowed);
    const principal = await resolvePrincipal(ctx, deps);
    // Only a public read by nobody needs to know (the config file is read live).
    const requireAuthForReads = def.access === 'public' && !principal && (await readsRequireSignIn(deps.config));
    authorize(def, principal, ctx, requireAuthForReads);

    const params = decodedParams(paramNames, ctx);
    refuseNul(params, 'params');
    validate.params?.(params);
    const query = queryObject(ctx);
    refuseNul(query, 'query');
    validate.query?.(query);
    applyCaps(query, caps);
    let body: unknown = undefined;
    if (mutating && (def.rawBody || def.body)) {
      const raw = await readRawBody(ctx);
      if (def.rawBody) (ctx.state as { rawBody?: Buffer }).rawBody = raw;
      if (def.body) body = parseRawJson(raw);
    }
    if (mutating && def.body) {
      refuseNul(body, 'body');
      validate.body?.(body);
    }

    const flightKey = def.coalesce && (ctx.method === 'GET' || ctx.method === 'HEAD') ? flightKeyOf(principal, ctx.path, ctx.querystring) : undefined;
    if (flightKey !== undefined) {
      let led = false;
      const answer = await flights.run(flightKey, async () => {
        led = true;
        const rc: RequestContext = { deps, db: deps.db, principal, koa: ctx, remoteAddr: ctx.ip, audit: {} };
        sendResult(ctx, def, await def.handler({ params, query, body }, rc));
        return sharedAnswer(ctx);
      });
      if (!led) sendShared(ctx, answer);
      return;
    }

    const rc: RequestContext = { deps, db: deps.db, principal, koa: ctx, remoteAddr: ctx.ip, audit: {} };
    const result = await def.handler({ params, query, body }, rc);

    if (mutating && rc.audit.action !== 'none') {
      await writeAuditEntry(deps.db, {
        actorKind: principal?.kind ?? 'anonymous',
        actorId: principal?.id ?? null,
        actorName: principal?.name ?? null,
        action: rc.audit.action ?? auditAction(def),
        targetKind: rc.audit.targetKind ?? def.tag,
        targetId: rc.audit.targetId ?? (typeof params.id === 'string' ? params.id : null),
        details: rc.audit.details ?? (body && typeof body === 'object' ? (body as Record<string, unknown>) : null),
        remoteAddr: ctx.ip || null,
      });
    }

    sendResult(ctx, def, result);
  };
}

/** A handler's result as the response: a Reply, a value as the route's success status, or HANDLED (written already). */
function sendResult(ctx: Context, def: RouteDef, result: unknown): void {
  if (result === HANDLED) return;
  if (result instanceof Reply) {
    ctx.status = result.status;
    for (const [k, v] of Object.entries(result.headers)) ctx.set(k, v);
    if (result.body !== undefined) ctx.body = result.body;
    return;
  }
  const status = def.successStatus ?? Math.min(...Object.keys(def.responses).map(Number));
  ctx.status = status;
  if (status !== 204) ctx.body = result ?? null;
}

function routeHandlers(deps: AppDeps, routes: RouteDef[], epoch: WriteEpoch): Map<RouteDef, ReturnType<typeof routeHandler>> {
  const allowed = allowedMethods(routes);
  const flights = new SingleFlight<SharedAnswer>(epoch);
  return new Map(routes.map((def) => [def, routeHandler(def, deps, allowed, flights)]));
}

const API_PREFIX = '/api/v1/';

/** A router's dispatch as plain Koa middleware (it sets ctx.params and ctx.router itself). */
const dispatchOf = (router: Router): Koa.Middleware => router.routes() as unknown as Koa.Middleware;

/** The resource segment of a path under /api/v1/ (`builds` of `/api/v1/builds/{id}`), lower-cased, or undefined. */
function resourceSegment(path: string): string | undefined {
  if (path.length < API_PREFIX.length || path.slice(0, API_PREFIX.length).toLowerCase() !== API_PREFIX) return undefined;
  const end = path.indexOf('/', API_PREFIX.length);
  return path.slice(API_PREFIX.length, end < 0 ? undefined : end).toLowerCase();
}

/**
 * The route table on @koa/router. Where several routes match a path, the one with the fewest parameters answers
 * (`/builds/recent` before `/builds/{id}`); GET routes answer HEAD too. It is one router per resource of /api/v1
 * (`builds`, `projects`, …), with the other routes (`/nix-cache/…`, `/health`, …) in `rest`. @koa/router tests
 * every route of a router against every request (a regular expression and a debug call each, 107 routes); a request
 * under /api/v1/ can only match the routes of its own resource, so it is dispatched to that router alone, with the
 * same answer (case-insensitive, fewest parameters first). A table where some /api/v1/ route has a parameter as its
 * resource is not split.
 */
function routeTableRouters(routes: RouteDef[], handlers: Map<RouteDef, ReturnType<typeof routeHandler>>): { all: Router } | { byResource: Map<string, Router>; rest: Router } {
  const make = (defs: RouteDef[]) => {
    const router = new Router({ exclusive: 'specificity' });
    for (const def of defs) router.register(routerPath(def.path), [def.method], handlers.get(def)!);
    return router;
  };
  const groups = new Map<string, RouteDef[]>();
  const rest: RouteDef[] = [];
  for (const def of routes) {
    const resource = resourceSegment(def.path);
    if (resource === undefined && !def.path.toLowerCase().startsWith('/api/')) rest.push(def);
    else if (resource === undefined || !/^[a-z0-9._-]+$/.test(resource)) return { all: make(routes) };
    else groups.set(resource, [...(groups.get(resource) ?? []), def]);
  }
  return { byResource: new Map([...groups].map(([resource, defs]) => [resource, make(defs)])), rest: make(rest) };
}

/** The route table as Koa middleware: a request under /api/v1/ tried against its resource's routes only. */
function routeTableMiddleware(deps: AppDeps, routes: RouteDef[], epoch: WriteEpoch): Koa.Middleware {
  const routers = routeTableRouters(routes, routeHandlers(deps, routes, epoch));
  if ('all' in routers) return dispatchOf(routers.all);
  const resources = new Map([...routers.byResource].map(([resource, router]) => [resource, dispatchOf(router)]));
  const others = dispatchOf(routers.rest);
  const none: Koa.Middleware = (_ctx, next) => next();
  return (ctx, next) => {
    const resource = resourceSegment(ctx.path);
    const middleware = resource === undefined ? others : (resources.get(resource) ?? none);
    return middleware(ctx, next);
  };
}

export interface BuiltApp {
  app: Koa;
  metrics: ApiMetrics;
  routes: RouteDef[];
  /** Bumped after every request that may have written (coalesced reads never join a flight older than it). */
  writeEpoch: WriteEpoch;
}

export function buildApp(deps: AppDeps, routes: RouteDef[], log: (line: string) => void = () => {}): BuiltApp {
  const app = new Koa({ proxy: true });
  const metrics = new ApiMetrics();
  registerNotificationMetrics(metrics.registry, deps.db);
  registerReadModelMetrics(metrics.registry, deps.db);
  (app.context as unknown as { ringmasterMetrics: ApiMetrics }).ringmasterMetrics = metrics;
  const writeEpoch = writeEpochOf(deps.db);
  const routeTable = routeTableMiddleware(deps, routes, writeEpoch);

  // Errors become the COMPAT error body; every request is timed by its route template.
  app.use(async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } catch (err) {
      const apiError = err instanceof ApiError ? err : fromDatabaseError(err);
      if (apiError) {
        ctx.status = apiError.status;
        if (apiError.code === 'DATABASE_UNAVAILABLE') ctx.set('Retry-After', '5');
        ctx.body = apiError.toBody();
      } else {
        log(`internal error on ${ctx.method} ${ctx.path}: ${(err as Error)?.stack ?? String(err)}`);
        ctx.status = 500;
        ctx.body = { error: 'internal error', error_code: 'INTERNAL_ERROR' };
      }
    } finally {
      // Before the response is sent: a read that arrives after it joins no flight started before this write.
      if (!READ_ONLY_METHODS.has(ctx.method)) writeEpoch.bump();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpDuration.observe({ method: ctx.method, route: (ctx.state as RouteState).route ?? 'unmatched', status: String(ctx.status) }, seconds);
    }
  });
  // The dashboard's HTML pages (/, /builds/{id}, …) and /static/: beside the API, never under /api/v1.
  const dashboard = dispatchOf(dashboardRouter(deps, routes, writeEpoch));
  app.use((ctx, next) => (ctx.path.startsWith('/api/') ? next() : dashboard(ctx, next)));
  app.use(routeTable);
  // No route answered: OPTIONS on a route's path answers 200 with Allow, another method 405, an unknown path 404.
  const allowed = allowedMethods(routes);
  app.use(async (ctx: Context) => {
    const match = allowed.of(ctx.path);
    if (!match) throw new ApiError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
    ctx.set('Allow', match.methods.join(', '));
    if (ctx.method === 'OPTIONS') {
      ctx.status = 200;
      return;
    }
    throw new ApiError('NOT_FOUND', `method ${ctx.method} is not allowed on ${ctx.path}`, undefined, 405);
  });

  return { app, metrics, routes, writeEpoch };
}
