import { defineRoute, type RouteDef } from '../route';
import { notFound } from '../errors';
import { arrayOf, errorBody, idParams, noContent, nullable, nullableTimestamp, pageQueryProperties, timestamp, uuid } from '../schemas';
import { findStarredJob, jobExists, listStarredJobs, starJob, unstarJob, type StarTarget } from '../queries/starred-jobs';
import { userIdOf } from './me';

const latestBuildSchema = {
  type: 'object',
  required: ['id', 'status', 'created_at', 'completed_at'],
  properties: { id: uuid, status: { type: 'string' }, created_at: timestamp, completed_at: nullableTimestamp },
};

/** circus's StarredJob (id, user_id, project_id, jobset_id, job_name) plus names and the job's newest build. */
const starredJobSchema = {
  type: 'object',
  required: ['id', 'user_id', 'project_id', 'jobset_id', 'job_name', 'created_at', 'project_name', 'jobset_name', 'latest_build'],
  properties: {
    id: uuid,
    user_id: uuid,
    project_id: uuid,
    jobset_id: uuid,
    job_name: { type: 'string' },
    created_at: timestamp,
    project_name: { type: 'string' },
    jobset_name: { type: 'string' },
    latest_build: { ...nullable(latestBuildSchema), description: 'The newest build of the job in the jobset (any status), or null' },
  },
};

const userOnly = 'Needs a signed-in user (a session, or an API key owned by a user); a key that belongs to no user gets 403.';

export const starredJobRoutes: RouteDef[] = [
  defineRoute<{}, { limit: number; offset: number }>({
    method: 'GET',
    path: '/api/v1/me/starred-jobs',
    summary: 'List starred jobs for the current user',
    tag: 'me',
    access: 'user',
    query: { type: 'object', additionalProperties: false, properties: pageQueryProperties },
    responses: { 200: { ...arrayOf(starredJobSchema), description: userOnly }, 400: errorBody, 401: errorBody, 403: errorBody },
    handler: async ({ query }, rc) => listStarredJobs(rc.db, userIdOf(rc), query),
  }),
  defineRoute<{}, {}, StarTarget>({
    method: 'POST',
    path: '/api/v1/me/starred-jobs',
    summary: 'Star a job',
    tag: 'me',
    access: 'user',
    body: {
      type: 'object',
      required: ['project_id', 'jobset_id', 'job_name'],
      additionalProperties: false,
      properties: { project_id: uuid, jobset_id: uuid, job_name: { type: 'string', minLength: 1, maxLength: 1000 } },
    },
    // Starring a job that is already starred is idempotent: 200 with the existing star (same id).
    responses: { 200: starredJobSchema, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
    handler: async ({ body }, rc) => {
      const userId = userIdOf(rc);
      if (!(await jobExists(rc.db, body))) {
        throw notFound(`job "${body.job_name}" in jobset ${body.jobset_id} of project ${body.project_id}`);
      }
      const id = await starJob(rc.db, userId, body);
      rc.audit = { targetKind: 'starred_job', targetId: id, details: { ...body } };
      return (await findStarredJob(rc.db, userId, id)) ?? Promise.reject(notFound('starred job', id));
    },
  }),
  defineRoute<{ id: string }>({
    method: 'DELETE',
    path: '/api/v1/me/starred-jobs/{id}',
    summary: 'Unstar a job',
    tag: 'me',
    access: 'user',
    params: idParams,
    responses: { 204: noContent, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
    handler: async ({ params }, rc) => {
      if (!(await unstarJob(rc.db, userIdOf(rc), params.id))) throw notFound('starred job', params.id);
      rc.audit = { targetKind: 'starred_job', targetId: params.id, details: {} };
    },
  }),
];
