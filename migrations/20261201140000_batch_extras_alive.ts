import type { Knex } from 'knex';

/**
 * When a running batch last said it was alive (issue 6): its activity touches its `batch_extras` rows
 * every few seconds while its Nix runs. A derivation's workflow waits only for a batch that is alive, and
 * an evaluation holds back the workflow of a build whose derivation such a batch realises until that
 * derivation ends; the rows of a batch whose worker died go stale within a minute, and hold nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('batch_extras', (t) => {
    t.timestamp('alive_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('batch_extras', (t) => {
    t.dropColumn('alive_at');
  });
}
