import { defineRoute, type JsonSchema, type RouteDef } from '../route';
import { notFound } from '../errors';
import { arrayOf, errorBody, identifier, noContent, nullableString, nullableTimestamp, pageOf, pageQueryProperties, paramsOf, timestamp, uuid } from '../schemas';
import { findProject } from '../queries/projects';
import {
  deleteJobset,
  deleteJobsetInput,
  findJobset,
  insertJobset,
  insertJobsetInput,
  INPUT_TYPES,
  JOBSET_STATES,
  listJobsetInputs,
  pageJobsets,
  TRIGGER_MODES,
  updateJobset,
  type JobsetFields,
  type JobsetInputFields,
} from '../queries/jobsets';
import { withJobsetSchedules } from '../jobset-schedules';
import { checkJobsetInput, jobsetFieldProblems, throwIfProblems } from '../jobset-validation';

const MAX_INT = 2_147_483_647;
const seconds = (minimum: number, maximum = MAX_INT): JsonSchema => ({ type: 'integer', minimum, maximum });

export const jobsetSchema: JsonSchema = {
  type: 'object',
  required: [
    'id', 'project_id', 'name', 'description', 'nix_expression', 'flake_mode', 'enabled', 'check_interval', 'trigger_mode', 'state',
    'branch', 'branch_pattern', 'tag_pattern', 'scheduling_shares', 'keep_nr', 'systems', 'only_build_latest', 'path_filters',
    'last_checked_at', 'created_at', 'updated_at', 'build_timeout', 'max_silent',
  ],
  properties: {
    id: uuid,
    project_id: uuid,
    name: { type: 'string' },
    description: nullableString,
    nix_expression: { type: 'string' },
    flake_mode: { type: 'boolean' },
    enabled: { type: 'boolean' },
    check_interval: { type: 'integer', description: 'seconds between scheduled checks; 0 means off' },
    trigger_mode: { type: 'string', enum: [...TRIGGER_MODES] },
    state: { type: 'string', enum: [...JOBSET_STATES] },
    branch: nullableString,
    branch_pattern: nullableString,
    tag_pattern: nullableString,
    scheduling_shares: { type: 'integer' },
    keep_nr: { type: 'integer' },
    systems: { type: ['array', 'null'], items: { type: 'string' } },
    only_build_latest: { type: 'boolean' },
    path_filters: { type: ['array', 'null'], items: { type: 'string' } },
    build_timeout: { type: 'integer', description: 'seconds' },
    max_silent: { type: 'integer', description: 'seconds' },
    error_message: nullableString,
    last_checked_at: nullableTimestamp,
    created_at: timestamp,
    updated_at: timestamp,
  },
};

/** The writable jobset fields; shared by jobset create/update and project setup. */
export const jobsetWritableProperties: Record<string, JsonSchema> = {
  name: identifier,
  description: { type: ['string', 'null'], maxLength: 10_000 },
  nix_expression: { type: 'string', minLength: 1, maxLength: 4096 },
  flake_mode: { type: 'boolean' },
  enabled: { type: 'boolean' },
  check_interval: seconds(0, 31_536_000),
  trigger_mode: { type: 'string', enum: [...TRIGGER_MODES] },
  state: { type: 'string', enum: [...JOBSET_STATES] },
  branch: { type: ['string', 'null'], minLength: 1, maxLength: 255 },
  branch_pattern: { type: ['string', 'null'], maxLength: 1024 },
  tag_pattern: { type: ['string', 'null'], maxLength: 1024 },
  scheduling_shares: { type: 'integer', minimum: 1, maximum: 1_000_000 },
  keep_nr: { type: 'integer', minimum: 0, maximum: 100_000 },
  systems: {
    type: ['array', 'null'],
    maxItems: 64,
    uniqueItems: true,
    items: { type: 'string', pattern: '^[A-Za-z0-9_]+-[A-Za-z0-9_]+$', maxLength: 64 },
  },
  only_build_latest: { type: 'boolean' },
  path_filters: { type: ['array', 'null'], maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 1024 } },
  build_timeout: seconds(1),
  max_silent: seconds(1),
};

