import type { Knex } from 'knex';

/**
 * A jobset's evaluations newest first, with the id breaking ties as every list orders them: the home page's
 * "failing now" (the newest evaluation of each jobset, one index probe per jobset instead of a walk of all
 * evaluations newest first), the jobset matrix's columns, an evaluation's predecessor. It replaces the
 * (jobset_id, created_at) index, a prefix of it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX evaluations_jobset_id_created_at_id_index ON evaluations (jobset_id, created_at, id)');
  await knex.raw('DROP INDEX IF EXISTS evaluations_jobset_id_created_at_index');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX IF NOT EXISTS evaluations_jobset_id_created_at_index ON evaluations (jobset_id, created_at)');
  await knex.raw('DROP INDEX IF EXISTS evaluations_jobset_id_created_at_id_index');
}
