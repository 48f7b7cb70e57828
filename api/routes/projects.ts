import { defineRoute, type RouteDef } from '../route';
import { notFound } from '../errors';
import { identifier, idParams, nullableString, pageOf, pageQueryProperties, timestamp, uuid, noContent, errorBody } from '../schemas';
import { findProject, insertProject, pageProjects, updateProject, type ProjectFields } from '../queries/projects';
import { deleteProjectWithJobsetSchedules } from '../jobset-schedules';

export const projectSchema = {
  type: 'object',
  required: ['id', 'name', 'description', 'repository_url', 'enabled', 'cache_enabled', 'created_at', 'updated_at'],
  properties: {
    id: uuid,
    name: { type: 'string' },
    display_name: nullableString,
    description: nullableString,
    repository_url: { type: 'string' },
    homepage: nullableString,
    enabled: { type: 'boolean' },
    cache_enabled: { type: 'boolean' },
    created_at: timestamp,
    updated_at: timestamp,
  },
};

export const repositoryUrl = { type: 'string', minLength: 1, maxLength: 2048 };

export const projectCreateBody = {
  type: 'object',
  required: ['name', 'repository_url'],
  additionalProperties: false,
  properties: {
    name: identifier,
    repository_url: repositoryUrl,
    description: { type: ['string', 'null'], maxLength: 10_000 },
    display_name: { type: ['string', 'null'], maxLength: 200 },
    homepage: { type: ['string', 'null'], maxLength: 2048 },
    enabled: { type: 'boolean' },
    cache_enabled: { type: 'boolean' },
  },
};

const projectUpdateBody = { ...projectCreateBody, required: [], minProperties: 1 };

const errors = { 400: errorBody, 401: errorBody, 403: errorBody };

export const projectRoutes: RouteDef[] = [
  defineRoute<{}, { limit: number; offset: number; enabled?: boolean; q?: string }>({
    method: 'GET',
    path: '/api/v1/projects',
    summary: 'List projects',
    tag: 'projects',
    access: 'public',
    query: {
      type: 'object',
      additionalProperties: false,
      properties: { ...pageQueryProperties, enabled: { type: 'boolean' }, q: { type: 'string', maxLength: 200 } },
    },
    responses: { 200: pageOf(projectSchema), 400: errorBody },
    handler: async ({ query }, rc) => pageProjects(rc.db, query),
  }),
  defineRoute<{}, {}, ProjectFields>({
    method: 'POST',
    path: '/api/v1/projects',
    summary: 'Create a project',
    tag: 'projects',
    access: 'create-projects',
    body: projectCreateBody,
    responses: { 200: projectSchema, ...errors, 409: errorBody },
    handler: async ({ body }, rc) => {
      const project = await insertProject(rc.db, body);
      rc.audit = { targetKind: 'project', targetId: project.id };
      return project;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/projects/{id}',
    summary: 'Get a project',
    tag: 'projects',
    access: 'public',
    params: idParams,
    responses: { 200: projectSchema, 404: errorBody },
    handler: async ({ params }, rc) => (await findProject(rc.db, params.id)) ?? Promise.reject(notFound('project', params.id)),
  }),
  defineRoute<{ id: string }, {}, ProjectFields>({
    method: 'PUT',
    path: '/api/v1/projects/{id}',
    summary: 'Update a project',
    tag: 'projects',
    access: 'admin',
    params: idParams,
    body: projectUpdateBody,
    responses: { 200: projectSchema, ...errors, 404: errorBody, 409: errorBody },
    handler: async ({ params, body }, rc) => {
      const project = await updateProject(rc.db, params.id, body);
      if (!project) throw notFound('project', params.id);
      rc.audit = { targetKind: 'project', targetId: project.id };
      return project;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'DELETE',
    path: '/api/v1/projects/{id}',
    summary: 'Delete a project',
    tag: 'projects',
    access: 'admin',
    params: idParams,
    responses: { 204: noContent, ...errors, 404: errorBody },
    handler: async ({ params }, rc) => {
      if (!(await deleteProjectWithJobsetSchedules(rc.db, rc.deps.temporal, params.id))) throw notFound('project', params.id);
      rc.audit = { targetKind: 'project', targetId: params.id };
    },
  }),
];

