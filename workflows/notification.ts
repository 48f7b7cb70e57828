import { ActivityFailure, ApplicationFailure, condition, continueAsNew, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { NotificationActivities } from '../activities/notifications';
import { deliverNotificationSignal, type NotificationWorkflowInput, type QueuedNotification } from './notification-shared';
import { nextNotification } from './notification-queue';

/** Deliveries per run before the workflow continues as new, so its history stays small. */
export const DELIVERIES_PER_RUN = 100;
/** How long a run with nothing queued waits for more before it completes (the next signal-with-start begins a new run). */
const IDLE_BEFORE_CLOSING = '2 minutes';

const records = proxyLocalActivities<NotificationActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 20 },
});

function deliveryActivity(task: QueuedNotification) {
  return proxyActivities<NotificationActivities>({
    // One HTTP request or SMTP transaction; a worker killed mid-attempt is noticed at this timeout.
    startToCloseTimeout: '30 seconds',
    retry: {
      maximumAttempts: task.maxAttempts,
      initialInterval: `${task.backoffSeconds} seconds`,
      backoffCoefficient: 2,
      maximumInterval: `${Math.max(task.backoffSeconds, 600)} seconds`,
      nonRetryableErrorTypes: ['TargetNotConfigured'],
    },
  }).deliverNotification;
}

/**
 * One per ordering key (target, commit, context), ID `notify-<queue>-<hash>`: delivers the key's
 * notifications one at a time, oldest first, each with its retry policy and backoff. A late pending
 * status is dropped rather than overwriting a final one; a task that exhausts its attempts is recorded
 * as failed and the next one goes on. Started and fed by signal-with-start.
 */
export async function NotificationWorkflow(input: NotificationWorkflowInput): Promise<{ delivered: number }> {
  let queue: QueuedNotification[] = [...input.queue];
  let newestDeliveredSeq = input.newestDeliveredSeq;
  let handled = 0;
  let delivered = 0;
  setHandler(deliverNotificationSignal, (task) => {
    queue.push(task);
  });

  for (;;) {
    if (!(await condition(() => queue.length > 0, IDLE_BEFORE_CLOSING))) return { delivered };
    const { next, superseded, rest } = nextNotification(queue, newestDeliveredSeq);
    queue = rest;
    if (superseded.length > 0) await records.markNotificationsSuperseded({ taskIds: superseded.map((s) => s.taskId) });
    if (!next) continue;
    try {
      const result = await deliveryActivity(next)({ taskId: next.taskId });
      if (result.delivered) delivered++;
      newestDeliveredSeq = Math.max(newestDeliveredSeq, next.seq);
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      const message = cause instanceof ApplicationFailure || cause instanceof Error ? cause.message : String(cause);
      await records.markNotificationFailed({ taskId: next.taskId, error: message });
    }
    handled++;
    if (handled >= DELIVERIES_PER_RUN) {
      await continueAsNew<typeof NotificationWorkflow>({ orderKey: input.orderKey, queue, newestDeliveredSeq });
    }
  }
}
