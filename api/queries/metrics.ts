import type { Knex } from 'knex';
import type { Db } from '../../lib/db';
import { CONNECTED_WITHIN_SECONDS } from './builders';
import { buildCountsBySystemAndStatus } from './build-counts';
import { BUILD_STATUSES, FAILED_BUILD_STATUSES, type BuildStatus } from './builds';

/** A time range cut into equal buckets; `from` is the start of the first bucket. */
export interface BucketedRange {
  from: Date;
  to: Date;
  bucketSeconds: number;
  project_id?: string;
  jobset_id?: string;
}

function scoped(query: Knex.QueryBuilder, r: BucketedRange): Knex.QueryBuilder {
  if (r.project_id) query.where('project_id', r.project_id);
  if (r.jobset_id) query.where('jobset_id', r.jobset_id);
  return query;
}

/** The start of every bucket of the range, oldest first. */
export function bucketStarts(r: BucketedRange): Date[] {
  const starts: Date[] = [];
  for (let t = r.from.getTime(); t < r.to.getTime(); t += r.bucketSeconds * 1000) starts.push(new Date(t));
  return starts;
}

export interface BuildCountPoint {
  time: string;
  total: number;
  by_status: Record<BuildStatus, number>;
}

/** Hourly rollup (migrations/20261130170000_build_hourly_rollup.ts): cells are whole UTC hours. */
const HOUR_MS = 3600_000;
/** Ratio between the bounds of a duration bin: bin i holds durations in (γ^(i−1), γ^i] seconds. */
export const DURATION_GAMMA = 1.02 / 0.98;
/** Relative error of a duration read back from its bin (2γ^i/(γ+1) is within this of every value in the bin). */
export const DURATION_RELATIVE_ERROR = 0.02;
/** The bin of durations ≤ 0 (read back as 0). */
const ZERO_BIN = -1000000;

/**
 * Whether a range can be read from the hourly rollup: whole-hour buckets on hour boundaries. Sub-hour buckets
 * (5m, 15m; at most 2000 of them, so ≤ 21 days) and bounds off the hour read `builds` directly.
 */
export function readsRollup(r: BucketedRange): boolean {
  return r.bucketSeconds % 3600 === 0 && r.from.getTime() % HOUR_MS === 0 && r.to.getTime() % HOUR_MS === 0;
}

/** Periods of the whole server's rollup (migrations/20261201100000_build_period_rollup.ts), coarsest first. */
const PERIOD_SECONDS = [86400, 21600];

/**
 * The period of the whole server's rollup that a series can read: the coarsest period that divides its buckets and
 * both its bounds, for a series of every project (no project or jobset filter); else none (the hourly cells).
 */
export function wholeServerPeriodOf(r: BucketedRange): number | undefined {
  if (r.project_id || r.jobset_id) return undefined;
  const on = (t: Date, seconds: number) => t.getTime() % (seconds * 1000) === 0;
  return PERIOD_SECONDS.find((s) => r.bucketSeconds % s === 0 && on(r.from, s) && on(r.to, s));
}

/** The two levels of one rollup: hourly cells (by project and jobset), and the whole server's periods, by `column`. */
interface RollupTables {
  hourly: string;
  periods: string;
  column: 'status' | 'bin';
}
const COUNT_CELLS: RollupTables = { hourly: 'build_hourly_counts', periods: 'build_period_counts', column: 'status' };
const DURATION_CELLS: RollupTables = { hourly: 'build_hourly_durations', periods: 'build_period_durations', column: 'bin' };

/** A range of a period level is folded when it holds more rows of deltas than this beyond one row per cell. */
export const FOLD_PERIODS_ABOVE_EXTRA_ROWS = 2000;

/**
 * The cells of one level of a rollup in a range, each with its bucket (`bucket`): the whole server's periods when they
 * fit (wholeServerPeriodOf), else the hourly cells (filtered by project or jobset). `period` is the level read.
 */
