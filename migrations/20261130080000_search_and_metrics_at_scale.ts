import type { Knex } from 'knex';

/**
 * Search, metrics and build lists that stay fast at a million builds:
 * - builds' filtered lists get indexes in their ORDER BY (created_at desc, id desc), so a page is an index walk;
 * - substring search uses pg_trgm GIN indexes when the server has the extension, btree prefix indexes otherwise;
 * - store paths (outputs and .drv) are found by equality or prefix (text_pattern_ops);
 * - `jobs` lists each (jobset, job name) once, for autocomplete, kept by a trigger on builds;
 * - `build_count_deltas` keeps builds counted by (system, status), with finished durations, by statement triggers
 *   that only append rows (no hot counter row to lock); readers sum it and compact it now and then.
 */
export async function up(knex: Knex): Promise<void> {
  const trigram = (await knex.raw(`SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'`)).rows.length > 0;
  if (trigram) await knex.raw('CREATE EXTENSION IF NOT EXISTS pg_trgm');

  // Builds: filtered lists ordered newest first.
  await knex.raw('DROP INDEX IF EXISTS builds_status_created_at_index');
  await knex.raw('DROP INDEX IF EXISTS builds_job_name_index');
  await knex.raw('DROP INDEX IF EXISTS builds_system_index');
  await knex.raw('DROP INDEX IF EXISTS builds_project_id_created_at_index');
  await knex.raw('DROP INDEX IF EXISTS builds_drv_path_index');
  await knex.raw('CREATE INDEX builds_status_created_at_id_index ON builds (status, created_at, id)');
  // A job's builds, or a job's failures: the status inside, so "job X, failed" is one ordered range.
  await knex.raw('CREATE INDEX builds_job_name_status_created_at_id_index ON builds (job_name, status, created_at, id)');
  await knex.raw('CREATE INDEX builds_system_created_at_id_index ON builds (system, created_at, id)');
  await knex.raw('CREATE INDEX builds_project_id_created_at_id_index ON builds (project_id, created_at, id)');
  await knex.raw('CREATE INDEX builds_jobset_id_created_at_id_index ON builds (jobset_id, created_at, id)');
  await knex.raw('CREATE INDEX builds_completed_at_index ON builds (completed_at) WHERE completed_at IS NOT NULL');
  // Store paths: equality and prefix (LIKE 'p%') whatever the database's collation.
  await knex.raw('CREATE INDEX builds_drv_path_pattern_index ON builds (drv_path text_pattern_ops)');
  await knex.raw('DROP INDEX IF EXISTS build_outputs_path_index');
  await knex.raw('CREATE INDEX build_outputs_path_pattern_index ON build_outputs (path text_pattern_ops)');
  // Running steps by builder (slots in use), without reading finished steps.
  await knex.raw(`CREATE INDEX build_steps_running_builder_index ON build_steps (builder_id) WHERE status = 'running'`);
  await knex.raw('CREATE INDEX evaluations_completed_at_index ON evaluations (completed_at) WHERE completed_at IS NOT NULL');

  // Jobs (autocomplete): one row per (jobset, job name) that ever had a build.
  await knex.schema.createTable('jobs', (t) => {
    t.uuid('jobset_id').notNullable().references('id').inTable('jobsets').onDelete('CASCADE');
    t.uuid('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.text('name').notNullable();
    t.primary(['jobset_id', 'name']);
  });
  await knex.raw('INSERT INTO jobs (jobset_id, project_id, name) SELECT DISTINCT jobset_id, project_id, job_name FROM builds');
  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_record_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      -- In key order, so two statements adding the same jobs wait for each other instead of deadlocking.
      INSERT INTO jobs (jobset_id, project_id, name)
      SELECT DISTINCT jobset_id, project_id, job_name FROM new_builds ORDER BY jobset_id, job_name
      ON CONFLICT DO NOTHING;
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE TRIGGER builds_record_jobs AFTER INSERT ON builds
    REFERENCING NEW TABLE AS new_builds FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_record_jobs()`);

  // Names searched by substring: trigram GIN, or btree prefix indexes without pg_trgm.
  const named: Array<[string, string]> = [['projects', 'name'], ['jobsets', 'name'], ['jobs', 'name'], ['builds', 'job_name']];
  for (const [table, column] of named) {
    if (trigram) await knex.raw(`CREATE INDEX ${table}_${column}_trgm_index ON ${table} USING gin (${column} gin_trgm_ops)`);
    else await knex.raw(`CREATE INDEX ${table}_${column}_prefix_index ON ${table} (lower(${column}) text_pattern_ops)`);
  }

  // Builds counted by (system, status), appended to by statement triggers.
  await knex.schema.createTable('build_count_deltas', (t) => {
    t.text('system').notNullable();
    t.text('status').notNullable();
    t.bigInteger('builds').notNullable();
    /** Builds with both started_at and completed_at (their duration is known). */
    t.bigInteger('timed').notNullable();
    t.double('duration_seconds').notNullable();
  });
  const timedRow = `(started_at IS NOT NULL AND completed_at IS NOT NULL)`;
  const duration = `CASE WHEN ${timedRow} THEN extract(epoch FROM completed_at - started_at)::float8 ELSE 0 END`;
  await knex.raw(`
    INSERT INTO build_count_deltas (system, status, builds, timed, duration_seconds)
    SELECT system, status, count(*), count(*) FILTER (WHERE ${timedRow}), coalesce(sum(${duration}), 0)
    FROM builds GROUP BY system, status`);
  const appendChanges = (body: string) => `
    INSERT INTO build_count_deltas (system, status, builds, timed, duration_seconds)
    SELECT system, status, sum(n), sum(t), sum(d) FROM (${body}) AS change
    GROUP BY system, status HAVING sum(n) <> 0 OR sum(t) <> 0 OR sum(d) <> 0`;
  const rowsOf = (table: string, sign: 1 | -1) =>
    `SELECT system, status, ${sign} AS n, ${sign} * (${timedRow})::int AS t, ${sign} * ${duration} AS d FROM ${table}`;
  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN ${appendChanges(rowsOf('new_builds', 1))}; RETURN NULL; END $$`);
  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN ${appendChanges(`${rowsOf('new_builds', 1)} UNION ALL ${rowsOf('old_builds', -1)}`)}; RETURN NULL; END $$`);
  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN ${appendChanges(rowsOf('old_builds', -1))}; RETURN NULL; END $$`);
  await knex.raw(`
    CREATE FUNCTION ringmaster_builds_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN DELETE FROM build_count_deltas; RETURN NULL; END $$`);
  await knex.raw(`CREATE TRIGGER builds_count_insert AFTER INSERT ON builds
    REFERENCING NEW TABLE AS new_builds FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_count_insert()`);
  await knex.raw(`CREATE TRIGGER builds_count_update AFTER UPDATE ON builds
    REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_count_update()`);
  await knex.raw(`CREATE TRIGGER builds_count_delete AFTER DELETE ON builds
    REFERENCING OLD TABLE AS old_builds FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_count_delete()`);
  await knex.raw(`CREATE TRIGGER builds_count_truncate AFTER TRUNCATE ON builds
    FOR EACH STATEMENT EXECUTE FUNCTION ringmaster_builds_count_truncate()`);
}

