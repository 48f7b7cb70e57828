import type { Knex } from 'knex';

/**
 * Incoming forge webhooks (issue 9 §1):
 * - `webhook_deliveries`: one row per accepted delivery, unique per (project, forge, delivery id), so a
 *   redelivery is recognised and triggers nothing again;
 * - the pull/merge request an evaluation was triggered for (number, head branch, base branch); its head
 *   commit is the evaluation's commit_hash.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.text('forge_type').notNullable();
    t.text('delivery_id').notNullable();
    t.text('event');
    t.text('outcome').notNullable();
    t.jsonb('triggered_jobsets').notNullable().defaultTo('[]');
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['project_id', 'forge_type', 'delivery_id']);
    t.index(['received_at']);
  });
  await knex.schema.alterTable('evaluations', (t) => {
    t.integer('pr_number');
    t.text('pr_head');
    t.text('pr_base');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('evaluations', (t) => {
    t.dropColumn('pr_number');
    t.dropColumn('pr_head');
    t.dropColumn('pr_base');
  });
  await knex.schema.dropTableIfExists('webhook_deliveries');
}
