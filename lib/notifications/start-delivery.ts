import type { RingmasterWorkflows } from '../workflow-client';
import { notificationWorkflowId } from '../workflow-ids';
import type { QueuedNotification } from '../../workflows/notification-shared';
import { FINAL_STATES, orderKeyHash, type NotificationState } from './messages';

/** The columns of a notification_tasks row that its delivery needs. */
export interface DeliverableTask {
  id: string;
  seq: number | string;
  order_key: string;
  state: NotificationState | string;
  max_attempts: number;
}

/** The NotificationWorkflow that delivers the tasks of an ordering key. */
export function notificationWorkflowIdOf(taskQueue: string, orderKey: string): string {
  return notificationWorkflowId(taskQueue, orderKeyHash(orderKey));
}

/**
 * Hands a task to its ordering key's NotificationWorkflow: signal-with-start, so the key's workflow
 * is started if it is not running and otherwise gets the task queued behind the ones it has.
 */
export async function startNotificationDelivery(workflows: RingmasterWorkflows, task: DeliverableTask, backoffSeconds: number): Promise<string> {
  const workflowId = notificationWorkflowIdOf(workflows.taskQueue, task.order_key);
  const queued: QueuedNotification = {
    taskId: task.id,
    seq: Number(task.seq),
    final: (FINAL_STATES as readonly string[]).includes(task.state),
    maxAttempts: task.max_attempts,
    backoffSeconds,
  };
  await workflows.queueNotification(workflowId, { orderKey: task.order_key, queue: [], newestDeliveredSeq: 0 }, queued);
  return workflowId;
}