export async function down(knex: Knex): Promise<void> {
  for (const trigger of ['builds_count_insert', 'builds_count_update', 'builds_count_delete', 'builds_count_truncate', 'builds_record_jobs']) {
    await knex.raw(`DROP TRIGGER IF EXISTS ${trigger} ON builds`);
  }
  for (const fn of ['ringmaster_builds_count_insert', 'ringmaster_builds_count_update', 'ringmaster_builds_count_delete', 'ringmaster_builds_count_truncate', 'ringmaster_builds_record_jobs']) {
    await knex.raw(`DROP FUNCTION IF EXISTS ${fn}()`);
  }
  await knex.schema.dropTableIfExists('build_count_deltas');
  await knex.schema.dropTableIfExists('jobs');
  for (const index of [
    'builds_status_created_at_id_index', 'builds_job_name_status_created_at_id_index', 'builds_system_created_at_id_index',
    'builds_project_id_created_at_id_index', 'builds_jobset_id_created_at_id_index', 'builds_completed_at_index',
    'builds_drv_path_pattern_index', 'build_outputs_path_pattern_index', 'build_steps_running_builder_index', 'evaluations_completed_at_index',
    'projects_name_trgm_index', 'jobsets_name_trgm_index', 'builds_job_name_trgm_index',
    'projects_name_prefix_index', 'jobsets_name_prefix_index', 'builds_job_name_prefix_index',
  ]) {
    await knex.raw(`DROP INDEX IF EXISTS ${index}`);
  }
  await knex.raw('CREATE INDEX builds_status_created_at_index ON builds (status, created_at)');
  await knex.raw('CREATE INDEX builds_job_name_index ON builds (job_name)');
  await knex.raw('CREATE INDEX builds_system_index ON builds (system)');
  await knex.raw('CREATE INDEX builds_project_id_created_at_index ON builds (project_id, created_at)');
  await knex.raw('CREATE INDEX builds_drv_path_index ON builds (drv_path)');
  await knex.raw('CREATE INDEX build_outputs_path_index ON build_outputs (path)');
}
