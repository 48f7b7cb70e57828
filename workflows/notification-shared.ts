import { defineSignal } from '@temporalio/workflow';

/**
 * Messages of the NotificationWorkflow, shared by the workflow, the activities that enqueue
 * notifications and the API's retry route. Pure definitions only (bundled into the workflow sandbox).
 */

/** One delivery the workflow is asked to make. */
export interface QueuedNotification {
  taskId: string;
  /** The task's place in its ordering key (notification_tasks.seq): older events have smaller seq. */
  seq: number;
  /** A final status (success, failure, error) is never dropped; a pending one gives way to a newer task. */
  final: boolean;
  maxAttempts: number;
  backoffSeconds: number;
}

export interface NotificationWorkflowInput {
  orderKey: string;
  queue: QueuedNotification[];
  /** The seq of the newest task delivered under this key (carried across continue-as-new). */
  newestDeliveredSeq: number;
}

export const deliverNotificationSignal = defineSignal<[QueuedNotification]>('deliverNotification');

export { notificationWorkflowId } from '../lib/workflow-ids';
