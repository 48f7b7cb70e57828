import type { Knex } from 'knex';

/**
 * Whether a derivation workflow waits for the word of the batch that realises the derivation as an extra
 * (issue 6): set by the workflow's plan when it finds the extra's row (`planDerivation`), read by the batch
 * as it deletes the row once the extra has ended. A batch tells only the workflows that wait (and those
 * queued for the derivation): most extras have no workflow at all (their builds are held while the batch
 * realises them), and a signal to a workflow that does not exist costs the worker and Temporal about 5 ms
 * of CPU each.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('batch_extras', (t) => {
    t.boolean('workflow_waits').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('batch_extras', (t) => {
    t.dropColumn('workflow_waits');
  });
}
