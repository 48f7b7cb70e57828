import type { Knex } from 'knex';

/**
 * `builds (evaluation_id)` duplicates the leading column of the unique index `builds (evaluation_id,
 * job_name)`, which answers every lookup by evaluation as well. Each recorded build paid for both (issue 6:
 * an evaluation of 10,000 jobs inserts 10,000 rows into every index of `builds`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS builds_evaluation_id_index');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX IF NOT EXISTS builds_evaluation_id_index ON builds (evaluation_id)');
}
