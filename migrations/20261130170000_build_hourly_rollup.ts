import type { Knex } from 'knex';

/**
 * The metric series (api/queries/metrics.ts) read an hourly rollup of builds instead of aggregating `builds`:
 * - `build_hourly_counts`: builds by hour of creation (UTC) × project × jobset × system × status, exact;
 * - `build_hourly_durations`: a histogram of finished builds' durations (completed_at − started_at, both set) by
 *   hour of completion × project × jobset × log-scale bin. Bin i holds durations in (γ^(i−1), γ^i] seconds with
 *   γ = 1.02/0.98, and is read back as 2γ^i/(γ+1): within 2% of every duration in it. Durations ≤ 0 fall in bin
 *   ZERO_BIN (-1000000), read back as 0. api/queries/metrics.ts reads the bins with the same γ.
 * Statement-level triggers with transition tables keep both in the writer's transaction, for every writer (inserts,
 * status changes, restarts that clear completed_at, deletes and cascades, TRUNCATE): a statement's net change per
 * cell is upserted in key order, and cells that reach 0 are deleted. The migration back-fills them from `builds`.
 */
const DURATION_GAMMA_SQL = '(1.02::float8 / 0.98::float8)';
const ZERO_BIN = -1000000;

const hourOf = (column: string) => `date_bin('1 hour'::interval, ${column}, '2000-01-01T00:00:00Z'::timestamptz)`;
const timed = 'started_at IS NOT NULL AND completed_at IS NOT NULL';
const durationBin = `CASE WHEN completed_at <= started_at THEN ${ZERO_BIN}
  ELSE ceil(ln(extract(epoch FROM completed_at - started_at)::float8) / ln(${DURATION_GAMMA_SQL}))::int END`;

const countKey = 'hour, project_id, jobset_id, system, status';
const durationKey = 'hour, project_id, jobset_id, bin';
const countRows = (table: string, sign: 1 | -1) => `SELECT ${hourOf('created_at')} AS hour, project_id, jobset_id, system, status, ${sign} AS n FROM ${table}`;
const durationRows = (table: string, sign: 1 | -1) =>
  `SELECT ${hourOf('completed_at')} AS hour, project_id, jobset_id, ${durationBin} AS bin, ${sign} AS n FROM ${table} WHERE ${timed}`;

/** Adds a statement's net change per cell, in key order (two writers lock shared cells in the same order). */
const upsert = (table: string, key: string, rows: string) => `
  INSERT INTO ${table} AS t (${key}, builds)
  SELECT ${key}, sum(n) FROM (${rows}) AS change GROUP BY ${key} HAVING sum(n) <> 0 ORDER BY ${key}
  ON CONFLICT (${key}) DO UPDATE SET builds = t.builds + excluded.builds`;
/** Deletes the cells a statement emptied (only cells that old rows were counted in can reach 0). */
const dropEmpty = (table: string, key: string, rows: string) => `
  DELETE FROM ${table} t USING (SELECT DISTINCT ${key} FROM (${rows}) AS old) AS o
  WHERE t.builds = 0 AND ${key.split(', ').map((c) => `t.${c} = o.${c}`).join(' AND ')}`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE build_hourly_counts (
      hour timestamptz NOT NULL, project_id uuid NOT NULL, jobset_id uuid NOT NULL, system text NOT NULL, status text NOT NULL,
      builds bigint NOT NULL,
      PRIMARY KEY (hour, project_id, jobset_id, system, status))`);
  await knex.raw(`
    CREATE TABLE build_hourly_durations (
      hour timestamptz NOT NULL, project_id uuid NOT NULL, jobset_id uuid NOT NULL, bin integer NOT NULL,
      builds bigint NOT NULL,
      PRIMARY KEY (hour, project_id, jobset_id, bin))`);

  await knex.raw(`INSERT INTO build_hourly_counts (${countKey}, builds)
    SELECT ${countKey}, sum(n) FROM (${countRows('builds', 1)}) AS b GROUP BY ${countKey}`);
  await knex.raw(`INSERT INTO build_hourly_durations (${durationKey}, builds)
    SELECT ${durationKey}, sum(n) FROM (${durationRows('builds', 1)}) AS b GROUP BY ${durationKey}`);
  for (const table of ['build_hourly_counts', 'build_hourly_durations']) {
    await knex.raw(`CREATE INDEX ${table}_project_id_hour_index ON ${table} (project_id, hour)`);
    await knex.raw(`CREATE INDEX ${table}_jobset_id_hour_index ON ${table} (jobset_id, hour)`);
  }

  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${upsert('build_hourly_counts', countKey, countRows('new_builds', 1))};
      ${upsert('build_hourly_durations', durationKey, durationRows('new_builds', 1))};
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${upsert('build_hourly_counts', countKey, `${countRows('new_builds', 1)} UNION ALL ${countRows('old_builds', -1)}`)};
      ${upsert('build_hourly_durations', durationKey, `${durationRows('new_builds', 1)} UNION ALL ${durationRows('old_builds', -1)}`)};
      ${dropEmpty('build_hourly_counts', countKey, countRows('old_builds', -1))};
      ${dropEmpty('build_hourly_durations', durationKey, durationRows('old_builds', -1))};
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${upsert('build_hourly_counts', countKey, countRows('old_builds', -1))};
      ${upsert('build_hourly_durations', durationKey, durationRows('old_builds', -1))};
      ${dropEmpty('build_hourly_counts', countKey, countRows('old_builds', -1))};
      ${dropEmpty('build_hourly_durations', durationKey, durationRows('old_builds', -1))};
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN DELETE FROM build_hourly_counts; DELETE FROM build_hourly_durations; RETURN NULL; END $$`);
  await knex.raw(`CREATE TRIGGER builds_rollup_insert AFTER INSERT ON builds
    REFERENCING NEW TABLE AS new_builds FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_rollup_insert()`);
  await knex.raw(`CREATE TRIGGER builds_rollup_update AFTER UPDATE ON builds
    REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_rollup_update()`);
  await knex.raw(`CREATE TRIGGER builds_rollup_delete AFTER DELETE ON builds
    REFERENCING OLD TABLE AS old_builds FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_rollup_delete()`);
  await knex.raw(`CREATE TRIGGER builds_rollup_truncate AFTER TRUNCATE ON builds
    FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_rollup_truncate()`);
}

export async function down(knex: Knex): Promise<void> {
  for (const trigger of ['builds_rollup_insert', 'builds_rollup_update', 'builds_rollup_delete', 'builds_rollup_truncate']) {
    await knex.raw(`DROP TRIGGER IF EXISTS ${trigger} ON builds`);
  }
  for (const fn of ['ringmaster_builds_rollup_insert', 'ringmaster_builds_rollup_update', 'ringmaster_builds_rollup_delete', 'ringmaster_builds_rollup_truncate']) {
    await knex.raw(`DROP FUNCTION IF EXISTS ${fn}()`);
  }
  await knex.schema.dropTableIfExists('build_hourly_durations');
  await knex.schema.dropTableIfExists('build_hourly_counts');
}
