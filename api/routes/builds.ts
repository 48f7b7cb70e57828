import { liveBuildStatus } from '../build-status';
import fs from 'node:fs';
import { defineRoute, HANDLED, sendJsonText, type RouteDef } from '../route';
import { buildListJson, buildPageJson } from '../queries/build-page-json';
import { ApiError, notFound } from '../errors';
import { arrayOf, errorBody, idParams, nullableString, nullableTimestamp, pageQueryProperties, paramsOf, stringArray, timestamp, uuid } from '../schemas';
import type { Db } from '../../lib/db';
import { readBuildLog } from '../../lib/build-log';
import { streamBuildLog } from '../build-log-stream';
import { syncGcRoots } from '../../lib/gc-roots';
import { attachmentDisposition, resolveProductFile } from '../build-product-file';
import { findProject } from '../queries/projects';
import { buildPageOf } from '../bounded-page-schema';
import {
  BUILD_STATUSES,
  buildOutputPaths,
  buildStats,
  buildView,
  findBuild,
  findBuildProduct,
  isBuildFinished,
  listBuildProducts,
  listBuildSteps,
  listConstituents,
  listDependencies,
  listDependents,
  filteredBuilds,
  recentBuilds,
  setBuildKeep,
  type BuildFilter,
  type BuildRow,
} from '../queries/builds';

const nullableInteger = { type: ['integer', 'null'] };

export const buildSchema = {
  type: 'object',
  required: [
    'id', 'evaluation_id', 'job_name', 'drv_path', 'system', 'status', 'priority', 'outputs', 'build_output_path', 'log_path',
    'error_message', 'is_aggregate', 'constituents', 'retry_count', 'max_retries', 'builder_id', 'agent_machine_id', 'keep',
    'signed', 'is_fod', 'meta_description', 'meta_license', 'meta_homepage', 'meta_maintainers', 'required_features',
    'closure_size', 'created_at', 'started_at', 'completed_at', 'project_id', 'jobset_id',
  ],
  properties: {
    id: uuid,
    evaluation_id: uuid,
    project_id: uuid,
    jobset_id: uuid,
    job_name: { type: 'string' },
    drv_path: { type: 'string' },
    system: { type: 'string' },
    status: { enum: [...BUILD_STATUSES] },
    priority: { type: 'integer' },
    outputs: { type: 'object', additionalProperties: { type: 'string' }, description: 'output name → store path' },
    build_output_path: nullableString,
    log_path: nullableString,
    error_message: nullableString,
    is_aggregate: { type: 'boolean' },
    constituents: { type: 'array', items: uuid, description: 'IDs of the constituent builds of an aggregate' },
    retry_count: { type: 'integer' },
    max_retries: { type: 'integer' },
    builder_id: { type: ['string', 'null'] },
    agent_machine_id: nullableString,
    keep: { type: 'boolean' },
    signed: { type: 'boolean' },
    is_fod: { type: 'boolean' },
    meta_description: nullableString,
    meta_license: nullableString,
    meta_homepage: nullableString,
    meta_maintainers: nullableString,
    meta_timeout: nullableInteger,
    meta_max_silent: nullableInteger,
    required_features: stringArray,
    closure_size: nullableInteger,
    workflow_id: nullableString,
    created_at: timestamp,
    updated_at: timestamp,
    started_at: nullableTimestamp,
    completed_at: nullableTimestamp,
  },
};

export const buildStepSchema = {
  type: 'object',
  required: ['id', 'build_id', 'step_number', 'drv_path', 'builder_id', 'status', 'phase', 'started_at', 'completed_at', 'exit_code', 'error_message'],
  properties: {
    id: uuid,
    build_id: uuid,
    step_number: { type: 'integer' },
    drv_path: { type: 'string' },
    builder_id: { type: ['string', 'null'] },
    machine: nullableString,
    status: { type: 'string' },
    phase: nullableString,
    started_at: nullableTimestamp,
    completed_at: nullableTimestamp,
    exit_code: nullableInteger,
    error_message: nullableString,
  },
};

export const buildProductSchema = {
  type: 'object',
  required: ['id', 'build_id', 'name', 'path', 'sha256_hash', 'file_size', 'content_type', 'is_directory', 'gc_root_path', 'created_at'],
  properties: {
    id: uuid,
    build_id: uuid,
    product_type: nullableString,
    subtype: nullableString,
    name: { type: 'string' },
    path: { type: 'string' },
    sha256_hash: nullableString,
    file_size: nullableInteger,
    content_type: nullableString,
    is_directory: { type: 'boolean' },
    gc_root_path: nullableString,
    created_at: timestamp,
  },
};

const countsByStatus = { type: 'object', properties: Object.fromEntries(BUILD_STATUSES.map((s) => [s, { type: 'integer' }])) };

