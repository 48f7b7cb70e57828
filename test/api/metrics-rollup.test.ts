import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { seededRandom } from '../support/seeded-random';
import { FOLD_PERIODS_ABOVE_EXTRA_ROWS, foldPeriodRows, histogramPercentiles, wholeServerPeriodOf } from '../../api/queries/metrics';
import { BUCKET_SECONDS, cachedSeries } from '../../api/routes/metrics';
import { writeEpochOf } from '../../api/single-flight';
import { assignBuilderToBuildsOfDerivation, markBuildRunning, recordBuildResult } from '../../activities/records/builds';

const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
const HOUR = `date_bin('1 hour'::interval, %s, '2000-01-01T00:00:00Z'::timestamptz)`;
const BIN = `CASE WHEN completed_at <= started_at THEN -1000000 ELSE ceil(ln(extract(epoch FROM completed_at - started_at)::float8) / ln(1.02::float8 / 0.98::float8))::int END`;


describe('metrics: the hourly rollup and the whole server\'s 6-hour and daily periods', () => {
  let stack: TestStack;
  const evaluations: Row[] = [];
  const projects: Row[] = [];

  before(async () => {
    stack = await startTestStack({ worker: false });
    for (let p = 0; p < 2; p++) {
      const project = await seedProject(stack.db);
      projects.push(project);
      for (let j = 0; j < 2; j++) evaluations.push(await seedEvaluation(stack.db, (await seedJobset(stack.db, project.id)).id));
    }
  });
  after(async () => stack?.stop());

  /** The rollup's cells beside the same cells aggregated from builds now; and whether any cell holds 0. */
  async function compare(step: string): Promise<void> {
    const counts = async (sql: string) => (await stack.db.raw(sql)).rows.map((r: Row) => JSON.stringify(r));
    const key = 'hour, project_id, jobset_id, system, status';
    assert.deepEqual(
      await counts(`SELECT ${key}, builds::int FROM build_hourly_counts ORDER BY ${key}`),
      await counts(`SELECT ${HOUR.replace('%s', 'created_at')} AS hour, project_id, jobset_id, system, status, count(*)::int AS builds FROM builds GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`),
      `counts after ${step}`,
    );
    assert.deepEqual(
      await counts(`SELECT hour, project_id, jobset_id, bin, builds::int FROM build_hourly_durations ORDER BY hour, project_id, jobset_id, bin`),
      await counts(`SELECT ${HOUR.replace('%s', 'completed_at')} AS hour, project_id, jobset_id, ${BIN} AS bin, count(*)::int AS builds FROM builds
        WHERE started_at IS NOT NULL AND completed_at IS NOT NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`),
      `durations after ${step}`,
    );
    assert.deepEqual(
      await counts(`SELECT period_seconds, period_start, bin, sum(builds)::int AS builds FROM build_period_durations GROUP BY 1, 2, 3 HAVING sum(builds) <> 0 ORDER BY 1, 2, 3`),
      await counts(`SELECT s AS period_seconds, date_bin(make_interval(secs => s), completed_at, '2000-01-01T00:00:00Z'::timestamptz) AS period_start, ${BIN} AS bin,
        count(*)::int AS builds FROM builds CROSS JOIN (VALUES (21600), (86400)) AS periods(s)
        WHERE started_at IS NOT NULL AND completed_at IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`),
      `6-hour and daily durations of the whole server after ${step}`,
    );
    assert.deepEqual(
      await counts(`SELECT period_seconds, period_start, status, sum(builds)::int AS builds FROM build_period_counts GROUP BY 1, 2, 3 HAVING sum(builds) <> 0 ORDER BY 1, 2, 3`),
      await counts(`SELECT s AS period_seconds, date_bin(make_interval(secs => s), created_at, '2000-01-01T00:00:00Z'::timestamptz) AS period_start, status,
        count(*)::int AS builds FROM builds CROSS JOIN (VALUES (21600), (86400)) AS periods(s) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`),
      `6-hour and daily counts of the whole server after ${step}`,
    );
    const empty = await stack.db.raw(`SELECT (SELECT count(*) FROM build_hourly_counts WHERE builds <= 0) + (SELECT count(*) FROM build_hourly_durations WHERE builds <= 0)
      + (SELECT count(*) FROM (SELECT FROM build_period_durations GROUP BY period_seconds, period_start, bin HAVING sum(builds) < 0) AS d)
      + (SELECT count(*) FROM (SELECT FROM build_period_counts GROUP BY period_seconds, period_start, status HAVING sum(builds) < 0) AS c) AS n`);
    assert.equal(Number(empty.rows[0].n), 0, `no empty or negative cell after ${step}`);
  }

  it('agrees with an aggregate over builds after batch inserts, status changes, finishes, restarts, moves and deletes (cascades included)', async () => {
    const rand = seededRandom(7);
    const base = Date.parse('2025-09-01T00:00:00Z');
    const statuses = ['pending', 'running', 'succeeded', 'failed', 'cancelled'];
    const rows = Array.from({ length: 400 }, (_, i) => {
      const evaluation = evaluations[i % evaluations.length];
      const status = statuses[Math.floor(rand() * statuses.length)];
      const created = base + Math.floor(rand() * 48) * 3600_000 + Math.floor(rand() * 3600_000);
      const started = status === 'pending' ? null : created + 1000;
      const completed = status === 'pending' || status === 'running' ? null : (started as number) + (i % 37 === 0 ? 0 : Math.floor(rand() * 7200_000));
      return {
        evaluation_id: evaluation.id,
        jobset_id: evaluation.jobset_id,
        project_id: projects[Math.floor((i % evaluations.length) / 2)].id,
        job_name: `job-${i}`,
        drv_path: `/nix/store/${crypto.randomBytes(16).toString('hex')}-job-${i}.drv`,
        system: i % 3 === 0 ? 'aarch64-linux' : 'x86_64-linux',
        status,
        created_at: new Date(created),
        updated_at: new Date(created),
        started_at: started === null ? null : new Date(started),
        completed_at: completed === null ? null : new Date(completed),
      };
    });
    await stack.db('builds').insert(rows.slice(0, 250)); // one statement: one trigger run for 250 rows
    for (let i = 250; i < 400; i += 50) await stack.db('builds').insert(rows.slice(i, i + 50));
    await compare('inserts');
    // As insertEvaluatedBuilds writes a batch: jobs seen again keep their row (INSERT … ON CONFLICT DO UPDATE).
    await stack.db('builds')
      .insert([...rows.slice(0, 20).map((r) => ({ ...r, status: 'pending', drv_path: `${r.drv_path}.again` })), { ...rows[0], job_name: 'job-new', status: 'pending' }])
      .onConflict(['evaluation_id', 'job_name'])
      .merge(['drv_path', 'status']);
    await compare('an insert of which most rows conflict and update');

    await stack.db('builds').where({ status: 'pending' }).update({ status: 'running', started_at: stack.db.fn.now() });
    await compare('pending → running');
    await stack.db('builds').where({ status: 'running' }).update({ status: 'succeeded', completed_at: stack.db.raw(`started_at + interval '42 seconds'`) });
    await compare('running → succeeded (finished)');
    const failed = await stack.db('builds').where({ status: 'failed' }).select('id');
    await stack.db('builds').whereIn('id', failed.map((b) => b.id)).update({ status: 'pending', started_at: null, completed_at: null, error_message: null });
    await compare('restart (finish time cleared)');
    await stack.db('builds').whereIn('id', failed.slice(0, 10).map((b) => b.id)).update({ status: 'aborted', started_at: new Date(base), completed_at: new Date(base + 90_000) });
    await compare('aborted with a duration');
    await stack.db('builds').where({ system: 'aarch64-linux' }).update({ created_at: stack.db.raw(`created_at + interval '1 day'`) });
    await compare('created_at moved to another hour');
    await stack.db('builds').where({ status: 'cancelled' }).update({ keep: true });
    await compare('an update that changes no cell');

    // The worker's own writers, whose updates of builds run inside WITH queries (issue 6: one statement each).
    const pending = await stack.db('builds').where({ status: 'pending' }).orderBy('id').limit(6).select('id', 'drv_path');
    assert.equal(pending.length, 6, 'restarted builds are pending');
    assert.equal(await markBuildRunning(stack.db, pending[0].id), 'started');
    assert.equal(await markBuildRunning(stack.db, pending[0].id), 'already_running');
    await compare('markBuildRunning');
    assert.deepEqual(await assignBuilderToBuildsOfDerivation(stack.db, pending[1].drv_path, { builderId: null, logPath: '/tmp/log', steps: { phase: 'building', startedAt: new Date() } }), [pending[1].id]);
    await compare('a batch starting a derivation (its step rows and builds)');
    for (const [i, status] of [[0, 'succeeded'], [1, 'failed'], [2, 'succeeded']] as const) {
      const result = { buildId: pending[i].id, status, errorMessage: status === 'failed' ? 'it failed' : null, outputs: { out: `/nix/store/${'a'.repeat(32)}-out${i}` }, products: [], metrics: [{ name: 'm', value: 1, unit: null }] };
      const recorded = await recordBuildResult(stack.db, { ...result, closureSize: null, logPath: null, builderId: null, steps: { status: 'skipped' }, queueOutputs: false }, { onlyUnfinished: i === 2 });
      assert.equal(recorded?.status, status);
    }
    // A finished build is not finished again when only an unfinished one may be.
    assert.equal(await recordBuildResult(stack.db, { buildId: pending[0].id, status: 'aborted', errorMessage: null, outputs: {}, products: [], metrics: [], closureSize: null, logPath: null, builderId: null, steps: { status: 'skipped' }, queueOutputs: false }, { onlyUnfinished: true }), undefined);
    assert.equal((await stack.db('builds').where({ id: pending[0].id }).first('status')).status, 'succeeded');
    await compare('recordBuildResult (one statement)');

    await stack.db('builds').whereIn('id', (await stack.db('builds').orderBy('id').limit(25).select('id')).map((b) => b.id)).delete();
    await compare('deleting builds');
    await stack.db('evaluations').where({ id: evaluations[0].id }).delete();
    await compare('deleting an evaluation (its builds cascade)');
    await stack.db('projects').where({ id: projects[1].id }).delete();
    await compare('deleting a project (its jobsets, evaluations and builds cascade)');
    // Writers append rows of deltas to the period levels; folding them leaves one row per cell, with the same sums.
    const all = { from: new Date('2000-01-01T00:00:00Z'), to: new Date('2100-01-01T00:00:00Z') };
    for (const [periods, column] of [['build_period_durations', 'bin'], ['build_period_counts', 'status']] as const) {
      for (const period of [21600, 86400]) await foldPeriodRows(stack.db, { periods, column }, period, all);
      const rows = await stack.db.raw(`SELECT count(*)::int AS rows, count(DISTINCT (period_seconds, period_start, ${column}))::int AS cells FROM ${periods}`);
      assert.equal(rows.rows[0].rows, rows.rows[0].cells, `${periods}: one row per cell after folding`);
    }
    await compare('folding the period levels');
    const left = await stack.db('build_hourly_counts').whereIn('project_id', [projects[1].id]).count<{ count: string }[]>('* as count');
    assert.equal(Number(left[0].count), 0, 'no cell of a deleted project is left');
    assert.ok(Number((await stack.db('builds').count<{ count: string }[]>('* as count'))[0].count) > 50, 'builds remain to compare');
  });

  it('answers count series equal to an aggregate over builds, and duration percentiles within 2% of percentile_cont', async () => {
    const evaluation = await seedEvaluation(stack.db, (await seedJobset(stack.db, projects[0].id)).id);
    const rand = seededRandom(11);
    const hour = Date.parse('2025-10-01T05:00:00Z');
    // Durations log-uniform from 0.5 s to 10 h, all finished in one hour.
    const rows = Array.from({ length: 500 }, (_, i) => {
      const completed = hour + Math.floor(rand() * 3600_000);
      const seconds = 0.5 * Math.exp(rand() * Math.log(72_000));
      return {
        evaluation_id: evaluation.id, jobset_id: evaluation.jobset_id, project_id: projects[0].id, job_name: `timed-${i}`,
        drv_path: `/nix/store/${crypto.randomBytes(16).toString('hex')}-timed-${i}.drv`, system: 'x86_64-linux', status: i % 5 === 0 ? 'failed' : 'succeeded',
        created_at: new Date(completed - 36_000_000), started_at: new Date(completed - seconds * 1000), completed_at: new Date(completed),
      };
    });
    await stack.db('builds').insert(rows);
    const exact = (
      await stack.db.raw(
        `SELECT count(*)::int AS count, percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at)) AS p
         FROM builds WHERE jobset_id = ? AND completed_at IS NOT NULL AND started_at IS NOT NULL`,
        [evaluation.jobset_id],
      )
    ).rows[0];
    const r = await stack.request('GET', `/api/v1/metrics/timeseries/duration?${q({ from: '2025-10-01T00:00:00Z', to: '2025-10-02T00:00:00Z', bucket: '1h', jobset_id: evaluation.jobset_id })}`);
    assert.equal(r.status, 200, r.text);
    const point = r.body.points.find((p: Row) => p.time === '2025-10-01T05:00:00.000Z');
    assert.equal(point.count, 500);
    assert.equal(r.body.points.filter((p: Row) => p.count > 0).length, 1);
    ['p50', 'p90', 'p99'].forEach((name, i) => {
      const want = Number(exact.p[i]);
      assert.ok(Math.abs(point[name] - want) <= 0.02 * want, `${name}: ${point[name]} vs percentile_cont ${want}`);
    });

    // Counts: the 6-hourly series of the whole server (read from its 6-hour periods) equals the same buckets aggregated from builds.
    const range = { from: '2025-09-01T00:00:00Z', to: '2025-09-05T00:00:00Z', bucket: '6h' };
    const series = await stack.request('GET', `/api/v1/metrics/timeseries/builds?${q(range)}`);
    assert.equal(series.status, 200, series.text);
    const direct = await stack.db.raw(
      `SELECT date_bin('6 hours'::interval, created_at, ?::timestamptz) AS bucket, status, count(*)::int AS n FROM builds
       WHERE created_at >= ? AND created_at < ? GROUP BY 1, 2`,
      [range.from, range.from, range.to],
    );
    const want = new Map<string, number>();
    for (const row of direct.rows as Array<{ bucket: Date; status: string; n: number }>) want.set(`${new Date(row.bucket).toISOString()} ${row.status}`, row.n);
    const got = new Map<string, number>();
    for (const p of series.body.points as Array<{ time: string; by_status: Record<string, number> }>) {
      for (const [status, n] of Object.entries(p.by_status)) if (n > 0) got.set(`${p.time} ${status}`, n);
    }
    assert.ok(want.size > 5, 'the range holds builds');
    assert.deepEqual(got, want);
  });

  it('answers unfiltered series of whole days or 6 hours from the periods: counts exact, percentiles within 2% of percentile_cont', async () => {
    for (const range of [
      { from: '2025-08-30T00:00:00Z', to: '2025-10-03T00:00:00Z', bucket: '1d' },
      { from: '2025-09-01T00:00:00Z', to: '2025-09-04T00:00:00Z', bucket: '6h' },
    ]) {
      const bucketSeconds = BUCKET_SECONDS[range.bucket as keyof typeof BUCKET_SECONDS];
      assert.equal(wholeServerPeriodOf({ from: new Date(range.from), to: new Date(range.to), bucketSeconds }), bucketSeconds, `${range.bucket} reads its own period`);
      const r = await stack.request('GET', `/api/v1/metrics/timeseries/duration?${q(range)}`);
      assert.equal(r.status, 200, r.text);
      const exact = await stack.db.raw(
        `SELECT date_bin(make_interval(secs => ?), completed_at, ?::timestamptz) AS bucket, count(*)::int AS count,
                percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP (ORDER BY greatest(0, extract(epoch FROM completed_at - started_at))) AS p
         FROM builds WHERE completed_at >= ? AND completed_at < ? AND started_at IS NOT NULL GROUP BY 1`,
        [bucketSeconds, range.from, range.from, range.to],
      );
      const want = new Map((exact.rows as Array<{ bucket: Date; count: number; p: number[] }>).map((row) => [new Date(row.bucket).toISOString(), row]));
      assert.ok(want.size >= 2, `${range.bucket}: the range holds finished builds in several buckets`);
      for (const point of r.body.points as Array<Row>) {
        const row = want.get(point.time);
        assert.equal(point.count, row?.count ?? 0, `${range.bucket} ${point.time}: count`);
        if (!row) continue;
        ['p50', 'p90', 'p99'].forEach((name, i) => {
          const p = Number(row.p[i]);
          assert.ok(Math.abs(point[name] - p) <= 0.02 * p, `${range.bucket} ${point.time} ${name}: ${point[name]} vs percentile_cont ${p}`);
        });
      }
      const counts = await stack.request('GET', `/api/v1/metrics/timeseries/builds?${q(range)}`);
      const created = await stack.db.raw(
        `SELECT date_bin(make_interval(secs => ?), created_at, ?::timestamptz) AS bucket, count(*)::int AS n FROM builds WHERE created_at >= ? AND created_at < ? GROUP BY 1`,
        [bucketSeconds, range.from, range.from, range.to],
      );
      const createdBy = new Map((created.rows as Array<{ bucket: Date; n: number }>).map((row) => [new Date(row.bucket).toISOString(), row.n]));
      assert.ok(createdBy.size >= 2, `${range.bucket}: the range holds created builds in several buckets`);
      for (const point of counts.body.points as Array<Row>) assert.equal(point.total, createdBy.get(point.time) ?? 0, `${range.bucket} ${point.time}: builds created`);
    }
  });

  it('concurrent reads of one rollup series share one statement; a read after a completed write of the app reads again', async () => {
    const statements: string[] = [];
    const listener = (query: { sql: string }) => {
      if (/build_(hourly|period)_counts/.test(query.sql)) statements.push(query.sql);
    };
    const series = { bucket: '6h' as const, from: '2025-09-01T00:00:00Z', to: '2025-09-04T00:00:00Z' };
    stack.db.on('query', listener);
    try {
      const [a, b] = await Promise.all([cachedSeries(stack.db, 'builds', series), cachedSeries(stack.db, 'builds', series)]);
      assert.equal(a, b);
      assert.equal(statements.length, 1, 'the second read joined the first');
      const inFlight = cachedSeries(stack.db, 'builds', series);
      // What the app does when a write ends, before its response is sent: a read arriving later joins no older flight.
      writeEpochOf(stack.db).bump();
      const afterWrite = cachedSeries(stack.db, 'builds', series);
      await Promise.all([inFlight, afterWrite]);
      assert.equal(statements.length, 3, 'the read after the write ran its own statement');
    } finally {
      stack.db.removeListener('query', listener);
    }
    const epoch = writeEpochOf(stack.db).current;
    const write = await stack.request('POST', '/api/v1/news', { key: stack.adminKey, body: { title: 'epoch', content: 'a write through the app' } });
    assert.equal(write.status, 201, write.text);
    assert.ok(writeEpochOf(stack.db).current > epoch, 'the app bumps the epoch of its database handle');
  });

  it('two transactions finishing builds of different jobsets in the same period and bin do not wait for each other', async () => {
    const jobsets = [await seedJobset(stack.db, projects[0].id), await seedJobset(stack.db, projects[0].id)];
    const ids: string[] = [];
    for (const [i, jobset] of jobsets.entries()) {
      const evaluation = await seedEvaluation(stack.db, jobset.id);
      const [row] = await stack.db('builds')
        .insert({ evaluation_id: evaluation.id, jobset_id: jobset.id, project_id: projects[0].id, job_name: `shared-cell-${i}`, drv_path: `/nix/store/${crypto.randomBytes(16).toString('hex')}-shared.drv`, system: 'x86_64-linux', status: 'running', created_at: new Date('2025-11-01T10:00:00Z'), started_at: new Date('2025-11-01T10:00:00Z') })
        .returning('id');
      ids.push(row.id);
    }
    const finish = (trx: typeof stack.db, id: string) => trx('builds').where({ id }).update({ status: 'succeeded', completed_at: new Date('2025-11-01T10:00:42Z') });
    const first = await stack.db.transaction();
    try {
      await finish(first, ids[0]);
      // The first still holds whatever its statement locked: the second must not need it.
      await stack.db.transaction(async (second) => {
        await second.raw(`SET LOCAL lock_timeout = '5s'`);
        await finish(second, ids[1]);
      });
      await first.commit();
    } catch (err) {
      await first.rollback().catch(() => undefined);
      throw err;
    }
    await compare('two concurrent finishes in one period and bin');
  });

  it('picks each bucket\'s percentiles in SQL exactly as histogramPercentiles does over the same bins read whole, for the periods, the hourly cells and a jobset', async () => {
    const evaluation = await seedEvaluation(stack.db, (await seedJobset(stack.db, projects[0].id)).id);
    const rand = seededRandom(23);
    const start = Date.parse('2025-12-01T00:00:00Z');
    // Three days: many builds with ties (whole seconds) and zero durations over two, three builds 7 hours apart on the third.
    const rows = Array.from({ length: 400 }, (_, i) => {
      const completed = i < 3 ? start + 2 * 86400_000 + i * 7 * 3600_000 : start + Math.floor(rand() * 2 * 86400_000);
      const seconds = i % 37 === 0 ? 0 : Math.round(1 + rand() * rand() * 3000);
      return {
        evaluation_id: evaluation.id, jobset_id: evaluation.jobset_id, project_id: projects[0].id, job_name: `ranked-${i}`,
        drv_path: `/nix/store/${crypto.randomBytes(16).toString('hex')}-ranked-${i}.drv`, system: 'x86_64-linux', status: 'succeeded',
        created_at: new Date(completed - seconds * 1000 - 60_000), started_at: new Date(completed - seconds * 1000), completed_at: new Date(completed),
      };
    });
    await stack.db('builds').insert(rows);
    const from = '2025-12-01T00:00:00Z';
    const to = '2025-12-04T00:00:00Z';
    for (const [bucket, scope] of [['1d', {}], ['6h', {}], ['1h', {}], ['1h', { jobset_id: evaluation.jobset_id }], ['1d', { project_id: projects[0].id }]] as const) {
      const bucketSeconds = BUCKET_SECONDS[bucket];
      const r = await stack.request('GET', `/api/v1/metrics/timeseries/duration?${q({ from, to, bucket, ...scope })}`);
      assert.equal(r.status, 200, r.text);
      // The reference: every bin of every bucket, summed from the hourly cells in this test, then histogramPercentiles.
      const bins = await stack.db.raw(
        `SELECT date_bin(make_interval(secs => ?), hour, ?::timestamptz) AS bucket, bin, sum(builds)::int AS n FROM build_hourly_durations
         WHERE hour >= ? AND hour < ? AND (?::uuid IS NULL OR jobset_id = ?::uuid) AND (?::uuid IS NULL OR project_id = ?::uuid)
         GROUP BY 1, 2 ORDER BY 1, 2`,
        [bucketSeconds, from, from, to, scope.jobset_id ?? null, scope.jobset_id ?? null, scope.project_id ?? null, scope.project_id ?? null],
      );
      const byBucket = new Map<string, Array<{ bin: number; n: number }>>();
      for (const row of bins.rows as Array<{ bucket: Date; bin: number; n: number }>) {
        const key = new Date(row.bucket).toISOString();
        byBucket.set(key, [...(byBucket.get(key) ?? []), { bin: row.bin, n: row.n }]);
      }
      assert.ok([...byBucket.values()].some((b) => b.reduce((s, x) => s + x.n, 0) <= 3), `${bucket}: some bucket holds 3 builds or fewer`);
      assert.equal(r.body.points.length, (Date.parse(to) - Date.parse(from)) / 1000 / bucketSeconds);
      for (const point of r.body.points as Array<Row>) {
        const histogram = byBucket.get(point.time) ?? [];
        const [p50, p90, p99] = histogramPercentiles(histogram, [0.5, 0.9, 0.99]);
        assert.deepEqual(
          { count: point.count, p50: point.p50, p90: point.p90, p99: point.p99 },
          { count: histogram.reduce((s, b) => s + b.n, 0), p50, p90, p99 },
          `${bucket} ${JSON.stringify(scope)} ${point.time}`,
        );
      }
    }
  });

  it('a duration read that finds the rows of deltas piled up in its range folds them, with the same answer', async () => {
    const range = { from: '2025-12-01T00:00:00Z', to: '2025-12-04T00:00:00Z', bucket: '1d' };
    const url = `/api/v1/metrics/timeseries/duration?${q(range)}`;
    const before = await stack.request('GET', url);
    assert.equal(before.status, 200, before.text);
    // Rows of deltas that sum to nothing, as writers of builds that come and go leave them.
    const pairs = FOLD_PERIODS_ABOVE_EXTRA_ROWS;
    await stack.db.raw(
      `INSERT INTO build_period_durations (period_seconds, period_start, bin, builds)
       SELECT 86400, '2025-12-02T00:00:00Z'::timestamptz, 100, sign FROM generate_series(1, ?) n CROSS JOIN (VALUES (1), (-1)) AS s(sign)`,
      [pairs],
    );
    const rowsIn = async () => Number((await stack.db.raw(`SELECT count(*) AS n FROM build_period_durations WHERE period_seconds = 86400 AND period_start >= ? AND period_start < ?`, [range.from, range.to])).rows[0].n);
    assert.ok((await rowsIn()) >= 2 * pairs);
    const after = await stack.request('GET', url);
    assert.deepEqual(after.body, before.body);
    const cells = Number((await stack.db.raw(`SELECT count(DISTINCT (period_start, bin)) AS n FROM build_period_durations WHERE period_seconds = 86400 AND period_start >= ? AND period_start < ?`, [range.from, range.to])).rows[0].n);
    assert.equal(await rowsIn(), cells, 'one row per cell after the read');
  });
});
