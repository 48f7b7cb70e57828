import type { Knex } from 'knex';

/**
 * The index the step queries need: every realisation marks the step rows of its derivation
 * (`build_steps WHERE drv_path = ? AND status IN (…)`), which scanned the whole table.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('build_steps', (t) => {
    t.index(['drv_path', 'status'], 'build_steps_drv_path_status_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('build_steps', (t) => {
    t.dropIndex(['drv_path', 'status'], 'build_steps_drv_path_status_index');
  });
}
