import Koa, { type Context } from 'koa';
import { ApiError, fromDatabaseError } from './errors';
import { authorize, resolvePrincipal } from './auth';
import { compileValidator, type Validator } from './validation';
import { writeAuditEntry } from './queries/audit-log';
import { ApiMetrics } from './metrics';
import { registerReadModelMetrics } from './read-model-metrics';
import { HANDLED, Reply, type AppDeps, type RequestContext, type RouteDef } from './route';

const MUTATING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
const MAX_BODY_BYTES = 10 * 1024 * 1024;

interface CompiledRoute {
  def: RouteDef;
  regex: RegExp;
  paramNames: string[];
  specificity: number[];
  validate: { params?: Validator; query?: Validator; body?: Validator };
}

function compile(def: RouteDef): CompiledRoute {
  const paramNames: string[] = [];
  const segments = def.path.split('/').filter(Boolean);
  const pattern = segments
    .map((seg) => {
      const m = /^\{(\w+)\}$/.exec(seg);
      if (m) {
        paramNames.push(m[1]);
        return '/([^/]+)';
      }
      // A parameter inside a segment, e.g. {hash}.narinfo
      const inner = seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{(\w+)\\?\}/g, (_s, name: string) => {
        paramNames.push(name);
        return '([^/]+?)';
      });
      return `/${inner}`;
    })
    .join('');
  return {
    def,
    regex: new RegExp(`^${pattern || '/'}/?$`),
    paramNames,
    // Static segments outrank parameters position by position: /builds/recent before /builds/{id}.
    specificity: segments.map((s) => (s.includes('{') ? 0 : 1)),
    validate: {
      params: def.params ? compileValidator('params', def.params) : undefined,
      query: def.query ? compileValidator('query', def.query) : undefined,
      body: def.body ? compileValidator('body', def.body) : undefined,
    },
  };
}

function bySpecificity(a: CompiledRoute, b: CompiledRoute): number {
  const n = Math.max(a.specificity.length, b.specificity.length);
  for (let i = 0; i < n; i++) {
    const d = (b.specificity[i] ?? -1) - (a.specificity[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

async function readBody(ctx: Context): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError('VALIDATION_ERROR', 'request body too large', [{ field: 'body', message: `must be at most ${MAX_BODY_BYTES} bytes` }], 413);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new ApiError('VALIDATION_ERROR', `body: malformed JSON (${(err as Error).message})`, [{ field: 'body', message: 'malformed JSON' }]);
  }
}

function queryObject(ctx: Context): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ctx.query)) out[k] = v;
  return out;
}

function auditAction(def: RouteDef): string {
  return `${def.method} ${def.path}`;
}

export interface BuiltApp {
  app: Koa;
  metrics: ApiMetrics;
  routes: RouteDef[];
}

export function buildApp(deps: AppDeps, routes: RouteDef[], log: (line: string) => void = () => {}): BuiltApp {
  const app = new Koa({ proxy: true });
  const metrics = new ApiMetrics();
  registerReadModelMetrics(metrics.registry, deps.db);
  const compiled = routes.map(compile).sort(bySpecificity);
  (app.context as unknown as { ringmasterMetrics: ApiMetrics }).ringmasterMetrics = metrics;

  app.use(async (ctx) => {
    const started = process.hrtime.bigint();
    let routeLabel = 'unmatched';
    try {
      const method = ctx.method === 'HEAD' ? 'GET' : ctx.method;
      let pathMatched = false;
      let match: { route: CompiledRoute; values: string[] } | undefined;
      for (const route of compiled) {
        const m = route.regex.exec(ctx.path);
        if (!m) continue;
        pathMatched = true;
        if (route.def.method !== method) continue;
        match = { route, values: m.slice(1) };
        break;
      }
      if (!match) {
        if (pathMatched) throw new ApiError('NOT_FOUND', `method ${ctx.method} is not allowed on ${ctx.path}`, undefined, 405);
        throw new ApiError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
      }
      const { def, validate } = match.route;
      routeLabel = def.path;

      const principal = await resolvePrincipal(ctx, deps.db);
      authorize(def, principal, ctx, deps.config.requireAuthForReads);

      const params: Record<string, unknown> = {};
      match.route.paramNames.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(match!.values[i]);
        } catch {
          throw new ApiError('VALIDATION_ERROR', `params.${name}: bad URL encoding`, [{ field: `params.${name}`, message: 'bad URL encoding' }]);
        }
      });
      validate.params?.(params);
      const query = queryObject(ctx);
      validate.query?.(query);
      let body: unknown = undefined;
      let rawBody: Buffer | undefined;
      if (MUTATING.has(def.method)) {
        rawBody = await readBody(ctx);
        if (def.rawBody) {
          (ctx.state as { rawBody?: Buffer }).rawBody = rawBody;
        }
        if (def.body) {
          body = parseJsonBody(rawBody);
          validate.body?.(body);
        }
      }

      const rc: RequestContext = { deps, db: deps.db, principal, koa: ctx, remoteAddr: ctx.ip, audit: {} };
      const result = await def.handler({ params, query, body }, rc);

      if (MUTATING.has(def.method) && rc.audit.action !== 'none') {
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
    } catch (err) {
      const apiError = err instanceof ApiError ? err : fromDatabaseError(err);
      if (apiError) {
        ctx.status = apiError.status;
        ctx.body = apiError.toBody();
      } else {
        log(`internal error on ${ctx.method} ${ctx.path}: ${(err as Error)?.stack ?? String(err)}`);
        ctx.status = 500;
        ctx.body = { error: 'internal error', error_code: 'INTERNAL_ERROR' };
      }
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpDuration.observe({ method: ctx.method, route: routeLabel, status: String(ctx.status) }, seconds);
    }
  });

  return { app, metrics, routes };
}
