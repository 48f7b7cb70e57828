import type { Knex } from 'knex';

/**
 * Coarser levels of the hourly rollup (migration 20261130170000) for the whole server, for every 6-hour and every
 * 1-day period (UTC, on the same origin as the hourly cells):
 * - `build_period_durations`: finished builds of every project by period × duration bin (the hourly bins summed);
 * - `build_period_counts`: builds of every project by period (of creation) × status.
 * Unfiltered series with buckets of whole periods on period boundaries read them (api/queries/metrics.ts): 30 days
 * of daily durations sum ~30 × 150 cells instead of one cell per (hour, jobset, bin), daily counts 30 × 7.
 *
 * They are kept from the hourly cells, not from `builds`: statement-level triggers with transition tables on the
 * hourly tables append each statement's net change per period cell as a row of deltas. Every writer of builds
 * changes the hourly cells through their own triggers (TRUNCATE of builds deletes them), so these levels follow every
 * writer, and a period cell (the sum of its rows) is by construction the sum of its hourly cells. A period cell is
 * shared by every jobset: writers only append, so no writer waits for another's row lock (as with
 * build_count_deltas); readers sum the rows of a cell, and fold a range's rows into one per cell when they pile up
 * (api/queries/metrics.ts). The migration back-fills them from the hourly cells.
 */
const PERIOD_SECONDS = [21600, 86400];
const ORIGIN = `'2000-01-01T00:00:00Z'::timestamptz`;

/** A level of the whole server: `table` sums the hourly cells of `hourly` by period × `column`. */
interface PeriodLevel {
  table: string;
  hourly: string;
  column: string;
  type: string;
}
const LEVELS: PeriodLevel[] = [
  { table: 'build_period_durations', hourly: 'build_hourly_durations', column: 'bin', type: 'integer' },
  { table: 'build_period_counts', hourly: 'build_hourly_counts', column: 'status', type: 'text' },
];

/** The period cells that a set of hourly cells adds to (sign 1) or takes from (sign −1). */
const periodRows = (level: PeriodLevel, hourlyCells: string, sign: 1 | -1) =>
  PERIOD_SECONDS.map(
    (s) => `SELECT ${s} AS period_seconds, date_bin(make_interval(secs => ${s}), hour, ${ORIGIN}) AS period_start, ${level.column}, ${sign} * builds AS n FROM ${hourlyCells}`,
  ).join(' UNION ALL ');

/** Appends a statement's net change per period cell (only the cells it changed). */
const appendChange = (level: PeriodLevel, rows: string) => {
  const key = `period_seconds, period_start, ${level.column}`;
  return `INSERT INTO ${level.table} (${key}, builds) SELECT ${key}, sum(n) FROM (${rows}) AS change GROUP BY ${key} HAVING sum(n) <> 0`;
};

/** Each statement trigger on the hourly table: its transition tables, and the rows of its change. */
const triggers = (level: PeriodLevel) => ({
  insert: { transition: 'NEW TABLE AS new_cells', rows: periodRows(level, 'new_cells', 1) },
  update: { transition: 'OLD TABLE AS old_cells NEW TABLE AS new_cells', rows: `${periodRows(level, 'new_cells', 1)} UNION ALL ${periodRows(level, 'old_cells', -1)}` },
  delete: { transition: 'OLD TABLE AS old_cells', rows: periodRows(level, 'old_cells', -1) },
});

export async function up(knex: Knex): Promise<void> {
  for (const level of LEVELS) {
    const key = `period_seconds, period_start, ${level.column}`;
    await knex.raw(`
      CREATE TABLE ${level.table} (
        period_seconds integer NOT NULL, period_start timestamptz NOT NULL, ${level.column} ${level.type} NOT NULL,
        builds bigint NOT NULL)`);
    await knex.raw(`CREATE INDEX ${level.table}_period_index ON ${level.table} (period_seconds, period_start)`);
    await knex.raw(`INSERT INTO ${level.table} (${key}, builds)
      SELECT ${key}, sum(n) FROM (${periodRows(level, level.hourly, 1)}) AS cells GROUP BY ${key}`);
    for (const [op, t] of Object.entries(triggers(level))) {
      await knex.raw(`CREATE FUNCTION ringmaster_${level.table}_${op}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN ${appendChange(level, t.rows)}; RETURN NULL; END $$`);
      await knex.raw(`CREATE TRIGGER ${level.table}_${op} AFTER ${op.toUpperCase()} ON ${level.hourly}
        REFERENCING ${t.transition} FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_${level.table}_${op}()`);
    }
    await knex.raw(`CREATE FUNCTION ringmaster_${level.table}_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN DELETE FROM ${level.table}; RETURN NULL; END $$`);
    await knex.raw(`CREATE TRIGGER ${level.table}_truncate AFTER TRUNCATE ON ${level.hourly}
      FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_${level.table}_truncate()`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const level of LEVELS) {
    for (const op of ['insert', 'update', 'delete', 'truncate']) {
      await knex.raw(`DROP TRIGGER IF EXISTS ${level.table}_${op} ON ${level.hourly}`);
      await knex.raw(`DROP FUNCTION IF EXISTS ringmaster_${level.table}_${op}()`);
    }
    await knex.schema.dropTableIfExists(level.table);
  }
}
