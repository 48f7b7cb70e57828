import { defineRoute, type RouteDef } from '../route';
import { notFound } from '../errors';
import { arrayOf, errorBody, idParams, noContent, nullableString, timestamp, uuid } from '../schemas';
import { deleteNews, insertNews, listNews } from '../queries/news';

const newsSchema = {
  type: 'object',
  required: ['id', 'title', 'content', 'created_by', 'created_at'],
  properties: { id: uuid, title: { type: 'string' }, content: { type: 'string' }, created_by: nullableString, created_at: timestamp },
};

export const newsRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/api/v1/news',
    summary: 'List news/announcement entries',
    tag: 'news',
    access: 'public',
    responses: { 200: arrayOf(newsSchema) },
    handler: async (_input, rc) => listNews(rc.db),
  }),
  defineRoute<{}, {}, { title: string; content: string }>({
    method: 'POST',
    path: '/api/v1/news',
    summary: 'Create a news entry (admin only)',
    tag: 'news',
    access: 'admin',
    body: {
      type: 'object',
      required: ['title', 'content'],
      additionalProperties: false,
      properties: { title: { type: 'string', minLength: 1, maxLength: 500 }, content: { type: 'string', minLength: 1, maxLength: 100_000 } },
    },
    responses: { 201: newsSchema, 400: errorBody, 401: errorBody, 403: errorBody },
    handler: async ({ body }, rc) => {
      const entry = await insertNews(rc.db, { title: body.title, content: body.content, created_by: rc.principal?.name ?? null });
      rc.audit = { targetKind: 'news', targetId: entry.id, details: { title: entry.title } };
      return entry;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'DELETE',
    path: '/api/v1/news/{id}',
    summary: 'Delete a news entry (admin only)',
    tag: 'news',
    access: 'admin',
    params: idParams,
    responses: { 204: noContent, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
    handler: async ({ params }, rc) => {
      if (!(await deleteNews(rc.db, params.id))) throw notFound('news entry', params.id);
      rc.audit = { targetKind: 'news', targetId: params.id };
    },
  }),
];