const buildStatsSchema = {
  type: 'object',
  required: ['total', 'by_status', 'queue_depth', 'running', 'succeeded', 'failed', 'total_builds', 'completed_builds', 'failed_builds', 'running_builds', 'pending_builds'],
  properties: {
    total: { type: 'integer' },
    by_status: countsByStatus,
    queue_depth: { type: 'integer', description: 'pending builds' },
    pending: { type: 'integer' },
    running: { type: 'integer' },
    succeeded: { type: 'integer' },
    failed: { type: 'integer', description: 'builds in any failed status' },
    cancelled: { type: 'integer' },
    aborted: { type: 'integer' },
    avg_duration_seconds: { type: ['number', 'null'] },
    total_builds: { type: 'integer' },
    completed_builds: { type: 'integer', description: 'succeeded builds (circus name)' },
    failed_builds: { type: 'integer' },
    running_builds: { type: 'integer' },
    pending_builds: { type: 'integer' },
  },
};

/** The query of a list of builds (the build list's and the search's): a page, or the builds after a cursor, and filters. */
export const buildListQueryProperties = {
  ...pageQueryProperties,
  cursor: { type: 'string', minLength: 1, maxLength: 200, description: 'next_cursor of a page: the builds after it (offset then counts from there)' },
  project_id: uuid,
  jobset_id: uuid,
  status: { enum: [...BUILD_STATUSES] },
  system: { type: 'string', minLength: 1, maxLength: 100 },
  job_name: { type: 'string', minLength: 1, maxLength: 1000 },
};

const notFoundOnly = { 400: errorBody, 404: errorBody };

async function requireBuild(db: Db, id: string): Promise<BuildRow> {
  const build = await findBuild(db, id);
  if (!build) throw notFound('build', id);
  return build;
}

