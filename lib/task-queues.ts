/**
 * The task queues a deployment's workers poll. Pure functions only: the workflow bundle includes this file.
 *
 * - `<taskQueue>`: builds, derivations, evaluations, notifications, everything but the dispatcher.
 * - `<taskQueue>-dispatch`: the deployment's one DispatcherWorkflow (and the activities it runs), so its
 *   workflow tasks never wait behind a backlog of build and derivation tasks (issue 6).
 */
export function dispatcherTaskQueue(taskQueue: string): string {
  return `${taskQueue}-dispatch`;
}
