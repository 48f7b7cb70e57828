import { defineRoute, HANDLED, sendJsonText, type JsonSchema, type RequestContext, type RouteDef } from '../route';
import { invalidField } from '../errors';
import { arrayOf, errorBody, timestamp, uuid } from '../schemas';
import type { Db } from '../../lib/db';
import { BUILD_STATUSES } from '../queries/builds';
import { buildCountSeries, buildDurationSeries, systemMetrics, type BucketedRange } from '../queries/metrics';
import { SeriesCache } from '../series-cache';

/** Bucket sizes a series may be cut into. */
export const BUCKET_SECONDS = { '5m': 300, '15m': 900, '1h': 3600, '6h': 21600, '1d': 86400, '7d': 604800 } as const;
type Bucket = keyof typeof BUCKET_SECONDS;

/** A series has at most this many buckets. */
export const MAX_BUCKETS = 2000;
const DEFAULT_RANGE_SECONDS = 30 * 86400;
/** A computed series older than this is recomputed in the background while it is still served (see SeriesCache). */
export const SERIES_FRESH_MS = 10_000;

export interface SeriesQuery {
  from?: string;
  to?: string;
  bucket: Bucket;
  project_id?: string;
  jobset_id?: string;
}

const seriesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { ...timestamp, description: 'start of the first bucket (RFC 3339); default: 30 days before `to`' },
    to: { ...timestamp, description: 'end of the range (RFC 3339); default: now, rounded up to a whole bucket' },
    bucket: { enum: Object.keys(BUCKET_SECONDS), default: '1d', description: 'bucket size' },
    project_id: uuid,
    jobset_id: uuid,
  },
};

/** The range a query asks for: explicit bounds as given, defaults aligned to whole buckets so they repeat. */
export function bucketedRange(q: SeriesQuery, now = Date.now()): BucketedRange {
  const bucketSeconds = BUCKET_SECONDS[q.bucket];
  const bucketMs = bucketSeconds * 1000;
  const to = q.to ? new Date(q.to) : new Date(Math.ceil(now / bucketMs) * bucketMs);
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - Math.ceil(DEFAULT_RANGE_SECONDS / bucketSeconds) * bucketMs);
  if (from.getTime() >= to.getTime()) throw invalidField('query.from', 'must be before query.to');
  if ((to.getTime() - from.getTime()) / bucketMs > MAX_BUCKETS) {
    throw invalidField('query.bucket', `the range holds more than ${MAX_BUCKETS} buckets of ${q.bucket}: choose a larger bucket or a shorter range`);
  }
  return { from, to, bucketSeconds, project_id: q.project_id, jobset_id: q.jobset_id };
}

const caches = new WeakMap<Db, SeriesCache>();
function seriesCache(db: Db): SeriesCache {
  let cache = caches.get(db);
  if (!cache) {
    cache = new SeriesCache(SERIES_FRESH_MS);
    caches.set(db, cache);
  }
  return cache;
}

/** The JSON of a series as the routes answer it, from their cache (the dashboard's metrics page reads it too). */
export function cachedSeries(db: Db, kind: 'builds' | 'duration', query: SeriesQuery): Promise<string> {
  const r = bucketedRange(query);
  const compute = kind === 'builds' ? buildCountSeries : buildDurationSeries;
  return seriesCache(db).get(JSON.stringify([kind, r]), async () => JSON.stringify({ ...seriesEnvelope(r, query.bucket), points: await compute(db, r) }));
}

function seriesEnvelope(r: BucketedRange, bucket: Bucket) {
  return { from: r.from.toISOString(), to: r.to.toISOString(), bucket, bucket_seconds: r.bucketSeconds, project_id: r.project_id ?? null, jobset_id: r.jobset_id ?? null };
}

/** Answers a series from the cache: computed (and serialised) once per range for every caller within the TTL. */
async function answerSeries(rc: RequestContext, kind: string, query: SeriesQuery, compute: (r: BucketedRange) => Promise<unknown[]>): Promise<typeof HANDLED> {
  const r = bucketedRange(query);
  const body = await seriesCache(rc.db).get(JSON.stringify([kind, r]), async () => JSON.stringify({ ...seriesEnvelope(r, query.bucket), points: await compute(r) }));
  return sendJsonText(rc, body);
}

const envelopeProperties = {
  from: timestamp,
  to: timestamp,
  bucket: { type: 'string' },
  bucket_seconds: { type: 'integer' },
  project_id: { type: ['string', 'null'] },
  jobset_id: { type: ['string', 'null'] },
};

const countsByStatus = { type: 'object', properties: Object.fromEntries(BUILD_STATUSES.map((s) => [s, { type: 'integer' }])) };
const nullableNumber = { type: ['number', 'null'] };

const systemMetricsSchema = {
  type: 'object',
  required: ['system', 'builds', 'queued', 'running', 'succeeded', 'failed', 'builders', 'slots', 'slots_in_use'],
  properties: {
    system: { type: 'string' },
    builds: { type: 'integer' },
    queued: { type: 'integer', description: 'pending builds' },
    running: { type: 'integer' },
    succeeded: { type: 'integer' },
    failed: { type: 'integer', description: 'builds in any failed status' },
    builders: { type: 'integer', description: 'enabled remote builders and connected agents for this system' },
    slots: { type: 'integer', description: 'their max_jobs in all' },
    slots_in_use: { type: 'integer' },
  },
};

/** A time-series route: the shared query and envelope, its points' schema, computed through the series cache. */
function seriesRoute(kind: 'builds' | 'duration', summary: string, point: JsonSchema, compute: (db: Db, r: BucketedRange) => Promise<unknown[]>): RouteDef {
  return defineRoute<{}, SeriesQuery>({
    method: 'GET',
    path: `/api/v1/metrics/timeseries/${kind}`,
    summary,
    tag: 'metrics',
    access: 'public',
    coalesce: true,
    query: seriesQuery,
    responses: {
      200: { type: 'object', required: ['from', 'to', 'bucket', 'points'], properties: { ...envelopeProperties, points: arrayOf(point) } },
      400: errorBody,
    },
    handler: async ({ query }, rc) => answerSeries(rc, kind, query, (r) => compute(rc.db, r)),
  });
}

export const metricsRoutes: RouteDef[] = [
  seriesRoute(
    'builds',
    'Build count time series: builds created in each bucket, by status (a series is computed once for all callers and refreshed in the background when older than 10 s)',
    { type: 'object', required: ['time', 'total', 'by_status'], properties: { time: timestamp, total: { type: 'integer' }, by_status: countsByStatus } },
    buildCountSeries,
  ),
  seriesRoute(
    'duration',
    'Build duration percentile time series: p50, p90 and p99 (seconds, percentile_cont) of the builds that finished in each bucket (refreshed like the count series)',
    {
      type: 'object',
      required: ['time', 'count', 'p50', 'p90', 'p99'],
      properties: { time: timestamp, count: { type: 'integer' }, p50: nullableNumber, p90: nullableNumber, p99: nullableNumber },
    },
    buildDurationSeries,
  ),
  defineRoute({
    method: 'GET',
    path: '/api/v1/metrics/systems',
    summary: 'Build system distribution: builds and queue by system, and builders\' slots by system',
    tag: 'metrics',
    access: 'public',
    coalesce: true,
    responses: { 200: arrayOf(systemMetricsSchema) },
    handler: async (_input, rc) => systemMetrics(rc.db),
  }),
];
