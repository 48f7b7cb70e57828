import type { Knex } from 'knex';

/**
 * The last check of each remote builder: whether it built a trivial derivation (`passed`, `failed`,
 * or `running` while a check is under way), Nix's error when it did not, and when it was checked.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('remote_builders', (t) => {
    t.text('check_status');
    t.text('check_error');
    t.timestamp('checked_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('remote_builders', (t) => {
    t.dropColumn('check_status');
    t.dropColumn('check_error');
    t.dropColumn('checked_at');
  });
}
