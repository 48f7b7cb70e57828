import type { Knex } from 'knex';

/**
 * The queue of succeeded builds whose outputs still have to be served (issue 6): their closure size
 * recorded, their GC roots brought up to date and their closures published to the binary cache.
 * `finishBuild` adds a build in the transaction that records its result; `ServeBuildOutputsWorkflow`
 * (one per task queue) takes the queue in batches and deletes a build's row once its outputs are served.
 * `attempts` counts the rounds whose publication of that build failed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('build_outputs_to_serve', (t) => {
    t.uuid('build_id').primary().references('id').inTable('builds').onDelete('CASCADE');
    t.timestamp('queued_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.integer('attempts').notNullable().defaultTo(0);
    t.index(['queued_at', 'build_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('build_outputs_to_serve');
}
