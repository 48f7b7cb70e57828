import { defineRoute, HANDLED, Reply, type AppDeps, type RouteDef } from '../route';
import { openApiDocument } from '../openapi';
import type { ApiMetrics } from '../metrics';
import { scrapeWorkerMetrics } from '../worker-metrics';
import { errorBody, timestamp } from '../schemas';
import { databaseServerVersion, systemCounts } from '../queries/system';
import { cacheSigningKey } from '../nix-cache/signing-key';

export interface ComponentStatus {
  status: 'ok' | 'down';
  error?: string;
  latency_ms?: number;
}

async function timed(fn: () => Promise<void>, timeoutMs: number): Promise<ComponentStatus> {
  const started = Date.now();
  try {
    await Promise.race([
      fn(),
      new Promise<never>((_r, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    return { status: 'ok', latency_ms: Date.now() - started };
  } catch (err) {
    return { status: 'down', error: (err as Error).message.split('\n')[0], latency_ms: Date.now() - started };
  }
}

export async function databaseStatus(deps: AppDeps): Promise<ComponentStatus> {
  return timed(async () => {
    await deps.db.raw('select 1');
  }, 3000);
}

export async function temporalStatus(deps: AppDeps): Promise<ComponentStatus> {
  const t = deps.temporal;
  if (!t) return { status: 'down', error: 'not configured' };
  return timed(async () => {
    await t.connection.workflowService.describeNamespace({ namespace: t.namespace });
  }, 3000);
}

/** Whether at least one worker polls Ringmaster's workflow task queue (no workflow is started). */
export async function workerStatus(deps: AppDeps): Promise<ComponentStatus & { pollers?: number }> {
  const t = deps.temporal;
  if (!t) return { status: 'down', error: 'Temporal not configured' };
  let pollers = 0;
  const s = await timed(async () => {
    const cutoff = Date.now() - 5 * 60_000;
    pollers = (await t.workflows.workflowPollers()).filter((p) => (p.lastAccessTime?.getTime() ?? 0) >= cutoff).length;
    if (pollers === 0) throw new Error(`no worker polls task queue "${t.taskQueue}"`);
  }, 3000);
  return { ...s, pollers };
}

const componentSchema = {
  type: 'object',
  properties: { status: { enum: ['ok', 'down'] }, error: { type: 'string' }, latency_ms: { type: 'number' } },
};

const healthSchema = {
  type: 'object',
  required: ['status', 'database', 'temporal', 'worker'],
  properties: {
    status: { enum: ['ok', 'degraded'] },
    version: { type: 'string' },
    uptime_seconds: { type: 'number' },
    database: componentSchema,
    temporal: componentSchema,
    worker: componentSchema,
    down: { type: 'array', items: { type: 'string' } },
  },
};

export function systemRoutes(getRoutes: () => RouteDef[]): RouteDef[] {
  let cachedDocument: string | undefined;
  return [
    defineRoute({
      method: 'GET',
      path: '/health',
      summary: 'Health check with database and service status',
      tag: 'system',
      access: 'always-public',
      responses: { 200: healthSchema, 503: healthSchema },
      handler: async (_input, rc) => {
        const [database, temporal, worker] = await Promise.all([databaseStatus(rc.deps), temporalStatus(rc.deps), workerStatus(rc.deps)]);
        const down = Object.entries({ database, temporal, worker }).filter(([, s]) => s.status !== 'ok').map(([name]) => name);
        const body = {
          status: down.length === 0 ? 'ok' : 'degraded',
          version: rc.deps.version,
          uptime_seconds: Math.round((Date.now() - rc.deps.startedAt.getTime()) / 1000),
          database,
          temporal,
          worker,
          down,
        };
        return new Reply(down.length === 0 ? 200 : 503, body);
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/prometheus',
      summary: 'Prometheus metrics exposition',
      tag: 'system',
      access: 'always-public',
      coalesce: true,
      responses: { 200: { description: 'Prometheus text exposition', contentType: 'text/plain' } },
      handler: async (_input, rc) => {
        const metrics = (rc.koa as unknown as { ringmasterMetrics: ApiMetrics }).ringmasterMetrics;
        rc.koa.set('content-type', metrics.registry.contentType);
        const [own, worker] = await Promise.all([metrics.registry.metrics(), scrapeWorkerMetrics(rc.deps.config.workerMetricsAddress)]);
        rc.koa.body = own + worker;
        return HANDLED;
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/api/v1/openapi.json',
      summary: 'OpenAPI specification',
      tag: 'system',
      access: 'always-public',
      responses: { 200: { type: 'object' } },
      handler: async (_input, rc) => {
        cachedDocument ??= JSON.stringify(openApiDocument(getRoutes()));
        rc.koa.type = 'application/json';
        rc.koa.body = cachedDocument;
        return HANDLED;
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/api/v1/admin/system',
      summary: 'System status',
      tag: 'admin',
      access: 'admin',
      responses: {
        200: {
          type: 'object',
          required: ['version', 'uptime', 'database', 'temporal'],
          properties: {
            version: { type: 'string' },
            node_version: { type: 'string' },
            uptime: { type: 'number' },
            started_at: timestamp,
            projects_count: { type: 'integer' },
            jobsets_count: { type: 'integer' },
            evaluations_count: { type: 'integer' },
            builds_pending: { type: 'integer' },
            builds_running: { type: 'integer' },
            builds_completed: { type: 'integer' },
            builds_failed: { type: 'integer' },
            channels_count: { type: 'integer' },
            queue_depth: { type: 'integer' },
            active_builds: { type: 'integer' },
            database: { type: 'object' },
            temporal: { type: 'object' },
            worker: { type: 'object' },
            binary_cache: {
              type: 'object',
              required: ['public_key'],
              properties: { url: { type: ['string', 'null'] }, public_key: { type: 'string' }, gc_roots_dir: { type: 'string' } },
            },
          },
        },
        401: errorBody,
        403: errorBody,
      },
      handler: async (_input, rc) => {
        const db = rc.db;
        const database = await databaseStatus(rc.deps);
        let databaseVersion: string | undefined;
        let counts: Record<string, number> = {};
        if (database.status === 'ok') {
          databaseVersion = await databaseServerVersion(db);
          counts = { ...(await systemCounts(db)) };
          counts.queue_depth = counts.builds_pending;
          counts.active_builds = counts.builds_running;
        }
        const temporal = await temporalStatus(rc.deps);
        const worker = await workerStatus(rc.deps);
        let roundTrip: { status: 'ok' | 'down'; round_trip_ms?: number; error?: string; worker_host?: string } = { status: 'down', error: 'Temporal not configured' };
        const t = rc.deps.temporal;
        // Without Temporal or a polling worker the probe could only wait out its timeout: say so at once instead.
        if (t && temporal.status !== 'ok') roundTrip = { status: 'down', error: `not attempted: Temporal is down (${temporal.error ?? 'no answer'})` };
        else if (t && worker.status !== 'ok') roundTrip = { status: 'down', error: `not attempted: ${worker.error ?? 'no worker polls'}` };
        else if (t) {
          const started = Date.now();
          try {
            const result = await t.workflows.probeSystem();
            roundTrip = { status: 'ok', round_trip_ms: Date.now() - started, worker_host: result.activity };
          } catch (err) {
            roundTrip = { status: 'down', round_trip_ms: Date.now() - started, error: (err as Error).message };
          }
        }
        return {
          version: rc.deps.version,
          node_version: process.version,
          uptime: Math.round((Date.now() - rc.deps.startedAt.getTime()) / 1000),
          started_at: rc.deps.startedAt.toISOString(),
          ...counts,
          database: { ...database, version: databaseVersion },
          temporal: { ...temporal, namespace: t?.namespace, task_queue: t?.taskQueue, workflow_round_trip: roundTrip },
          worker,
          binary_cache: {
            url: rc.deps.config.publicUrl ? `${rc.deps.config.publicUrl.replace(/\/+$/, '')}/nix-cache` : null,
            public_key: cacheSigningKey(rc.deps.config).publicKey,
            gc_roots_dir: rc.deps.config.gcRootsDir,
          },
        };
      },
    }),
  ];
}
