import type { Knex } from 'knex';

/**
 * A coarser level of the duration histogram for the whole server: `build_period_durations` holds, for every 6-hour
 * and every 1-day period (UTC, on the same origin as the hourly cells), the finished builds of every project by
 * duration bin, summed over the hourly cells of `build_hourly_durations` (migration 20261130170000) in the period.
 * Unfiltered duration series with buckets of whole periods on period boundaries read it (api/queries/metrics.ts):
 * 30 days of daily buckets sum ~30 × 150 cells instead of one cell per (hour, jobset, bin).
 *
 * It is kept from the hourly cells, not from `builds`: statement-level triggers with transition tables on
 * `build_hourly_durations` add each statement's net change per period cell (in key order, so writers lock shared
 * cells in one order) and delete the cells that reach 0. Every writer of builds changes the hourly cells through
 * their own triggers (TRUNCATE of builds deletes them), so this level follows every writer, and a period cell is
 * by construction the sum of its hourly cells. The migration back-fills it from the hourly cells.
 */
const PERIOD_SECONDS = [21600, 86400];
const ORIGIN = `'2000-01-01T00:00:00Z'::timestamptz`;
const key = 'period_seconds, period_start, bin';

/** The period cells that a set of hourly cells adds to (sign 1) or takes from (sign −1). */
const periodRows = (hourlyCells: string, sign: 1 | -1) =>
  PERIOD_SECONDS.map((s) => `SELECT ${s} AS period_seconds, date_bin(make_interval(secs => ${s}), hour, ${ORIGIN}) AS period_start, bin, ${sign} * builds AS n FROM ${hourlyCells}`).join(
    ' UNION ALL ',
  );

/** Adds a statement's net change per period cell, in key order, then deletes the cells it emptied. */
const applyChange = (rows: string) => `
  INSERT INTO build_period_durations AS t (${key}, builds)
  SELECT ${key}, sum(n) FROM (${rows}) AS change GROUP BY ${key} HAVING sum(n) <> 0 ORDER BY ${key}
  ON CONFLICT (${key}) DO UPDATE SET builds = t.builds + excluded.builds;
  DELETE FROM build_period_durations t USING (SELECT DISTINCT ${key} FROM (${rows}) AS touched) AS o
  WHERE t.builds = 0 AND t.period_seconds = o.period_seconds AND t.period_start = o.period_start AND t.bin = o.bin`;

const TRIGGERS = {
  insert: { transition: 'NEW TABLE AS new_cells', rows: periodRows('new_cells', 1) },
  update: { transition: 'OLD TABLE AS old_cells NEW TABLE AS new_cells', rows: `${periodRows('new_cells', 1)} UNION ALL ${periodRows('old_cells', -1)}` },
  delete: { transition: 'OLD TABLE AS old_cells', rows: periodRows('old_cells', -1) },
};

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE build_period_durations (
      period_seconds integer NOT NULL, period_start timestamptz NOT NULL, bin integer NOT NULL,
      builds bigint NOT NULL,
      PRIMARY KEY (period_seconds, period_start, bin))`);
  await knex.raw(`INSERT INTO build_period_durations (${key}, builds)
    SELECT ${key}, sum(n) FROM (${periodRows('build_hourly_durations', 1)}) AS cells GROUP BY ${key}`);
  for (const [op, t] of Object.entries(TRIGGERS)) {
    await knex.raw(`CREATE FUNCTION ringmaster_build_period_durations_${op}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN ${applyChange(t.rows)}; RETURN NULL; END $$`);
    await knex.raw(`CREATE TRIGGER build_period_durations_${op} AFTER ${op.toUpperCase()} ON build_hourly_durations
      REFERENCING ${t.transition} FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_build_period_durations_${op}()`);
  }
  await knex.raw(`CREATE FUNCTION ringmaster_build_period_durations_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN DELETE FROM build_period_durations; RETURN NULL; END $$`);
  await knex.raw(`CREATE TRIGGER build_period_durations_truncate AFTER TRUNCATE ON build_hourly_durations
    FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_build_period_durations_truncate()`);
}

export async function down(knex: Knex): Promise<void> {
  for (const op of [...Object.keys(TRIGGERS), 'truncate']) {
    await knex.raw(`DROP TRIGGER IF EXISTS build_period_durations_${op} ON build_hourly_durations`);
    await knex.raw(`DROP FUNCTION IF EXISTS ringmaster_build_period_durations_${op}()`);
  }
  await knex.schema.dropTableIfExists('build_period_durations');
}
