import type { Knex } from 'knex';

/**
 * What channel promotion needs beyond the initial schema:
 * - `aggregate_job`: the job (an aggregate, as in Hydra's `tested`) whose success makes an evaluation
 *   good enough for the channel; null means every build of the evaluation must succeed;
 * - `promoted_at`: when the channel last moved to its current evaluation.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('channels', (t) => {
    t.text('aggregate_job');
    t.timestamp('promoted_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('channels', (t) => {
    t.dropColumn('promoted_at');
    t.dropColumn('aggregate_job');
  });
}
