import { defineRoute, type RequestContext, type RouteDef } from '../route';
import { notFound } from '../errors';
import { errorBody, idParams, nullableString, nullableTimestamp, pageOf, pageQueryProperties, timestamp, uuid } from '../schemas';
import { BUILD_STATUSES } from '../queries/builds';
import {
  compareEvaluations,
  EVALUATION_STATUSES,
  evaluationView,
  findEvaluation,
  pageEvaluations,
  type EvaluationFilter,
} from '../queries/evaluations';

export const evaluationSchema = {
  type: 'object',
  required: [
    'id', 'jobset_id', 'commit_hash', 'evaluation_time', 'status', 'error_message', 'inputs_hash', 'trigger_kind', 'hidden',
    'source_scope', 'superseded_by', 'created_at',
  ],
  properties: {
    id: uuid,
    jobset_id: uuid,
    commit_hash: nullableString,
    branch: nullableString,
    evaluation_time: nullableTimestamp,
    status: { enum: [...EVALUATION_STATUSES] },
    error_message: nullableString,
    inputs_hash: nullableString,
    trigger_kind: { type: 'string' },
    hidden: { type: 'boolean' },
    source_scope: nullableString,
    superseded_by: { type: ['string', 'null'] },
    workflow_id: nullableString,
    nr_jobs: { type: ['integer', 'null'] },
    nr_errors: { type: ['integer', 'null'] },
    started_at: nullableTimestamp,
    completed_at: nullableTimestamp,
    duration_seconds: { type: ['number', 'null'] },
    pr_number: { type: ['integer', 'null'], description: 'The pull/merge request a forge webhook evaluated (its head commit is commit_hash)' },
    pr_head: { ...nullableString, description: "The pull/merge request's head branch" },
    pr_base: { ...nullableString, description: "The pull/merge request's base branch" },
    created_at: timestamp,
    updated_at: timestamp,
  },
};

export const evaluationDetailSchema = {
  ...evaluationSchema,
  required: [...evaluationSchema.required, 'inputs', 'build_counts', 'errors', 'started_at', 'completed_at', 'duration_seconds', 'workflow_id'],
  properties: {
    ...evaluationSchema.properties,
    project_id: { type: ['string', 'null'] },
    inputs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'input_type', 'value', 'revision'],
        properties: {
          name: { type: 'string' },
          input_type: { type: 'string' },
          value: nullableString,
          revision: nullableString,
          store_path: nullableString,
          dependency_build_id: { type: ['string', 'null'] },
        },
      },
    },
    build_counts: {
      type: 'object',
      properties: { total: { type: 'integer' }, ...Object.fromEntries(BUILD_STATUSES.map((s) => [s, { type: 'integer' }])) },
    },
    errors: {
      type: 'array',
      items: { type: 'object', required: ['job_name', 'error_message'], properties: { job_name: { type: 'string' }, error_message: { type: 'string' } } },
    },
  },
};

const jobDiffSchema = {
  type: 'object',
  required: ['job_name', 'system', 'drv_path', 'status'],
  properties: { job_name: { type: 'string' }, system: { type: 'string' }, drv_path: { type: 'string' }, status: { type: 'string' }, build_id: uuid },
};
const jobFlipProperties = {
  job_name: { type: 'string' },
  system: { type: 'string' },
  old_status: { type: 'string' },
  new_status: { type: 'string' },
  old_build_id: uuid,
  new_build_id: uuid,
};

const comparisonSchema = {
  type: 'object',
  required: ['from_id', 'to_id', 'new_jobs', 'removed_jobs', 'changed_jobs', 'newly_failing', 'fixed', 'unchanged_count'],
  description:
    'As circus: `from` is {id}, `to` is ?to=. new_jobs are only in `to`, removed_jobs only in `from`, changed_jobs have another ' +
    'drv_path; newly_failing succeeded in `from` and failed in `to`, fixed the reverse.',
  properties: {
    from_id: uuid,
    to_id: uuid,
    new_jobs: { type: 'array', items: jobDiffSchema },
    removed_jobs: { type: 'array', items: jobDiffSchema },
    changed_jobs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['job_name', 'old_drv', 'new_drv', 'old_status', 'new_status'],
        properties: { ...jobFlipProperties, old_drv: { type: 'string' }, new_drv: { type: 'string' } },
      },
    },
    newly_failing: { type: 'array', items: { type: 'object', required: ['job_name', 'old_status', 'new_status'], properties: jobFlipProperties } },
    fixed: { type: 'array', items: { type: 'object', required: ['job_name', 'old_status', 'new_status'], properties: jobFlipProperties } },
    unchanged_count: { type: 'integer' },
  },
};

/** Hidden evaluations are shown to admins only, as circus does. */
const isAdmin = (rc: RequestContext) => rc.principal?.role === 'admin';

export const evaluationRoutes: RouteDef[] = [
  defineRoute<{}, EvaluationFilter>({
    method: 'GET',
    path: '/api/v1/evaluations',
    summary: 'List evaluations (hidden ones only for admins)',
    tag: 'evaluations',
    access: 'public',
    query: {
      type: 'object',
      additionalProperties: false,
      properties: { ...pageQueryProperties, project_id: uuid, jobset_id: uuid, status: { enum: [...EVALUATION_STATUSES] } },
    },
    responses: { 200: pageOf(evaluationSchema), 400: errorBody },
    handler: async ({ query }, rc) => pageEvaluations(rc.db, { ...query, include_hidden: isAdmin(rc) }),
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/evaluations/{id}',
    summary: 'Get an evaluation (with its inputs, build counts by status and per-job errors)',
    tag: 'evaluations',
    access: 'public',
    params: idParams,
    responses: { 200: evaluationDetailSchema, 400: errorBody, 404: errorBody },
    handler: async ({ params }, rc) => {
      const evaluation = await findEvaluation(rc.db, params.id);
      if (!evaluation || (evaluation.hidden && !isAdmin(rc))) throw notFound('evaluation', params.id);
      return evaluationView(rc.db, evaluation);
    },
  }),
  defineRoute<{ id: string }, { to: string }>({
    method: 'GET',
    path: '/api/v1/evaluations/{id}/compare',
    summary: 'Compare an evaluation against another',
    tag: 'evaluations',
    access: 'public',
    params: idParams,
    query: { type: 'object', required: ['to'], additionalProperties: false, properties: { to: uuid } },
    responses: { 200: comparisonSchema, 400: errorBody, 404: errorBody },
    handler: async ({ params, query }, rc) => {
      const [from, to] = await Promise.all([findEvaluation(rc.db, params.id), findEvaluation(rc.db, query.to)]);
      if (!from) throw notFound('evaluation', params.id);
      if (!to) throw notFound('evaluation', query.to);
      return compareEvaluations(rc.db, from.id, to.id);
    },
  }),
];