function rollupCells(db: Db, r: BucketedRange, tables: RollupTables): { cells: Knex.QueryBuilder; period: number | undefined } {
  const bucketOf = (column: string) => db.raw(`date_bin(make_interval(secs => ?), ${column}, ?::timestamptz) AS bucket`, [r.bucketSeconds, r.from.toISOString()]);
  const period = wholeServerPeriodOf(r);
  const cells =
    period === undefined
      ? scoped(db(tables.hourly).select(bucketOf('hour')).where('hour', '>=', r.from).where('hour', '<', r.to), r)
      : db(tables.periods).select(bucketOf('period_start')).where('period_seconds', period).where('period_start', '>=', r.from).where('period_start', '<', r.to);
  return { cells, period };
}

/**
 * Folds a period level's range after a read when it holds more than FOLD_PERIODS_ABOVE_EXTRA_ROWS rows beyond one per
 * cell: `cellRows` rows were summed into `sums` sums by bucket and key, each of which covers at most bucket/period cells,
 * so the rows beyond that many are rows of deltas.
 */
async function foldIfPiledUp(db: Db, r: BucketedRange, tables: RollupTables, period: number | undefined, cellRows: number, sums: number): Promise<void> {
  if (period === undefined) return;
  if (cellRows - sums * (r.bucketSeconds / period) > FOLD_PERIODS_ABOVE_EXTRA_ROWS) await foldPeriodRows(db, tables, period, r);
}

/**
 * The rollup's sums in each bucket by the level's column (a status or a bin), ordered by bucket and column, for a
 * range that readsRollup (rollupCells). A period cell is the sum of its rows of deltas (writers append them); the
 * range is folded after the read when they pile up (foldIfPiledUp).
 */
async function rollupSums<K extends string | number>(db: Db, r: BucketedRange, tables: RollupTables): Promise<Array<{ bucket: Date; key: K; n: number }>> {
  const { cells, period } = rollupCells(db, r, tables);
  // Sums of 0 are left out after counting their rows: a cell whose rows of deltas cancel out is folded too.
  const sums = (await cells
    .select(db.raw('count(*)::int AS cell_rows'), db.raw(`${tables.column} AS key`), db.raw('sum(builds)::float8 AS n'))
    .groupBy('bucket', tables.column)
    .orderBy([{ column: 'bucket' }, { column: tables.column }])) as Array<{ bucket: Date; key: K; n: number; cell_rows: number }>;
  await foldIfPiledUp(db, r, tables, period, sums.reduce((sum, row) => sum + row.cell_rows, 0), sums.length);
  return sums.filter((row) => row.n !== 0);
}

/**
 * Folds the rows of deltas of one period level in a range into one row per cell, in one statement: rows a concurrent
 * fold already took are skipped, and rows appended meanwhile stay for the next time.
 */
export async function foldPeriodRows(db: Db, tables: Pick<RollupTables, 'periods' | 'column'>, periodSeconds: number, range: Pick<BucketedRange, 'from' | 'to'>): Promise<void> {
  const key = `period_seconds, period_start, ${tables.column}`;
  await db.raw(
    `WITH taken AS (DELETE FROM ${tables.periods} WHERE period_seconds = ? AND period_start >= ? AND period_start < ? RETURNING ${key}, builds)
     INSERT INTO ${tables.periods} (${key}, builds) SELECT ${key}, sum(builds) FROM taken GROUP BY ${key} HAVING sum(builds) <> 0`,
    [periodSeconds, range.from, range.to],
  );
}

function emptyCountPoints(r: BucketedRange): Map<number, BuildCountPoint> {
  return new Map(
    bucketStarts(r).map((t) => [t.getTime(), { time: t.toISOString(), total: 0, by_status: Object.fromEntries(BUILD_STATUSES.map((s) => [s, 0])) as Record<BuildStatus, number> }]),
  );
}

/** Builds created in each bucket, counted by status (every bucket present, zeros included); exact either way (the
 * whole server's 6-hour or daily periods when they fit, else the hourly cells, else builds). */
