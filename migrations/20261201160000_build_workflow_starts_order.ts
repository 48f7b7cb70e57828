import type { Knex } from 'knex';

/**
 * The order in which an evaluation's build workflows start (aggregates last, then the highest priority,
 * then by ID) kept on the start rows themselves, with an index in that order (issue 6): a page of starts
 * reads the first rows of the index instead of joining and sorting every build of the evaluation still
 * to start (10,000 rows sorted per page of 500, and per start when few may be open at once). A bump of a
 * build that has not started yet updates its start row too. The index leads with the evaluation, so it
 * replaces `build_workflow_starts (evaluation_id, build_id)` for every lookup by evaluation.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('build_workflow_starts', (t) => {
    t.boolean('is_aggregate').notNullable().defaultTo(false);
    t.integer('priority').notNullable().defaultTo(0);
  });
  await knex.raw(`UPDATE build_workflow_starts s SET is_aggregate = b.is_aggregate, priority = b.priority FROM builds b WHERE b.id = s.build_id`);
  await knex.raw('CREATE INDEX build_workflow_starts_order_index ON build_workflow_starts (evaluation_id, is_aggregate, priority DESC, build_id)');
  await knex.raw('DROP INDEX IF EXISTS build_workflow_starts_evaluation_index');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX IF NOT EXISTS build_workflow_starts_evaluation_index ON build_workflow_starts (evaluation_id, build_id)');
  await knex.raw('DROP INDEX IF EXISTS build_workflow_starts_order_index');
  await knex.schema.alterTable('build_workflow_starts', (t) => {
    t.dropColumn('is_aggregate');
    t.dropColumn('priority');
  });
}
