import type { Knex } from 'knex';

/**
 * The activity attempts running now whose heartbeat timeout is long (issue 6: batches, single steps, an
 * evaluation's build starts), one row per attempt, with the worker process that runs it
 * (`lib/process-identity.ts`). A worker that finds the row of a process on its machine that has certainly
 * ended (killed, crashed) fails that attempt through its task token, so Temporal runs it again at once
 * instead of when its heartbeat timeout runs out (worker/ended-workers.ts). The attempt deletes its row
 * when it ends.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('running_activities', (t) => {
    t.binary('task_token').primary();
    t.text('activity_type').notNullable();
    t.text('activity_id').notNullable();
    t.text('workflow_id').notNullable();
    t.integer('attempt').notNullable();
    t.jsonb('owner').notNullable();
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('running_activities');
}
