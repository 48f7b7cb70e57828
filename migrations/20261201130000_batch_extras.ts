import type { Knex } from 'knex';

/**
 * The derivations a running batch realises as extras (issue 6, `BatchExtras`): its activity writes them
 * before its Nix starts and deletes each as it ends (and all of the batch's at its end). A derivation's
 * workflow that plans it meanwhile waits for the batch's word instead of queueing it again.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('batch_extras', (t) => {
    t.text('drv_path').primary();
    t.text('batch_id').notNullable().index();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('batch_extras');
}
