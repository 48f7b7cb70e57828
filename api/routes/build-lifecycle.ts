import { defineRoute, Reply, type RequestContext, type Role, type RouteDef } from '../route';
import { ApiError, conflict, notFound } from '../errors';
import { emptyBody, errorBody, idParams, uuid } from '../schemas';
import type { TemporalDeps } from '../temporal';
import {
  aggregatesOf,
  findBuildRow,
  findBuildSearchContext,
  findEvaluationRow,
  findJobsetRow,
  frontPriority,
  resetBuildForRestart,
  setQueuedBuildPriority,
  transitiveDependents,
} from '../queries/build-lifecycle';
import { isActiveBuildStatus, isFinishedBuildStatus } from '../../lib/statuses';
import { buildEvent } from '../../activities/notifications/events';
import { enqueueNotifications } from '../../activities/notifications/enqueue';
import { cancelUnstartedBuild } from '../../activities/records/builds';

function temporalOf(rc: RequestContext): TemporalDeps {
  if (!rc.deps.temporal) throw new ApiError('SERVICE_UNAVAILABLE', 'Temporal is not configured');
  return rc.deps.temporal;
}

const buildResponse = { type: 'object', required: ['id', 'status'], properties: { id: uuid, status: { type: 'string' } } };
const evaluationResponse = { type: 'object', required: ['id', 'jobset_id', 'status'], properties: { id: uuid, jobset_id: uuid, status: { type: 'string' } } };

/**
 * Cancels one build's workflow. A build whose workflow has not started yet (its evaluation starts them
 * after completing) is marked cancelled here, and its `build_finished` notifications are queued here, as
 * its workflow would have (when that workflow starts, it finds the build finished and sends nothing).
 */
async function cancelBuildWorkflow(rc: RequestContext, temporal: TemporalDeps, buildId: string, why: string): Promise<void> {
  if (await temporal.workflows.cancelBuild(buildId)) return;
  // Held back while a running batch builds its derivation as an extra: that batch stops (its process killed).
  if (!(await cancelUnstartedBuild(rc.db, temporal.workflows, buildId, why))) return;
  const event = await buildEvent(rc.db, buildId, 'build_finished');
  if (event) await enqueueNotifications({ db: rc.db, workflows: temporal.workflows, configFile: rc.deps.config.configFile, publicUrl: rc.deps.config.publicUrl }, event);
}

/** Resets a finished build and starts a new run of its workflow, with the search attributes of its first run. */
async function restartBuild(rc: RequestContext, temporal: TemporalDeps, buildId: string): Promise<void> {
  const context = await findBuildSearchContext(rc.db, buildId);
  if (!context) throw notFound('build', buildId);
  await resetBuildForRestart(rc.db, buildId);
  await temporal.workflows.restartBuild(context);
}

type BuildRow = NonNullable<Awaited<ReturnType<typeof findBuildRow>>>;

/** POST /api/v1/builds/{id}/<action> with body {}: finds the build, runs the action, audits, answers the build. */
function buildActionRoute(
  action: 'cancel' | 'bump' | 'restart',
  summary: string,
  access: Role,
  run: (build: BuildRow, temporal: TemporalDeps, rc: RequestContext) => Promise<Record<string, unknown>>,
): RouteDef {
  return defineRoute<{ id: string }, {}, {}>({
    method: 'POST',
    path: `/api/v1/builds/{id}/${action}`,
    summary,
    tag: 'builds',
    access,
    params: idParams,
    body: emptyBody,
    responses: { 200: buildResponse, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody },
    handler: async ({ params }, rc) => {
      const temporal = temporalOf(rc);
      const build = await findBuildRow(rc.db, params.id);
      if (!build) throw notFound('build', params.id);
      const details = await run(build, temporal, rc);
      rc.audit = { targetKind: 'build', targetId: build.id, details };
      return findBuildRow(rc.db, build.id);
    },
  });
}

export const buildLifecycleRoutes: RouteDef[] = [
  defineRoute<{}, {}, { jobset_id: string; commit_hash?: string }>({
    method: 'POST',
    path: '/api/v1/evaluations/trigger',
    summary: 'Trigger an evaluation',
    tag: 'evaluations',
    access: 'eval-jobset',
    body: {
      type: 'object',
      required: ['jobset_id'],
      additionalProperties: false,
      properties: { jobset_id: uuid, commit_hash: { type: 'string', pattern: '^[0-9a-f]{7,40}$' } },
    },
    responses: { 202: evaluationResponse, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 503: errorBody },
    handler: async ({ body }, rc) => {
      const temporal = temporalOf(rc);
      const jobset = await findJobsetRow(rc.db, body.jobset_id);
      if (!jobset) throw notFound('jobset', body.jobset_id);
      const result = await temporal.workflows.checkJobset({ jobsetId: jobset.id, trigger: 'manual', commitHash: body.commit_hash ?? null });
      const evaluation = await findEvaluationRow(rc.db, result.evaluationId);
      rc.audit = { targetKind: 'evaluation', targetId: result.evaluationId, details: { jobset_id: jobset.id, commit_hash: body.commit_hash ?? null, created: result.created } };
      return new Reply(202, { ...evaluation, created: result.created });
    },
  }),
  buildActionRoute('cancel', 'Cancel a build', 'cancel-build', async (build, temporal, rc) => {
    if (!isActiveBuildStatus(build.status)) throw conflict(`build ${build.id} is ${build.status}, not queued or running`);
    await cancelBuildWorkflow(rc, temporal, build.id, 'cancelled');
    // Dependents that cannot run any more, and aggregates that include it, are cancelled too.
    const dependents = [...(await transitiveDependents(rc.db, build.id)), ...(await aggregatesOf(rc.db, build.id))].filter((d) => isActiveBuildStatus(d.status));
    for (const d of dependents) await cancelBuildWorkflow(rc, temporal, d.id, `dependency ${build.job_name} was cancelled`);
    await temporal.workflows.waitForBuildToClose(build.id, 5000);
    return { cascaded: dependents.map((d) => d.id) };
  }),
  buildActionRoute('bump', 'Bump build priority', 'bump-to-front', async (build, temporal, rc) => {
    if (!isActiveBuildStatus(build.status)) throw conflict(`build ${build.id} is ${build.status}; only queued or running builds can be bumped`);
    const priority = await frontPriority(rc.db, build.priority);
    // The row first: a workflow that starts after this (its evaluation starts them once completed)
    // plans with the new priority; one that runs already gets the update.
    if (!(await setQueuedBuildPriority(rc.db, build.id, priority))) throw conflict(`build ${build.id} is no longer queued or running`);
    await temporal.workflows.bumpBuild(build.id, priority);
    return { priority };
  }),
  buildActionRoute('restart', 'Restart a build', 'restart-jobs', async (build, temporal, rc) => {
    if (!isFinishedBuildStatus(build.status)) throw conflict(`build ${build.id} is ${build.status}; only finished builds can be restarted`);
    await restartBuild(rc, temporal, build.id);
    // Dependents that failed because of this build run again too.
    const dependents = [...(await transitiveDependents(rc.db, build.id)), ...(await aggregatesOf(rc.db, build.id))].filter((d) => d.status === 'dependency_failed');
    for (const d of dependents) {
      await restartBuild(rc, temporal, d.id);
    }
    return { restarted_dependents: dependents.map((d) => d.id) };
  }),
];
