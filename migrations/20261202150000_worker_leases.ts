import type { Knex } from 'knex';

/**
 * Leases of the worker processes (issue 6: more than one worker, killing one loses nothing). A worker
 * process renews its row every few seconds, timed by PostgreSQL's clock (`expires_at`). A worker in another
 * container or on another machine cannot look its PID up, so a lease that lapsed is how it tells that the
 * process is gone: the long-heartbeat activity attempts that process recorded in `running_activities`
 * (`owner_key` names its lease; NULL for attempts of workers without one, which are never judged by lease)
 * are then failed so that they run again, instead of when their heartbeat timeout runs out
 * (worker/ended-workers.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('worker_leases', (t) => {
    t.text('owner_key').primary();
    t.jsonb('owner').notNullable();
    t.timestamp('renewed_at', { useTz: true }).notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
  });
  await knex.schema.alterTable('running_activities', (t) => {
    t.text('owner_key');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('running_activities', (t) => {
    t.dropColumn('owner_key');
  });
  await knex.schema.dropTable('worker_leases');
}
