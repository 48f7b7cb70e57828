import type { Knex } from 'knex';

/**
 * Notifications as durable workflows: each notification_tasks row is one delivery to one target,
 * ordered within its (target, commit, context) key by `seq`, and delivered by the key's
 * NotificationWorkflow. `event_at` is when the event happened (the lag metric's start), `give_ups`
 * counts how often the task exhausted its attempts (the failures metric; a retried task keeps it).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE notification_tasks ADD COLUMN seq bigserial');
  await knex.schema.alterTable('notification_tasks', (t) => {
    t.text('target_name');
    t.text('event');
    t.text('order_key');
    t.text('state');
    t.timestamp('event_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.integer('give_ups').notNullable().defaultTo(0);
    t.index(['order_key', 'seq']);
    t.index(['created_at', 'id']);
    t.index(['status', 'completed_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('notification_tasks', (t) => {
    t.dropIndex(['order_key', 'seq']);
    t.dropIndex(['created_at', 'id']);
    t.dropIndex(['status', 'completed_at']);
    t.dropColumns('seq', 'target_name', 'event', 'order_key', 'state', 'event_at', 'updated_at', 'give_ups');
  });
}
