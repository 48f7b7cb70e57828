import type { Db } from '../db';
import { pageRows, type PageRequest } from '../../api/queries/page';
import { redactSecrets } from '../redact';
import type { NotificationPayload, PlannedNotification } from './messages';

/**
 * Every query on notification_tasks, for the activities that write it and the API that lists and
 * retries. Statuses: pending (queued or waiting for its next attempt), running (an attempt is under
 * way), completed, failed (gave up after max_attempts), superseded (a newer status for the same
 * commit and context made it moot).
 */

export const NOTIFICATION_TASK_STATUSES = ['pending', 'running', 'completed', 'failed', 'superseded'] as const;
export type NotificationTaskStatus = (typeof NOTIFICATION_TASK_STATUSES)[number];

export interface NotificationTaskRow {
  id: string;
  seq: number;
  notification_type: string;
  target_name: string;
  event: string;
  order_key: string;
  state: string;
  payload: NotificationPayload;
  status: NotificationTaskStatus;
  attempts: number;
  max_attempts: number;
  next_retry_at: Date | null;
  last_error: string | null;
  workflow_id: string | null;
  event_at: Date;
  created_at: Date;
  completed_at: Date | null;
  give_ups: number;
}

/** Inserts one pending task per planned notification, in order (their seq follows it). */
export async function insertNotificationTasks(db: Db, planned: PlannedNotification[], maxAttempts: number, workflowIdOf: (orderKey: string) => string | null = () => null): Promise<NotificationTaskRow[]> {
  if (planned.length === 0) return [];
  return db('notification_tasks')
    .insert(
      planned.map((p) => ({
        notification_type: p.payload.target.type,
        target_name: p.payload.target.name,
        event: p.payload.event,
        order_key: p.orderKey,
        state: p.state,
        payload: JSON.stringify(p.payload),
        status: 'pending',
        max_attempts: maxAttempts,
        workflow_id: workflowIdOf(p.orderKey),
      })),
    )
    .returning('*');
}

export async function recordWorkflowOfTask(db: Db, taskId: string, workflowId: string): Promise<void> {
  await db('notification_tasks').where({ id: taskId }).update({ workflow_id: workflowId });
}

export async function findNotificationTask(db: Db, taskId: string): Promise<NotificationTaskRow | undefined> {
  return db('notification_tasks').where({ id: taskId }).first();
}

export async function markAttemptStarted(db: Db, taskId: string, attempt: number): Promise<void> {
  await db('notification_tasks').where({ id: taskId }).update({ status: 'running', attempts: attempt, next_retry_at: null, updated_at: db.fn.now() });
}

export async function markAttemptFailed(db: Db, taskId: string, error: string, nextRetryAt: Date | null): Promise<void> {
  await db('notification_tasks')
    .where({ id: taskId })
    .update({ status: nextRetryAt ? 'pending' : 'running', last_error: error, next_retry_at: nextRetryAt, updated_at: db.fn.now() });
}

export async function markDelivered(db: Db, taskId: string): Promise<void> {
  await db('notification_tasks')
    .where({ id: taskId })
    .update({ status: 'completed', completed_at: db.fn.now(), next_retry_at: null, last_error: null, updated_at: db.fn.now() });
}

export async function markGivenUp(db: Db, taskId: string, error: string): Promise<void> {
  await db('notification_tasks')
    .where({ id: taskId })
    .whereNot({ status: 'completed' })
    .update({ status: 'failed', last_error: error, next_retry_at: null, give_ups: db.raw('give_ups + 1'), updated_at: db.fn.now() });
}

export async function markSuperseded(db: Db, taskIds: string[]): Promise<void> {
  if (taskIds.length === 0) return;
  await db('notification_tasks')
    .whereIn('id', taskIds)
    .whereIn('status', ['pending', 'running'])
    .update({ status: 'superseded', next_retry_at: null, last_error: 'superseded by a newer notification for the same commit and context', updated_at: db.fn.now() });
}

/**
 * Puts a failed task back to pending with its attempts reset (the retry route). Answers the row, or
 * undefined when the task is not failed (anymore): a concurrent retry cannot requeue it twice.
 */
export async function requeueFailedTask(db: Db, taskId: string, maxAttempts: number): Promise<NotificationTaskRow | undefined> {
  const [row] = await db('notification_tasks')
    .where({ id: taskId, status: 'failed' })
    .update({ status: 'pending', attempts: 0, max_attempts: maxAttempts, next_retry_at: null, updated_at: db.fn.now() })
    .returning('*');
  return row;
}

/** Undoes requeueFailedTask when the task could not be handed to Temporal. */
export async function returnToFailed(db: Db, taskId: string, error: string): Promise<void> {
  await db('notification_tasks').where({ id: taskId, status: 'pending' }).update({ status: 'failed', last_error: error, updated_at: db.fn.now() });
}

/** A task as the API shows it: COMPAT's NotificationTask fields, plus where and what, with secrets redacted. */
export function notificationTaskView(row: NotificationTaskRow) {
  return {
    id: row.id,
    notification_type: row.notification_type,
    target: row.target_name,
    event: row.event,
    payload: redactSecrets(row.payload),
    status: row.status,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    next_retry_at: row.next_retry_at,
    last_error: row.last_error,
    created_at: row.created_at,
    event_at: row.event_at,
    completed_at: row.completed_at,
    workflow_id: row.workflow_id,
  };
}

export interface NotificationTaskFilter extends PageRequest {
  status?: NotificationTaskStatus;
  notification_type?: string;
}

export async function pageNotificationTasks(db: Db, f: NotificationTaskFilter) {
  const base = db('notification_tasks');
  if (f.status) base.where('status', f.status);
  if (f.notification_type) base.where('notification_type', f.notification_type);
  const { rows, ...page } = await pageRows<NotificationTaskRow>(base, f, [{ column: 'created_at', order: 'desc' }, { column: 'seq', order: 'desc' }]);
  return { items: rows.map(notificationTaskView), ...page };
}

export interface NotificationMetricsRow {
  notification_type: string;
  status: string;
  tasks: number;
  give_ups: number;
}

/** Tasks and give-ups per type and status (the metrics' counts). */
export async function notificationCounts(db: Db): Promise<NotificationMetricsRow[]> {
  const rows = await db('notification_tasks')
    .select('notification_type', 'status')
    .count<{ count: string }[]>('* as tasks')
    .sum('give_ups as give_ups')
    .groupBy('notification_type', 'status');
  return (rows as unknown as Array<Record<string, string>>).map((r) => ({ notification_type: r.notification_type, status: r.status, tasks: Number(r.tasks), give_ups: Number(r.give_ups ?? 0) }));
}

/** Delivered tasks per type in cumulative lag buckets (event → delivery, seconds), with their sum. */
export async function deliveryLagBuckets(db: Db, bounds: number[]): Promise<Array<{ notification_type: string; buckets: number[]; count: number; sum: number }>> {
  const lag = 'extract(epoch from (completed_at - event_at))';
  const columns = bounds.map((b, i) => `count(*) filter (where ${lag} <= ${Number(b)}) as b${i}`).join(', ');
  const result = await db.raw(
    `select notification_type, ${columns}, count(*) as n, coalesce(sum(${lag}), 0) as s from notification_tasks where status = 'completed' and completed_at is not null group by notification_type`,
  );
  return (result.rows as Array<Record<string, string>>).map((r) => ({
    notification_type: r.notification_type,
    buckets: bounds.map((_b, i) => Number(r[`b${i}`])),
    count: Number(r.n),
    sum: Number(r.s),
  }));
}
