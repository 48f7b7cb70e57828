/**
 * Every Temporal ID Ringmaster gives a workflow or a schedule, built here and nowhere else. An ID names
 * the Postgres row it works for (`build-<id>`, `eval-<id>`), so each one finds the other. Pure functions
 * only: the workflow bundle includes this file.
 */

export const BUILD_WORKFLOW_ID_PREFIX = 'build-';

/** BuildWorkflow: one per build row; a restart is a new run under the same ID. */
export function buildWorkflowId(buildId: string): string {
  return `${BUILD_WORKFLOW_ID_PREFIX}${buildId}`;
}

/** EvaluationWorkflow: one per evaluation row. */
export function evaluationWorkflowId(evaluationId: string): string {
  return `eval-${evaluationId}`;
}

/** CheckJobsetWorkflow started by the API's trigger: one per request (`unique` tells them apart). */
export function checkJobsetWorkflowId(jobsetId: string, unique: string): string {
  return `check-${jobsetId}-${unique}`;
}

/** Derivation and dispatcher workflows are per task queue, so deployments sharing a namespace stay apart. */
export function derivationWorkflowId(taskQueue: string, drvPath: string): string {
  const base = drvPath.replace(/^.*\//, '').replace(/\.drv$/, '');
  return `drv-${taskQueue}-${base}`;
}

const DISPATCHER_WORKFLOW_ID_PREFIX = 'dispatcher-';

/** DispatcherWorkflow: one per deployment, named after its main task queue (it runs on a queue of its own). */
export function dispatcherWorkflowId(taskQueue: string): string {
  return `${DISPATCHER_WORKFLOW_ID_PREFIX}${taskQueue}`;
}

/** The main task queue of the deployment a dispatcher serves, read back from its workflow ID. */
export function taskQueueOfDispatcher(workflowId: string): string {
  return workflowId.startsWith(DISPATCHER_WORKFLOW_ID_PREFIX) ? workflowId.slice(DISPATCHER_WORKFLOW_ID_PREFIX.length) : workflowId;
}

/** SystemProbeWorkflow behind GET /api/v1/admin/system: one per request. */
export function systemProbeWorkflowId(unique: string): string {
  return `system-probe-${unique}`;
}

/** BuilderCheckWorkflow behind `GET /api/v1/admin/builders/{id}?check=true`: one per request. */
export function builderCheckWorkflowId(builderId: string, unique: string): string {
  return `builder-check-${builderId}-${unique}`;
}

/** NotificationWorkflow: one per ordering key (target, commit, context), per task queue; the key is hashed into the ID. */
export function notificationWorkflowId(taskQueue: string, orderKeyHash: string): string {
  return `notify-${taskQueue}-${orderKeyHash}`;
}

/** ServeBuildOutputsWorkflow: serves succeeded builds' outputs (closure sizes, GC roots, binary cache) in batches, one per task queue. */
export function serveBuildOutputsWorkflowId(taskQueue: string): string {
  return `serve-outputs-${taskQueue}`;
}

/** The Temporal Schedule that checks a jobset on its interval. */
export function jobsetScheduleId(jobsetId: string): string {
  return `jobset-${jobsetId}`;
}

/** The CheckJobsetWorkflow runs of a jobset's schedule: Temporal appends the scheduled time to this prefix. */
export function scheduledCheckWorkflowId(jobsetId: string): string {
  return `eval-sched-${jobsetId}`;
}