export const buildRoutes: RouteDef[] = [
  defineRoute<{}, BuildFilter>({
    method: 'GET',
    path: '/api/v1/builds',
    summary: 'List builds',
    tag: 'builds',
    access: 'public',
    coalesce: true,
    query: {
      type: 'object',
      additionalProperties: false,
      properties: { ...buildListQueryProperties, evaluation_id: uuid },
    },
    responses: { 200: buildPageOf(buildSchema), 400: errorBody },
    handler: async ({ query }, rc) => {
      const { query: matching, unfiltered } = filteredBuilds(rc.db, query);
      return sendJsonText(rc, await buildPageJson(rc.db, matching, query, unfiltered));
    },
  }),
  defineRoute<{}, { limit: number }>({
    method: 'GET',
    path: '/api/v1/builds/recent',
    summary: 'Most recent builds',
    tag: 'builds',
    access: 'public',
    query: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 20 } } },
    responses: { 200: arrayOf(buildSchema), 400: errorBody },
    handler: async ({ query }, rc) => recentBuilds(rc.db, query.limit),
  }),
  defineRoute({
    method: 'GET',
    path: '/api/v1/builds/stats',
    summary: 'Build statistics',
    tag: 'builds',
    access: 'public',
    coalesce: true,
    responses: { 200: buildStatsSchema },
    handler: async (_input, rc) => buildStats(rc.db),
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{id}',
    summary: 'Get a build',
    tag: 'builds',
    access: 'public',
    params: idParams,
    responses: { 200: buildSchema, ...notFoundOnly },
    handler: async ({ params }, rc) => {
      const view = await buildView(rc.db, await requireBuild(rc.db, params.id));
      return { ...view, workflow: await liveBuildStatus(rc.deps.temporal, params.id) };
    },
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{id}/steps',
    summary: 'List build steps',
    tag: 'builds',
    access: 'public',
    params: idParams,
    responses: { 200: arrayOf(buildStepSchema), ...notFoundOnly },
    handler: async ({ params }, rc) => listBuildSteps(rc.db, (await requireBuild(rc.db, params.id)).id),
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{id}/dependencies',
    summary: 'List builds this build depends on',
    tag: 'builds',
    access: 'public',
    params: idParams,
    responses: { 200: arrayOf(buildSchema), ...notFoundOnly },
    handler: async ({ params }, rc) => listDependencies(rc.db, (await requireBuild(rc.db, params.id)).id),
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{id}/dependents',
    summary: 'List builds that depend on this build',
    tag: 'builds',
    access: 'public',
    params: idParams,
    responses: { 200: arrayOf(buildSchema), ...notFoundOnly },
    handler: async ({ params }, rc) => listDependents(rc.db, (await requireBuild(rc.db, params.id)).id),
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{id}/constituents',
    summary: 'List constituents of an aggregate build (422 BUILD_ERROR when the build is not an aggregate)',
    tag: 'builds',
    access: 'public',
    params: idParams,
    responses: { 200: arrayOf(buildSchema), ...notFoundOnly, 422: errorBody },
    handler: async ({ params }, rc) => {
      const build = await requireBuild(rc.db, params.id);
      if (!build.is_aggregate) throw new ApiError('BUILD_ERROR', `build ${build.id} (${build.job_name}) is not an aggregate build`);
      return listConstituents(rc.db, build.id);
    },
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{id}/log',
    summary: 'Get build log (text)',
    tag: 'builds',
    access: 'public',
    params: idParams,
    responses: { 200: { description: 'The build log', contentType: 'text/plain' }, ...notFoundOnly },
    handler: async ({ params }, rc) => {
      const build = await requireBuild(rc.db, params.id);
      const log = await readBuildLog(rc.deps.config.dataDir, build.id);
      if (log === undefined) throw notFound(`log of build ${build.id} (none yet)`);
      rc.koa.status = 200;
      rc.koa.type = 'text/plain; charset=utf-8';
      rc.koa.body = log;
      return HANDLED;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{id}/log/stream',
    summary: 'SSE-stream the live build log (data: lines as they arrive, then event: end)',
    tag: 'builds',
    access: 'public',
    params: idParams,
    responses: { 200: { description: 'Server-Sent Events: `data:` lines of log text, then `event: end`', contentType: 'text/event-stream' }, ...notFoundOnly },
    handler: async ({ params }, rc) => {
      const build = await requireBuild(rc.db, params.id);
      streamBuildLog(rc.koa, { dataDir: rc.deps.config.dataDir, buildId: build.id, isFinished: () => isBuildFinished(rc.db, build.id) });
      return HANDLED;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{id}/products',
    summary: 'List build products',
    tag: 'builds',
    access: 'public',
    params: idParams,
    responses: { 200: arrayOf(buildProductSchema), ...notFoundOnly },
    handler: async ({ params }, rc) => listBuildProducts(rc.db, (await requireBuild(rc.db, params.id)).id),
  }),
  defineRoute<{ build_id: string; product_id: string }>({
    method: 'GET',
    path: '/api/v1/builds/{build_id}/products/{product_id}/download',
    summary: 'Download a build product (binary stream)',
    tag: 'builds',
    access: 'public',
    params: paramsOf(['build_id', 'product_id']),
    responses: { 200: { description: 'The product file', contentType: 'application/octet-stream' }, ...notFoundOnly, 403: errorBody },
    handler: async ({ params }, rc) => {
      const build = await requireBuild(rc.db, params.build_id);
      const product = await findBuildProduct(rc.db, build.id, params.product_id);
      if (!product) throw notFound(`product ${params.product_id} of build`, build.id);
      const { file, size } = await resolveProductFile(product, await buildOutputPaths(rc.db, build));
      rc.koa.status = 200;
      rc.koa.type = product.content_type || 'application/octet-stream';
      rc.koa.set('content-disposition', attachmentDisposition(product.name));
      rc.koa.body = fs.createReadStream(file);
      rc.koa.length = size;
      return HANDLED;
    },
  }),
  defineRoute<{ id: string; value: 'true' | 'false' | '1' | '0' }>({
    method: 'PUT',
    path: '/api/v1/builds/{id}/keep/{value}',
    summary: 'Pin or unpin a build from GC',
    tag: 'builds',
    access: 'admin',
    params: {
      type: 'object',
      required: ['id', 'value'],
      additionalProperties: false,
      properties: { id: uuid, value: { enum: ['true', 'false', '1', '0'] } },
    },
    responses: { 200: buildSchema, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
    handler: async ({ params }, rc) => {
      const keep = params.value === 'true' || params.value === '1';
      const build = await setBuildKeep(rc.db, params.id, keep);
      if (!build) throw notFound('build', params.id);
      await syncGcRoots(rc.db, rc.deps.config.gcRootsDir);
      rc.audit = { targetKind: 'build', targetId: build.id, details: { keep } };
      return buildView(rc.db, build);
    },
  }),
  defineRoute<{ id: string }, { limit: number; offset: number }>({
    method: 'GET',
    path: '/api/v1/projects/{id}/builds',
    summary: 'List builds for a project (a bare array, newest first, as circus answers)',
    tag: 'builds',
    access: 'public',
    coalesce: true,
    params: idParams,
    query: { type: 'object', additionalProperties: false, properties: pageQueryProperties },
    responses: { 200: arrayOf(buildSchema), ...notFoundOnly },
    handler: async ({ params, query }, rc) => {
      // Both at once (one round trip, not two): an unknown project's list is empty, and answered as a 404.
      const [project, list] = await Promise.all([findProject(rc.db, params.id), buildListJson(rc.db, filteredBuilds(rc.db, { project_id: params.id }).query, query)]);
      if (!project) throw notFound('project', params.id);
      return sendJsonText(rc, list);
    },
  }),
];
