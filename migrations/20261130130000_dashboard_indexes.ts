import type { Knex } from 'knex';
import { FAILED_BUILD_STATUSES } from '../lib/statuses';

/**
 * Partial indexes for the dashboard's queue and failure views, so they read only the few rows they
 * show, however many builds have finished: the queue by system and by builder, the queue in dispatch
 * order (priority, then age), and the failed builds of an evaluation.
 */
const FAILED = FAILED_BUILD_STATUSES.map((s) => `'${s}'`).join(', ');

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create index builds_active_by_system on builds (system, status) where status in ('pending', 'running')`);
  await knex.raw(`create index builds_running_by_builder on builds (builder_id) where status = 'running'`);
  await knex.raw(`create index builds_queue_order on builds (priority desc, created_at, id) where status = 'pending'`);
  await knex.raw(`create index builds_failed_by_evaluation on builds (evaluation_id, created_at desc, id desc) where status in (${FAILED})`);
}

export async function down(knex: Knex): Promise<void> {
  for (const name of ['builds_active_by_system', 'builds_running_by_builder', 'builds_queue_order', 'builds_failed_by_evaluation']) {
    await knex.raw(`drop index if exists ${name}`);
  }
}
