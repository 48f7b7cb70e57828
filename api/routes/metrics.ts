import { defineRoute, HANDLED, sendJsonText, type JsonSchema, type RequestContext, type RouteDef } from '../route';
import { invalidField } from '../errors';
import { arrayOf, errorBody, timestamp, uuid } from '../schemas';
import type { Db } from '../../lib/db';
import { BUILD_STATUSES } from '../queries/builds';
import { buildCountSeries, buildDurationSeries, readsRollup, systemMetrics, type BucketedRange } from '../queries/metrics';
import { SeriesCache } from '../series-cache';
import { SingleFlight, writeEpochOf } from '../single-flight';

/** Bucket sizes a series may be cut into. */
export const BUCKET_SECONDS = { '5m': 300, '15m': 900, '1h': 3600, '6h': 21600, '1d': 86400, '7d': 604800 } as const;
type Bucket = keyof typeof BUCKET_SECONDS;

/** A series has at most this many buckets. */
export const MAX_BUCKETS = 2000;
const DEFAULT_RANGE_SECONDS = 30 * 86400;
/**
 * A series read from `builds` directly (sub-hour buckets, bounds off the hour) older than this is recomputed in the
 * background while it is still served (see SeriesCache). Series from the hourly rollup are read on every request.
 */
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

/** One value per database handle, made on first use. */
function perDatabase<T>(make: (db: Db) => T): (db: Db) => T {
  const made = new WeakMap<Db, T>();
  return (db) => {
    let value = made.get(db);
    if (!value) made.set(db, (value = make(db)));
    return value;
  };
}
const seriesCache = perDatabase(() => new SeriesCache(SERIES_FRESH_MS));
const seriesFlights = perDatabase((db) => new SingleFlight<string>(writeEpochOf(db)));

/** The JSON of a series as the routes answer it (the dashboard's metrics page reads it too). */
export function cachedSeries(db: Db, kind: 'builds' | 'duration', query: SeriesQuery): Promise<string> {
  return seriesJson(db, kind, query, (r) => (kind === 'builds' ? buildCountSeries : buildDurationSeries)(db, r));
}

/**
 * A series' JSON: read from the rollup on every request (current to the last commit; concurrent reads of one series
 * share a single flight, which never answers from before a write this process completed: the dashboard's page renders
 * share them so), or, when it must aggregate `builds` (sub-hour buckets, bounds off the hour), from the series cache.
 */
function seriesJson(db: Db, kind: string, query: SeriesQuery, compute: (r: BucketedRange) => Promise<unknown[]>): Promise<string> {
  const r = bucketedRange(query);
  const key = JSON.stringify([kind, r]);
  const json = async () => JSON.stringify({ ...seriesEnvelope(r, query.bucket), points: await compute(r) });
  return readsRollup(r) ? seriesFlights(db).run(key, json) : seriesCache(db).get(key, json);
}

function seriesEnvelope(r: BucketedRange, bucket: Bucket) {
  return { from: r.from.toISOString(), to: r.to.toISOString(), bucket, bucket_seconds: r.bucketSeconds, project_id: r.project_id ?? null, jobset_id: r.jobset_id ?? null };
}

/** Answers a series (see seriesJson). */
async function answerSeries(rc: RequestContext, kind: string, query: SeriesQuery, compute: (r: BucketedRange) => Promise<unknown[]>): Promise<typeof HANDLED> {
  return sendJsonText(rc, await seriesJson(rc.db, kind, query, compute));
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
    'Build count time series: builds created in each bucket, by status, exact. Buckets of whole hours on hour boundaries (1h, 6h, 1d, 7d; the default range) are read from an hourly rollup that triggers on builds keep in the writer\'s transaction, so they are current; sub-hour buckets (5m, 15m) or bounds off the hour aggregate builds directly and are served from a cache refreshed in the background when older than 10 s',
    { type: 'object', required: ['time', 'total', 'by_status'], properties: { time: timestamp, total: { type: 'integer' }, by_status: countsByStatus } },
    buildCountSeries,
  ),
  seriesRoute(
    'duration',
    'Build duration percentile time series: p50, p90 and p99 (seconds) of the durations (completed_at − started_at) of the builds that finished in each bucket. With whole-hour buckets on hour boundaries they come from an hourly histogram of log-scale bins (bin i holds (γ^(i−1), γ^i] s, γ = 1.02/0.98, read back as 2γ^i/(γ+1)): percentile_cont over the order statistics read from their bins, within 2% (relative) of percentile_cont over the exact durations (a duration ≤ 0 counts as 0); `count` is exact. Sub-hour buckets or bounds off the hour compute percentile_cont over builds exactly, cached like the count series',
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
