import { defineRoute, sendJsonText, type RouteDef } from '../route';
import { invalidField } from '../errors';
import { errorBody, timestamp, uuid } from '../schemas';
import { quickSearch, searchBuildsJson, type BuildSearch } from '../queries/search';
import { buildListQueryProperties, buildSchema } from './builds';
import { buildPageOf } from '../bounded-page-schema';

/** Free text a user types: no NUL (PostgreSQL text cannot hold it), bounded length. */
export const searchText = (minLength: number, maxLength: number) => ({ type: 'string', minLength, maxLength, pattern: '^[^\\u0000]*$' });

const quickSearchSchema = {
  type: 'object',
  required: ['projects', 'jobsets', 'jobs'],
  properties: {
    projects: {
      type: 'array',
      items: { type: 'object', required: ['id', 'name'], properties: { id: uuid, name: { type: 'string' }, description: { type: ['string', 'null'] } } },
    },
    jobsets: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'name', 'project_id', 'project_name'],
        properties: { id: uuid, name: { type: 'string' }, project_id: uuid, project_name: { type: 'string' } },
      },
    },
    jobs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'jobset_id', 'jobset_name', 'project_id', 'project_name'],
        properties: { name: { type: 'string' }, jobset_id: uuid, jobset_name: { type: 'string' }, project_id: uuid, project_name: { type: 'string' } },
      },
    },
  },
};

export const searchRoutes: RouteDef[] = [
  defineRoute<{}, BuildSearch>({
    method: 'GET',
    path: '/api/v1/search',
    summary: 'Advanced search over builds: job name (q: part of it), project, jobset, status, system, store path (output or .drv, whole or a prefix) and creation time (from, to); newest first',
    tag: 'search',
    access: 'public',
    coalesce: true,
    query: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...buildListQueryProperties,
        q: { ...searchText(3, 200), description: 'part of the job name (at least 3 characters; a prefix when the server lacks pg_trgm)' },
        project: { ...searchText(1, 100), description: 'project name' },
        jobset: { ...searchText(1, 100), description: 'jobset name' },
        store_path: {
          type: 'string',
          minLength: 3,
          maxLength: 500,
          pattern: '^[^\\u0000]*$',
          description: 'an output or .drv path, whole or a prefix: /nix/store/<hash>-<name>, /nix/store/<hash>, or just <hash>',
        },
        from: { ...timestamp, description: 'builds created at or after (RFC 3339)' },
        to: { ...timestamp, description: 'builds created before (RFC 3339)' },
      },
    },
    responses: { 200: buildPageOf(buildSchema), 400: errorBody },
    handler: async ({ query }, rc) => {
      if (query.from && query.to && Date.parse(query.from) > Date.parse(query.to)) throw invalidField('query.from', 'must not be after query.to');
      return sendJsonText(rc, await searchBuildsJson(rc.db, query));
    },
  }),
  defineRoute<{}, { q: string; limit: number }>({
    method: 'GET',
    path: '/api/v1/search/quick',
    summary: 'Quick search (autocomplete): projects, jobsets and jobs whose names contain q',
    tag: 'search',
    access: 'public',
    query: {
      type: 'object',
      additionalProperties: false,
      required: ['q'],
      properties: {
        q: { ...searchText(2, 100), description: 'part of a name (at least 2 characters)' },
        limit: { type: 'integer', minimum: 1, maximum: 50, default: 10, description: 'at most this many of each kind' },
      },
    },
    responses: { 200: quickSearchSchema, 400: errorBody },
    handler: async ({ query }, rc) => quickSearch(rc.db, query.q, query.limit),
  }),
];
