import Koa, { type Context, type Next } from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import getRawBody from 'raw-body';
import { ApiError, fromDatabaseError } from './errors';
import { authorize, resolvePrincipal } from './auth';
import { compileValidator, type Validator } from './validation';
import { writeAuditEntry } from './queries/audit-log';
import { ApiMetrics } from './metrics';
import { registerNotificationMetrics } from './notification-metrics';
import { liveConfigFile } from '../lib/live-config-file';
import { registerReadModelMetrics } from './read-model-metrics';
import { HANDLED, Reply, type AppDeps, type RequestContext, type RouteDef } from './route';
import { dashboardRouter } from './dashboard/router';

const MUTATING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** The route table's OpenAPI path in @koa/router's syntax: `/builds/{id}` → `/builds/:id`, `{hash}.narinfo` → `:hash.narinfo`. */
export function routerPath(openApiPath: string): string {
  return openApiPath.replace(/\{(\w+)\}/g, ':$1');
}

/**
 * Every body is JSON, whatever the Content-Type says (circus clients do not always send one); at most
 * MAX_BODY_BYTES; an empty body is `{}`; only an object or an array at the top (co-body's strict mode).
 */
const parseJsonBody = bodyParser({
  enableTypes: ['json'],
  detectJSON: () => true,
  parsedMethods: [...MUTATING],
  jsonLimit: MAX_BODY_BYTES,
  encoding: 'utf-8',
});

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

/** Reads a JSON body through the body parser into `ctx.request.body`. */
async function readJsonBody(ctx: Context): Promise<unknown> {
  try {
    await parseJsonBody(ctx, async () => {});
  } catch (err) {
    throw bodyError(err);
  }
  return ctx.request.body;
}

/** The exact bytes of the body (webhook signatures are computed over them), at most MAX_BODY_BYTES. */
async function readRawBody(ctx: Context): Promise<Buffer> {
  try {
    return await getRawBody(ctx.req, { length: ctx.get('content-length') || undefined, limit: MAX_BODY_BYTES });
  } catch (err) {
    throw bodyError(err);
  }
}

function parseRawJson(raw: Buffer): unknown {
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw bodyError(err);
  }
}

function queryObject(ctx: Context): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ctx.query)) out[k] = v;
  return out;
}

/** The route's parameters, decoded; a parameter that is not valid URL encoding is a 400 naming it. */
function decodedParams(def: RouteDef, ctx: Context): Record<string, unknown> {
  const names = [...def.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
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

/** One route of the table as Koa middleware: authorize, validate, parse the body, run the handler, audit, reply. */
function routeHandler(def: RouteDef, deps: AppDeps) {
  const validate: { params?: Validator; query?: Validator; body?: Validator } = {
    params: def.params ? compileValidator('params', def.params) : undefined,
    query: def.query ? compileValidator('query', def.query) : undefined,
    body: def.body ? compileValidator('body', def.body) : undefined,
  };
  const mutating = MUTATING.has(def.method);

  return async (ctx: Context) => {
    (ctx.state as RouteState).route = def.path;
    const principal = await resolvePrincipal(ctx, deps.db);
    // The config file's require_auth_for_reads applies live; either it or the environment turns it on.
    const requireAuthForReads =
      deps.config.requireAuthForReads || (def.access === 'public' && !principal && (await liveConfigFile(deps.config.configFile).current()).require_auth_for_reads === true);
    authorize(def, principal, ctx, requireAuthForReads);

    const params = decodedParams(def, ctx);
    validate.params?.(params);
    const query = queryObject(ctx);
    validate.query?.(query);
    let body: unknown = undefined;
    if (mutating && def.rawBody) {
      const raw = await readRawBody(ctx);
      (ctx.state as { rawBody?: Buffer }).rawBody = raw;
      if (def.body) body = parseRawJson(raw);
    } else if (mutating && def.body) {
      body = await readJsonBody(ctx);
    }
    if (mutating && def.body) validate.body?.(body);

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
  };
}

/**
 * The route table on @koa/router. Where several routes match a path, the one with the fewest
 * parameters answers (`/builds/recent` before `/builds/{id}`); GET routes answer HEAD too.
 */
export function routeTableRouter(deps: AppDeps, routes: RouteDef[]): Router {
  const router = new Router({ exclusive: 'specificity' });
  for (const def of routes) {
    router.register(routerPath(def.path), [def.method], routeHandler(def, deps));
  }
  return router;
}

/** Whether some route has this request's path (with another method): then a 405, else a 404. */
function pathHasRoutes(ctx: Context): boolean {
  const matched = (ctx as Context & { matched?: Array<{ methods: string[] }> }).matched ?? [];
  return matched.some((layer) => layer.methods.length > 0);
}

export interface BuiltApp {
  app: Koa;
  metrics: ApiMetrics;
  routes: RouteDef[];
}

export function buildApp(deps: AppDeps, routes: RouteDef[], log: (line: string) => void = () => {}): BuiltApp {
  const app = new Koa({ proxy: true });
  const metrics = new ApiMetrics();
  registerNotificationMetrics(metrics.registry, deps.db);
  registerReadModelMetrics(metrics.registry, deps.db);
  (app.context as unknown as { ringmasterMetrics: ApiMetrics }).ringmasterMetrics = metrics;
  const router = routeTableRouter(deps, routes);

  // Errors become the COMPAT error body; every request is timed by its route template.
  app.use(async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
      const answered = (ctx.state as RouteState).route !== undefined;
      if (!answered && ctx.method !== 'OPTIONS') {
        if (pathHasRoutes(ctx)) throw new ApiError('NOT_FOUND', `method ${ctx.method} is not allowed on ${ctx.path}`, undefined, 405);
        throw new ApiError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
      }
      if (!answered && !pathHasRoutes(ctx)) throw new ApiError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
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
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpDuration.observe({ method: ctx.method, route: (ctx.state as RouteState).route ?? 'unmatched', status: String(ctx.status) }, seconds);
    }
  });
  // The dashboard's HTML pages (/, /builds/{id}, …) and /static/: beside the API, never under /api/v1.
  app.use(dashboardRouter(deps, routes).routes());
  app.use(router.routes());
  // OPTIONS on a route's path answers 200 with Allow; the 404 and 405 bodies come from the handler above.
  app.use(router.allowedMethods());

  return { app, metrics, routes };
}
