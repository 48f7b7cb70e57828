import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowIdReusePolicy } from '@temporalio/client';
import { defineRoute, Reply, type RequestContext, type Role, type RouteDef } from '../route';
import { ApiError, conflict, notFound } from '../errors';
import { emptyBody, errorBody, idParams, uuid } from '../schemas';
import type { TemporalDeps } from '../temporal';
import { startJobsetCheck } from '../evaluation-trigger';
import {
  aggregatesOf,
  findBuildRow,
  findEvaluationRow,
  findJobsetRow,
  frontPriority,
  markBuildCancelled,
  resetBuildForRestart,
  transitiveDependents,
} from '../queries/build-lifecycle';
import {
  buildWorkflowId,
  bumpBuildUpdate,
  FINISHED_BUILD_STATUSES,
  type BuildInput,
  type CheckJobsetInput,
} from '../../workflows/shared';

const ACTIVE = ['pending', 'running'];

function temporalOf(rc: RequestContext): TemporalDeps {
  if (!rc.deps.temporal) throw new ApiError('SERVICE_UNAVAILABLE', 'Temporal is not configured');
  return rc.deps.temporal;
}

const buildResponse = { type: 'object', required: ['id', 'status'], properties: { id: uuid, status: { type: 'string' } } };
const evaluationResponse = { type: 'object', required: ['id', 'jobset_id', 'status'], properties: { id: uuid, jobset_id: uuid, status: { type: 'string' } } };

/** Cancels one build's workflow; a build whose workflow never started is marked cancelled directly. */
async function cancelBuildWorkflow(rc: RequestContext, temporal: TemporalDeps, buildId: string, why: string): Promise<void> {
  try {
    await temporal.client.workflow.getHandle(buildWorkflowId(buildId)).cancel();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    await markBuildCancelled(rc.db, buildId, why);
  }
}

/** Waits up to `ms` for a build workflow to close, so the answer shows its final status. */
async function settle(temporal: TemporalDeps, buildId: string, ms: number): Promise<void> {
  const handle = temporal.client.workflow.getHandle(buildWorkflowId(buildId));
  await Promise.race([handle.result().catch(() => undefined), new Promise((r) => setTimeout(r, ms).unref())]);
}

async function startBuildRun(temporal: TemporalDeps, buildId: string, restart: boolean): Promise<void> {
  const input: BuildInput = { buildId, restart };
  const start = () =>
    temporal.client.workflow.start('BuildWorkflow', {
      taskQueue: temporal.taskQueue,
      workflowId: buildWorkflowId(buildId),
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    });
  try {
    await start();
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    // The previous run recorded its result but has not closed yet: wait for it, then start anew.
    await settle(temporal, buildId, 10_000);
    await start();
  }
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
      const input: CheckJobsetInput = { jobsetId: jobset.id, trigger: 'manual', commitHash: body.commit_hash ?? null };
      const result = await (await startJobsetCheck(temporal, input)).result();
      const evaluation = await findEvaluationRow(rc.db, result.evaluationId);
      rc.audit = { targetKind: 'evaluation', targetId: result.evaluationId, details: { jobset_id: jobset.id, commit_hash: body.commit_hash ?? null, created: result.created } };
      return new Reply(202, { ...evaluation, created: result.created });
    },
  }),
  buildActionRoute('cancel', 'Cancel a build', 'cancel-build', async (build, temporal, rc) => {
    if (!ACTIVE.includes(build.status)) throw conflict(`build ${build.id} is ${build.status}, not queued or running`);
    await cancelBuildWorkflow(rc, temporal, build.id, 'cancelled');
    // Dependents that cannot run any more, and aggregates that include it, are cancelled too.
    const dependents = [...(await transitiveDependents(rc.db, build.id)), ...(await aggregatesOf(rc.db, build.id))].filter((d) => ACTIVE.includes(d.status));
    for (const d of dependents) await cancelBuildWorkflow(rc, temporal, d.id, `dependency ${build.job_name} was cancelled`);
    await settle(temporal, build.id, 5000);
    return { cascaded: dependents.map((d) => d.id) };
  }),
  buildActionRoute('bump', 'Bump build priority', 'bump-to-front', async (build, temporal, rc) => {
    if (!ACTIVE.includes(build.status)) throw conflict(`build ${build.id} is ${build.status}; only queued or running builds can be bumped`);
    const priority = await frontPriority(rc.db, build.priority);
    try {
      await temporal.client.workflow.getHandle(buildWorkflowId(build.id)).executeUpdate(bumpBuildUpdate, { args: [{ priority }] });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw conflict(`build ${build.id} has no running workflow`);
      throw err;
    }
    return { priority };
  }),
  buildActionRoute('restart', 'Restart a build', 'restart-jobs', async (build, temporal, rc) => {
    if (!(FINISHED_BUILD_STATUSES as readonly string[]).includes(build.status)) throw conflict(`build ${build.id} is ${build.status}; only finished builds can be restarted`);
    await resetBuildForRestart(rc.db, build.id);
    await startBuildRun(temporal, build.id, true);
    // Dependents that failed because of this build run again too.
    const dependents = [...(await transitiveDependents(rc.db, build.id)), ...(await aggregatesOf(rc.db, build.id))].filter((d) => d.status === 'dependency_failed');
    for (const d of dependents) {
      await resetBuildForRestart(rc.db, d.id);
      await startBuildRun(temporal, d.id, true);
    }
    return { restarted_dependents: dependents.map((d) => d.id) };
  }),
];
