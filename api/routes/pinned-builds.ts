import { defineRoute, type RouteDef } from '../route';
import { notFound } from '../errors';
import { errorBody, idParams, pageOf, pageQueryProperties } from '../schemas';
import { buildProductSchema, buildSchema } from './builds';
import { buildView } from '../queries/builds';
import { pinnedBuildProducts, unpinBuild } from '../queries/gc-roots';
import { syncGcRoots } from '../../lib/gc-roots';

/** Kept builds: their outputs are GC roots, and these routes list and release them. */
export const pinnedBuildRoutes: RouteDef[] = [
  defineRoute<Record<string, never>, { limit: number; offset: number }>({
    method: 'GET',
    path: '/api/v1/admin/pinned-build-products',
    summary: 'List build products protected by kept builds',
    tag: 'admin',
    access: 'admin',
    query: { type: 'object', additionalProperties: false, properties: pageQueryProperties },
    responses: { 200: pageOf(buildProductSchema), 400: errorBody, 401: errorBody, 403: errorBody },
    handler: async ({ query }, rc) => {
      const page = await pinnedBuildProducts(rc.db, query);
      return { items: page.rows, total: page.total, limit: page.limit, offset: page.offset };
    },
  }),
  defineRoute<{ id: string }>({
    method: 'POST',
    path: '/api/v1/admin/pinned-builds/{id}/unpin',
    summary: 'Clear keep for a build and make its products GC-eligible',
    tag: 'admin',
    access: 'admin',
    params: idParams,
    responses: { 200: buildSchema, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
    handler: async ({ params }, rc) => {
      const build = await unpinBuild(rc.db, params.id);
      if (!build) throw notFound('build', params.id);
      const { removed } = await syncGcRoots(rc.db, rc.deps.config.gcRootsDir);
      rc.audit = { action: 'unpin build', targetKind: 'build', targetId: build.id, details: { keep: false, removed_roots: removed } };
      return buildView(rc.db, build);
    },
  }),
];
