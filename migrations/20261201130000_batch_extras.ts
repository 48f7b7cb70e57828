import type { Knex } from 'knex';

/**
 * The derivations a running batch realises as extras (issue 6, `BatchExtras`): its activity writes them
 * before its Nix starts and deletes each as it ends (and all of the batch's at its end). A derivation's
 * workflow that plans it meanwhile, or one of the builds the batch will tell (`build_ids`), waits for the
 * batch's word instead of queueing it again.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('batch_extras', (t) => {
    t.text('drv_path').primary();
    t.text('batch_id').notNullable().index();
    // The builds the batch tells of the extra's end (`extraRealised`): only they wait for it without a derivation workflow.
    t.specificType('build_ids', 'uuid[]').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('batch_extras');
}
