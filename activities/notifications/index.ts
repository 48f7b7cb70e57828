import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { ActivityDeps } from '../deps';
import { liveConfigFile } from '../../lib/live-config-file';
import { DEFAULT_RETRY_BACKOFF_SECONDS, notificationTargets, targetWantsKind, type NotificationEventKind } from '../../lib/notifications/targets';
import type { NotificationEvent } from '../../lib/notifications/messages';
import { findNotificationTask, markAttemptFailed, markAttemptStarted, markDelivered, markGivenUp, markSuperseded } from '../../lib/notifications/task-records';
import { enqueueNotifications, type NotificationDeps } from './enqueue';
import { buildEvent, evaluationEvent } from './events';
import { sendNotification } from './send';

function notificationDeps(deps: ActivityDeps): NotificationDeps {
  return { db: deps.db, workflows: deps.workflows, configFile: deps.config.configFile, publicUrl: deps.config.publicUrl };
}

/**
 * Queues the notifications of an event; a failure is logged and never fails the build or evaluation that
 * raised it. The event is read from the database only when a configured target wants its kind (issue 6:
 * two queries per build saved where nothing is to be sent).
 */
async function notifyQuietly(deps: ActivityDeps, kind: NotificationEventKind, load: () => Promise<NotificationEvent | undefined>): Promise<void> {
  try {
    const settings = (await liveConfigFile(deps.config.configFile).current()).notifications;
    if (!notificationTargets(settings).some((t) => targetWantsKind(t, kind))) return;
    const event = await load();
    if (event) await enqueueNotifications(notificationDeps(deps), event);
  } catch (err) {
    log.warn('could not queue notifications', { error: (err as Error).message });
  }
}

/** Build started (running) or finished: called by the build activities once the row says so. */
export function notifyBuildEvent(deps: ActivityDeps, buildId: string, kind: 'build_started' | 'build_finished'): Promise<void> {
  return notifyQuietly(deps, kind, () => buildEvent(deps.db, buildId, kind));
}

/** Evaluation started (running) or finished: called by the evaluation activities once the row says so. */
export function notifyEvaluationEvent(deps: ActivityDeps, evaluationId: string, kind: 'evaluation_started' | 'evaluation_finished'): Promise<void> {
  return notifyQuietly(deps, kind, () => evaluationEvent(deps.db, evaluationId, kind));
}

export function createNotificationActivities(deps: ActivityDeps) {
  const { db } = deps;
  return {
    /**
     * One attempt to deliver a task to its target, with the target's settings (URL, token, secret) as
     * the config file says now. Throws on failure, so the workflow's retry policy backs off and tries
     * again; answers {delivered:false} for a task that is already delivered or superseded.
     */
    async deliverNotification(input: { taskId: string }): Promise<{ delivered: boolean }> {
      const task = await findNotificationTask(db, input.taskId);
      if (!task || task.status === 'completed' || task.status === 'superseded') return { delivered: false };
      const { attempt } = Context.current().info;
      await markAttemptStarted(db, task.id, attempt);
      const settings = (await liveConfigFile(deps.config.configFile).current()).notifications;
      const target = notificationTargets(settings).find((t) => t.name === task.target_name);
      if (!target) {
        const message = `the target "${task.target_name}" is no longer in the config file`;
        await markAttemptFailed(db, task.id, message, null);
        throw ApplicationFailure.nonRetryable(message, 'TargetNotConfigured');
      }
      try {
        await sendNotification(target, task);
      } catch (err) {
        const message = (err as Error).message;
        const backoffSeconds = settings?.retry_backoff_seconds ?? DEFAULT_RETRY_BACKOFF_SECONDS;
        const next = attempt < task.max_attempts ? new Date(Date.now() + backoffSeconds * 1000 * 2 ** (attempt - 1)) : null;
        await markAttemptFailed(db, task.id, message, next);
        throw ApplicationFailure.retryable(message, 'DeliveryFailed');
      }
      await markDelivered(db, task.id);
      return { delivered: true };
    },

    async markNotificationFailed(input: { taskId: string; error: string }): Promise<void> {
      await markGivenUp(db, input.taskId, input.error);
    },

    async markNotificationsSuperseded(input: { taskIds: string[] }): Promise<void> {
      await markSuperseded(db, input.taskIds);
    },
  };
}

export type NotificationActivities = ReturnType<typeof createNotificationActivities>;
