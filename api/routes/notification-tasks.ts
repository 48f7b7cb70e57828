import { defineRoute, type RouteDef } from '../route';
import { ApiError, conflict, notFound } from '../errors';
import { errorBody, idParams, nullableString, nullableTimestamp, pageOf, pageQueryProperties, timestamp, uuid } from '../schemas';
import { liveConfigFile } from '../../lib/live-config-file';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_BACKOFF_SECONDS, NOTIFICATION_TYPES } from '../../lib/notifications/targets';
import { startNotificationDelivery } from '../../lib/notifications/start-delivery';
import {
  findNotificationTask,
  NOTIFICATION_TASK_STATUSES,
  notificationTaskView,
  pageNotificationTasks,
  recordWorkflowOfTask,
  requeueFailedTask,
  returnToFailed,
  type NotificationTaskFilter,
} from '../../lib/notifications/task-records';

const notificationTaskSchema = {
  type: 'object',
  required: ['id', 'notification_type', 'payload', 'status', 'attempts', 'max_attempts', 'next_retry_at', 'last_error', 'created_at', 'completed_at'],
  properties: {
    id: uuid,
    notification_type: { type: 'string', enum: [...NOTIFICATION_TYPES] },
    target: { type: 'string', description: 'the name of the target in the config file' },
    event: { type: 'string', description: 'evaluation_started, evaluation_finished, build_started or build_finished' },
    payload: { type: 'object', description: 'what is delivered; never holds a token or secret' },
    status: { type: 'string', enum: [...NOTIFICATION_TASK_STATUSES] },
    attempts: { type: 'integer' },
    max_attempts: { type: 'integer' },
    next_retry_at: nullableTimestamp,
    last_error: nullableString,
    created_at: timestamp,
    event_at: timestamp,
    completed_at: nullableTimestamp,
    workflow_id: nullableString,
  },
};

export const notificationTaskRoutes: RouteDef[] = [
  defineRoute<{}, NotificationTaskFilter>({
    method: 'GET',
    path: '/api/v1/admin/notification-tasks',
    summary: 'List pending notification delivery tasks',
    tag: 'admin',
    access: 'admin',
    query: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...pageQueryProperties,
        status: { type: 'string', enum: [...NOTIFICATION_TASK_STATUSES] },
        notification_type: { type: 'string', enum: [...NOTIFICATION_TYPES] },
      },
    },
    responses: { 200: pageOf(notificationTaskSchema), 400: errorBody, 401: errorBody, 403: errorBody },
    handler: async ({ query }, rc) => pageNotificationTasks(rc.db, query),
  }),
  defineRoute<{ id: string }>({
    method: 'POST',
    path: '/api/v1/admin/notification-tasks/{id}/retry',
    summary: 'Retry a notification delivery task',
    tag: 'admin',
    access: 'admin',
    params: idParams,
    responses: { 202: notificationTaskSchema, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody, 503: errorBody },
    handler: async ({ params }, rc) => {
      const temporal = rc.deps.temporal;
      if (!temporal) throw new ApiError('SERVICE_UNAVAILABLE', 'Temporal is not configured: the task cannot be requeued');
      const task = await findNotificationTask(rc.db, params.id);
      if (!task) throw notFound('notification task', params.id);
      if (task.status !== 'failed') throw conflict(`notification task ${task.id} is ${task.status}; only a failed task can be retried`, { status: task.status });
      const settings = (await liveConfigFile(rc.deps.config.configFile).current()).notifications;
      const requeued = await requeueFailedTask(rc.db, task.id, settings?.max_attempts ?? DEFAULT_MAX_ATTEMPTS);
      if (!requeued) throw conflict(`notification task ${task.id} is no longer failed`);
      let workflowId: string;
      try {
        workflowId = await startNotificationDelivery(temporal.workflows, requeued, settings?.retry_backoff_seconds ?? DEFAULT_RETRY_BACKOFF_SECONDS);
      } catch (err) {
        await returnToFailed(rc.db, task.id, task.last_error ?? 'failed');
        throw new ApiError('SERVICE_UNAVAILABLE', `the task could not be requeued: ${(err as Error).message}`);
      }
      await recordWorkflowOfTask(rc.db, requeued.id, workflowId);
      rc.audit = { targetKind: 'notification_task', targetId: task.id, details: { notification_type: task.notification_type, target: task.target_name } };
      return notificationTaskView({ ...requeued, workflow_id: workflowId });
    },
  }),
];