export async function buildCountSeries(db: Db, r: BucketedRange): Promise<BuildCountPoint[]> {
  const rollup = readsRollup(r);
  const rows = rollup
    ? (await rollupSums<string>(db, r, COUNT_CELLS)).map(({ bucket, key, n }) => ({ bucket, status: key, count: n }))
    : ((await scoped(
        db('builds')
          .select(db.raw('date_bin(make_interval(secs => ?), created_at, ?::timestamptz) AS bucket', [r.bucketSeconds, r.from.toISOString()]), 'status')
          .count('* as count')
          .where('created_at', '>=', r.from)
          .where('created_at', '<', r.to),
        r,
      ).groupBy('bucket', 'status')) as Array<{ bucket: Date; status: string; count: string }>);
  const points = emptyCountPoints(r);
  for (const row of rows) {
    const point = points.get(new Date(row.bucket).getTime());
    if (!point) continue;
    const n = Number(row.count);
    point.total += n;
    if (row.status in point.by_status) point.by_status[row.status as BuildStatus] += n;
  }
  return [...points.values()];
}

export interface DurationPoint {
  time: string;
  /** Builds that finished in the bucket with a known start. */
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/** The duration a bin stands for: within DURATION_RELATIVE_ERROR of every duration in it. */
export function durationOfBin(bin: number): number {
  return bin === ZERO_BIN ? 0 : (2 * DURATION_GAMMA ** bin) / (DURATION_GAMMA + 1);
}

/**
 * percentile_cont over a histogram (bins ascending, each with its count): the interpolation between the two
 * order statistics around q·(n−1), each read as its bin's value. Every order statistic is within ε (relative) of
 * the true one and all are ≥ 0, so their convex combination is within ε of percentile_cont over the exact values.
 */
export function histogramPercentiles(bins: Array<{ bin: number; n: number }>, qs: number[]): Array<number | null> {
  const total = bins.reduce((s, b) => s + b.n, 0);
  if (total === 0) return qs.map(() => null);
  /** The value of the order statistic of 0-based rank k. */
  const at = (k: number): number => {
    let seen = 0;
    for (const b of bins) {
      seen += b.n;
      if (k < seen) return durationOfBin(b.bin);
    }
    return durationOfBin(bins[bins.length - 1].bin);
  };
  return qs.map((q) => {
    const pos = q * (total - 1);
    const k = Math.floor(pos);
    const f = pos - k;
    const lo = at(k);
    return f === 0 ? lo : lo + f * (at(k + 1) - lo);
  });
}

/** The percentiles of the duration series, in the order of DurationPoint's fields. */
const DURATION_QUANTILES = [0.5, 0.9, 0.99];

/** One bucket of the duration histogram, summarised in SQL (rollupDurationRanks). */
interface BucketRanks {
  bucket: Date;
  /** Builds in the bucket (the sum of its bins). */
  count: number;
  /** For each quantile q: the bins of the order statistics of ranks ⌊q·(count−1)⌋ and the one after it. */
  ranks: Array<[number, number]>;
}

/**
 * Per bucket of the duration histogram, what its percentiles need, from one statement: the bins are summed by bucket
 * and bin, their running count in bin order gives each bin's ranks, and for each quantile the bins of the two order
 * statistics around q·(n−1) are picked there. A read returns one row per bucket (30 for 30 days by day), where it
 * returned one per bucket and bin (4,438 in the bench's 30 days).
 */
async function rollupDurationRanks(db: Db, r: BucketedRange): Promise<BucketRanks[]> {
  const { cells, period } = rollupCells(db, r, DURATION_CELLS);
  const pick = DURATION_QUANTILES.map(
    () => `ARRAY[min(bin) FILTER (WHERE upto > floor(?::float8 * (total - 1))),
                 coalesce(min(bin) FILTER (WHERE upto > floor(?::float8 * (total - 1)) + 1), max(bin))]`,
  );
  // The totals count the sums of 0 too (a cell whose rows of deltas cancel out), and come on a row of their own when
  // no bucket holds a build.
  const result = await db.raw(
    `WITH cells AS ?,
          sums AS (SELECT bucket, bin, sum(builds)::bigint AS n, count(*)::int AS cell_rows FROM cells GROUP BY bucket, bin),
          ranked AS (SELECT bucket, bin, sum(n) OVER (PARTITION BY bucket ORDER BY bin)::bigint AS upto, sum(n) OVER (PARTITION BY bucket)::bigint AS total
                     FROM sums WHERE n <> 0),
          buckets AS (SELECT bucket, total::float8 AS count, ARRAY[${pick.join(', ')}] AS ranks FROM ranked GROUP BY bucket, total),
          totals AS (SELECT coalesce(sum(cell_rows), 0)::int AS cell_rows, count(*)::int AS sums FROM sums)
     SELECT buckets.*, totals.cell_rows, totals.sums FROM totals LEFT JOIN buckets ON true ORDER BY buckets.bucket`,
    [cells.select('bin', 'builds'), ...DURATION_QUANTILES.flatMap((q) => [q, q])],
  );
  // Each row also carries the range's rows of cells and their sums by bucket and bin (see foldIfPiledUp).
  const rows = result.rows as Array<(BucketRanks | Record<keyof BucketRanks, null>) & { cell_rows: number; sums: number }>;
  await foldIfPiledUp(db, r, DURATION_CELLS, period, rows[0].cell_rows, rows[0].sums);
  return rows.filter((row): row is BucketRanks & { cell_rows: number; sums: number } => row.bucket !== null);
}

/**
 * percentile_cont at q of `count` values, given the values of the order statistics of ranks ⌊q·(count−1)⌋ and the one
 * after it (the same arithmetic as histogramPercentiles).
 */
function interpolatePercentile(q: number, count: number, low: number, high: number): number {
  const pos = q * (count - 1);
  const f = pos - Math.floor(pos);
  return f === 0 ? low : low + f * (high - low);
}

/**
 * Durations (seconds, start to end) of the builds that finished in each bucket: p50, p90 and p99. From the duration
 * histogram (the whole server's 6-hour or daily periods when they fit, else the hourly cells), percentile_cont within
 * 2% (DURATION_RELATIVE_ERROR), the order statistics picked in SQL (rollupDurationRanks; histogramPercentiles is the
 * same computation over bins read whole); with sub-hour buckets or bounds off the hour, percentile_cont over `builds`
 * exactly.
 */
export async function buildDurationSeries(db: Db, r: BucketedRange): Promise<DurationPoint[]> {
  const points = new Map(bucketStarts(r).map((t) => [t.getTime(), { time: t.toISOString(), count: 0, p50: null, p90: null, p99: null } as DurationPoint]));
  if (readsRollup(r)) {
    for (const row of await rollupDurationRanks(db, r)) {
      const point = points.get(new Date(row.bucket).getTime());
      if (!point) continue;
      point.count = row.count;
      [point.p50, point.p90, point.p99] = DURATION_QUANTILES.map((q, i) => interpolatePercentile(q, row.count, durationOfBin(row.ranks[i][0]), durationOfBin(row.ranks[i][1])));
    }
    return [...points.values()];
  }
  const rows = (await scoped(
    db('builds')
      .select(
        db.raw('date_bin(make_interval(secs => ?), completed_at, ?::timestamptz) AS bucket', [r.bucketSeconds, r.from.toISOString()]),
        db.raw('count(*)::int AS count'),
        db.raw('percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at)) AS percentiles'),
      )
      .whereNotNull('completed_at')
      .whereNotNull('started_at')
      .where('completed_at', '>=', r.from)
      .where('completed_at', '<', r.to),
    r,
  ).groupBy('bucket')) as Array<{ bucket: Date; count: number; percentiles: number[] }>;
  for (const row of rows) {
    const point = points.get(new Date(row.bucket).getTime());
    if (!point) continue;
    point.count = row.count;
    [point.p50, point.p90, point.p99] = row.percentiles.map(Number);
  }
  return [...points.values()];
}

export interface SystemMetrics {
  system: string;
  builds: number;
  /** Pending builds (the queue). */
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  /** Enabled remote builders and connected agents that build for this system. */
  builders: number;
  /** Their slots (max_jobs) in all. */
  slots: number;
  /** Slots busy: derivations of this system being built on a remote builder or an agent now. */
  slots_in_use: number;
}

export interface BuilderSlots {
  builder: string;
  kind: 'remote' | 'agent';
  systems: string[];
  slots: number;
  in_use: number;
}

/** Every enabled remote builder and connected agent, with its slots and the slots in use now. */
export async function builderSlots(db: Db): Promise<BuilderSlots[]> {
  const [remote, agents] = await Promise.all([
    db.raw(`
      SELECT rb.name AS builder, rb.systems, rb.max_jobs AS slots,
             (SELECT count(DISTINCT s.drv_path) FROM build_steps s WHERE s.status = 'running' AND s.builder_id = rb.id)::int AS in_use
      FROM remote_builders rb
      WHERE rb.enabled AND (rb.disabled_until IS NULL OR rb.disabled_until <= now())
      ORDER BY rb.name`),
    db.raw(
      `SELECT name AS builder, systems, max_jobs AS slots, current_jobs AS in_use FROM builder_sessions
       WHERE connected AND last_seen >= now() - make_interval(secs => ?) ORDER BY name, machine_id`,
      [CONNECTED_WITHIN_SECONDS],
    ),
  ]);
  return [
    ...(remote.rows as Omit<BuilderSlots, 'kind'>[]).map((b) => ({ ...b, kind: 'remote' as const })),
    ...(agents.rows as Omit<BuilderSlots, 'kind'>[]).map((b) => ({ ...b, kind: 'agent' as const })),
  ];
}

/** Busy slots of remote builders by the system of what they build (running steps, one per derivation). */
async function remoteSlotsInUseBySystem(db: Db): Promise<Map<string, number>> {
  const r = await db.raw(`
    SELECT b.system, count(DISTINCT s.drv_path)::int AS in_use
    FROM build_steps s JOIN builds b ON b.id = s.build_id
    WHERE s.status = 'running' AND s.builder_id IS NOT NULL
    GROUP BY b.system`);
  return new Map((r.rows as Array<{ system: string; in_use: number }>).map((row) => [row.system, row.in_use]));
}

/** Builds, queue and builders' slots by system. */
export async function systemMetrics(db: Db): Promise<SystemMetrics[]> {
  const [counts, slots, remoteInUse] = await Promise.all([buildCountsBySystemAndStatus(db), builderSlots(db), remoteSlotsInUseBySystem(db)]);
  const bySystem = new Map<string, SystemMetrics>();
  const entry = (system: string) => {
    let m = bySystem.get(system);
    if (!m) {
      m = { system, builds: 0, queued: 0, running: 0, succeeded: 0, failed: 0, builders: 0, slots: 0, slots_in_use: 0 };
      bySystem.set(system, m);
    }
    return m;
  };
  for (const c of counts) {
    const m = entry(c.system);
    m.builds += c.builds;
    if (c.status === 'pending') m.queued += c.builds;
    if (c.status === 'running') m.running += c.builds;
    if (c.status === 'succeeded') m.succeeded += c.builds;
    if ((FAILED_BUILD_STATUSES as readonly string[]).includes(c.status)) m.failed += c.builds;
  }
  for (const b of slots) {
    for (const system of b.systems) {
      const m = entry(system);
      m.builders += 1;
      m.slots += b.slots;
      // An agent reports its busy slots, not their systems: they count for its first system only.
      if (b.kind === 'agent' && system === b.systems[0]) m.slots_in_use += b.in_use;
    }
  }
  for (const [system, inUse] of remoteInUse) entry(system).slots_in_use += inUse;
  return [...bySystem.values()].sort((a, b) => a.system.localeCompare(b.system));
}

export interface EvaluationDurations {
  /** Evaluations that ended in the window and had a start. */
  count: number;
  sum_seconds: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/** Durations of the evaluations that ended in the last `windowSeconds` (an index range on completed_at). */
export async function recentEvaluationDurations(db: Db, windowSeconds: number): Promise<EvaluationDurations> {
  const r = await db.raw(
    `SELECT count(*)::int AS count, coalesce(sum(extract(epoch FROM completed_at - started_at)), 0)::float8 AS sum_seconds,
            percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at)) AS percentiles
     FROM evaluations
     WHERE completed_at IS NOT NULL AND completed_at >= now() - make_interval(secs => ?) AND started_at IS NOT NULL`,
    [windowSeconds],
  );
  const row = r.rows[0] as { count: number; sum_seconds: number; percentiles: number[] | null };
  const [p50, p90, p99] = row.percentiles ? row.percentiles.map(Number) : [null, null, null];
  return { count: row.count, sum_seconds: row.sum_seconds, p50, p90, p99 };
}