export const jobsetCreateBody: JsonSchema = {
  type: 'object',
  required: ['name', 'nix_expression'],
  additionalProperties: false,
  properties: jobsetWritableProperties,
};

const jobsetUpdateBody: JsonSchema = { ...jobsetCreateBody, required: [], minProperties: 1 };

export const jobsetInputSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'jobset_id', 'name', 'input_type', 'value', 'revision', 'created_at'],
  properties: {
    id: uuid,
    jobset_id: uuid,
    name: { type: 'string' },
    input_type: { type: 'string', enum: [...INPUT_TYPES] },
    value: { type: 'string' },
    revision: nullableString,
    created_at: timestamp,
  },
};

const jobsetInputCreateBody: JsonSchema = {
  type: 'object',
  required: ['name', 'input_type', 'value'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    input_type: { type: 'string', enum: [...INPUT_TYPES] },
    value: { type: 'string', maxLength: 65_536 },
    revision: { type: ['string', 'null'], minLength: 1, maxLength: 255 },
  },
};

const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };

interface ProjectJobsetParams {
  project_id: string;
  id: string;
}
interface JobsetInputsParams {
  project_id: string;
  jobset_id: string;
}

async function requireJobset(rc: { db: Parameters<typeof findJobset>[0] }, projectId: string, jobsetId: string) {
  const jobset = await findJobset(rc.db, projectId, jobsetId);
  if (!jobset) throw notFound('jobset', jobsetId);
  return jobset;
}

