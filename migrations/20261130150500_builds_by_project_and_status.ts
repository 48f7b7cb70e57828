import type { Knex } from 'knex';

/**
 * A project's builds of one status, newest first (the search "failed builds of project X", the API's
 * `?project_id=…&status=…`): one range of this index, index-only, counted and paged without reading the
 * project's other builds or the other projects' builds of that status.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX builds_project_id_status_created_at_id_index ON builds (project_id, status, created_at, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS builds_project_id_status_created_at_id_index');
}
