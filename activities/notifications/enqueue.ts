import type { RingmasterWorkflows } from '../../lib/workflow-client';
import type { Db } from '../../lib/db';
import { liveConfigFile } from '../../lib/live-config-file';
import { planNotification, type NotificationEvent, type PlannedNotification } from '../../lib/notifications/messages';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_BACKOFF_SECONDS, notificationTargets, targetWants } from '../../lib/notifications/targets';
import { notificationWorkflowIdOf, startNotificationDelivery } from '../../lib/notifications/start-delivery';
import { insertNotificationTasks, markGivenUp } from '../../lib/notifications/task-records';

export interface NotificationDeps {
  db: Db;
  workflows: RingmasterWorkflows;
  configFile: string;
  publicUrl: string | undefined;
}

/**
 * Records one task per target that wants the event (targets come from the config file as it is now)
 * and hands each to its ordering key's NotificationWorkflow. Answers how many tasks it queued.
 */
export async function enqueueNotifications(deps: NotificationDeps, event: NotificationEvent): Promise<number> {
  const settings = (await liveConfigFile(deps.configFile).current()).notifications;
  const planned = notificationTargets(settings)
    .filter((t) => targetWants(t, event.kind, event.project))
    .map((t) => planNotification(t, event, deps.publicUrl))
    .filter((p): p is PlannedNotification => p !== undefined);
  if (planned.length === 0) return 0;
  const tasks = await insertNotificationTasks(deps.db, planned, settings?.max_attempts ?? DEFAULT_MAX_ATTEMPTS, (key) => notificationWorkflowIdOf(deps.workflows.taskQueue, key));
  // Different keys: no order between them, so their workflows are signalled at once. A task that
  // cannot be handed to Temporal is recorded as failed, so it shows in the tasks route and can be retried.
  const backoffSeconds = settings?.retry_backoff_seconds ?? DEFAULT_RETRY_BACKOFF_SECONDS;
  await Promise.all(
    tasks.map((task) =>
      startNotificationDelivery(deps.workflows, task, backoffSeconds).catch((err: Error) =>
        markGivenUp(deps.db, task.id, `could not be handed to Temporal: ${err.message}`),
      ),
    ),
  );
  return tasks.length;
}