export const jobsetRoutes: RouteDef[] = [
  defineRoute<{ id: string }, { limit: number; offset: number }>({
    method: 'GET',
    path: '/api/v1/projects/{id}/jobsets',
    summary: 'List jobsets for a project',
    tag: 'jobsets',
    access: 'public',
    params: paramsOf(['id']),
    query: { type: 'object', additionalProperties: false, properties: pageQueryProperties },
    responses: { 200: pageOf(jobsetSchema), 400: errorBody, 404: errorBody },
    handler: async ({ params, query }, rc) => {
      if (!(await findProject(rc.db, params.id))) throw notFound('project', params.id);
      return pageJobsets(rc.db, params.id, query);
    },
  }),
  defineRoute<{ id: string }, {}, JobsetFields>({
    method: 'POST',
    path: '/api/v1/projects/{id}/jobsets',
    summary: 'Create a jobset in a project',
    tag: 'jobsets',
    access: 'create-projects',
    params: paramsOf(['id']),
    body: jobsetCreateBody,
    responses: { 200: jobsetSchema, ...errors, 409: errorBody },
    handler: async ({ params, body }, rc) => {
      throwIfProblems(jobsetFieldProblems(body, undefined));
      const jobset = await withJobsetSchedules(rc.db, rc.deps.temporal, async (trx, schedules) => {
        // Lock the project row so a concurrent project delete cannot slip between check and insert.
        if (!(await trx('projects').where({ id: params.id }).forShare().first())) throw notFound('project', params.id);
        const created = await insertJobset(trx, params.id, body);
        await schedules.sync(created, undefined);
        return created;
      });
      rc.audit = { targetKind: 'jobset', targetId: jobset.id, details: { project_id: params.id, ...body } };
      return jobset;
    },
  }),
  defineRoute<ProjectJobsetParams>({
    method: 'GET',
    path: '/api/v1/projects/{project_id}/jobsets/{id}',
    summary: 'Get a jobset',
    tag: 'jobsets',
    access: 'public',
    params: paramsOf(['project_id', 'id']),
    responses: { 200: jobsetSchema, 400: errorBody, 404: errorBody },
    handler: async ({ params }, rc) => requireJobset(rc, params.project_id, params.id),
  }),
  defineRoute<ProjectJobsetParams, {}, JobsetFields>({
    method: 'PUT',
    path: '/api/v1/projects/{project_id}/jobsets/{id}',
    summary: 'Update a jobset',
    tag: 'jobsets',
    access: 'admin',
    params: paramsOf(['project_id', 'id']),
    body: jobsetUpdateBody,
    responses: { 200: jobsetSchema, ...errors, 409: errorBody },
    handler: async ({ params, body }, rc) => {
      const jobset = await withJobsetSchedules(rc.db, rc.deps.temporal, async (trx, schedules) => {
        const previous = await findJobset(trx, params.project_id, params.id, { forUpdate: true });
        if (!previous) throw notFound('jobset', params.id);
        throwIfProblems(jobsetFieldProblems(body, previous));
        const updated = await updateJobset(trx, params.project_id, params.id, body);
        if (!updated) throw notFound('jobset', params.id);
        await schedules.sync(updated, previous);
        return updated;
      });
      rc.audit = { targetKind: 'jobset', targetId: jobset.id, details: { project_id: params.project_id, ...body } };
      return jobset;
    },
  }),
  defineRoute<ProjectJobsetParams>({
    method: 'DELETE',
    path: '/api/v1/projects/{project_id}/jobsets/{id}',
    summary: 'Delete a jobset',
    tag: 'jobsets',
    access: 'admin',
    params: paramsOf(['project_id', 'id']),
    responses: { 204: noContent, ...errors },
    handler: async ({ params }, rc) => {
      await withJobsetSchedules(rc.db, rc.deps.temporal, async (trx, schedules) => {
        const deleted = await deleteJobset(trx, params.project_id, params.id);
        if (!deleted) throw notFound('jobset', params.id);
        await schedules.delete(deleted);
      });
      rc.audit = { targetKind: 'jobset', targetId: params.id, details: { project_id: params.project_id } };
    },
  }),

  defineRoute<JobsetInputsParams>({
    method: 'GET',
    path: '/api/v1/projects/{project_id}/jobsets/{jobset_id}/inputs',
    summary: 'List jobset inputs',
    tag: 'jobsets',
    access: 'public',
    params: paramsOf(['project_id', 'jobset_id']),
    responses: { 200: arrayOf(jobsetInputSchema), 400: errorBody, 404: errorBody },
    handler: async ({ params }, rc) => {
      await requireJobset(rc, params.project_id, params.jobset_id);
      return listJobsetInputs(rc.db, params.jobset_id);
    },
  }),
  defineRoute<JobsetInputsParams, {}, JobsetInputFields>({
    method: 'POST',
    path: '/api/v1/projects/{project_id}/jobsets/{jobset_id}/inputs',
    summary: 'Create a jobset input',
    tag: 'jobsets',
    access: 'admin',
    params: paramsOf(['project_id', 'jobset_id']),
    body: jobsetInputCreateBody,
    responses: { 200: jobsetInputSchema, ...errors, 409: errorBody },
    handler: async ({ params, body }, rc) => {
      await checkJobsetInput(body);
      const input = await rc.db.transaction(async (trx) => {
        if (!(await trx('jobsets').where({ id: params.jobset_id, project_id: params.project_id }).forShare().first())) {
          throw notFound('jobset', params.jobset_id);
        }
        return insertJobsetInput(trx, params.jobset_id, body);
      });
      rc.audit = { targetKind: 'jobset_input', targetId: input.id, details: { jobset_id: params.jobset_id, name: body.name, input_type: body.input_type } };
      return input;
    },
  }),
  defineRoute<JobsetInputsParams & { input_id: string }>({
    method: 'DELETE',
    path: '/api/v1/projects/{project_id}/jobsets/{jobset_id}/inputs/{input_id}',
    summary: 'Delete a jobset input',
    tag: 'jobsets',
    access: 'admin',
    params: paramsOf(['project_id', 'jobset_id', 'input_id']),
    responses: { 204: noContent, ...errors },
    handler: async ({ params }, rc) => {
      await requireJobset(rc, params.project_id, params.jobset_id);
      if (!(await deleteJobsetInput(rc.db, params.jobset_id, params.input_id))) throw notFound('jobset input', params.input_id);
      rc.audit = { targetKind: 'jobset_input', targetId: params.input_id, details: { jobset_id: params.jobset_id } };
    },
  }),
];
