import type { Knex } from 'knex';

/**
 * The builds of an evaluation whose `BuildWorkflow` has not been started yet (issue 6): a row is written
 * with the build, in the same transaction, and deleted once its workflow has started. An evaluation
 * completes as soon as its builds are recorded; an activity starts the workflows behind it and, after a
 * crash, resumes from what is left here. A table of its own keeps the builds' rows (and the API's build
 * shape) as they were.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('build_workflow_starts', (t) => {
    t.uuid('build_id').primary().references('id').inTable('builds').onDelete('CASCADE');
    t.uuid('evaluation_id').notNullable().references('id').inTable('evaluations').onDelete('CASCADE');
    t.index(['evaluation_id', 'build_id'], 'build_workflow_starts_evaluation_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('build_workflow_starts');
}
