import { defineRoute, HANDLED, Reply, type RouteDef } from '../route';
import { notFound } from '../errors';
import { errorBody, identifier } from '../schemas';
import { latestFinishedJobBuild, latestSucceededJobBuild, type JobRef } from '../queries/job-builds';
import { BADGE_LABEL, badgeMessageOf, renderBadge, shieldsEndpoint, UNKNOWN } from '../status-badge';
import { notModified, sendCached } from '../cached-response';
import { publicBaseUrl } from '../public-url';

const jobParams = {
  type: 'object',
  required: ['project', 'jobset', 'job'],
  additionalProperties: false,
  properties: { project: identifier, jobset: identifier, job: { type: 'string', minLength: 1, maxLength: 1000 } },
};

/**
 * Badges change when a build finishes: a minute of reuse keeps a busy README from hammering the server,
 * and the ETag lets a cache revalidate for a 304.
 */
export const BADGE_MAX_AGE_SECONDS = 60;

const svg = (description: string) => ({ description, contentType: 'image/svg+xml' });
const jobName = (ref: JobRef) => `${ref.project}:${ref.jobset}:${ref.job}`;

export const jobBadgeRoutes: RouteDef[] = [
  defineRoute<JobRef>({
    method: 'GET',
    path: '/job/{project}/{jobset}/{job}/badge',
    summary: 'Build status badge SVG',
    tag: 'badges',
    access: 'public',
    params: jobParams,
    responses: {
      200: svg('build: passing, failing, cancelled or pending (no finished build yet), from the newest finished build'),
      304: notModified,
      400: errorBody,
      404: svg('build: unknown, for a project, jobset or job that does not exist'),
    },
    handler: async ({ params }, rc) => {
      const { known, build } = await latestFinishedJobBuild(rc.db, params);
      const message = known ? badgeMessageOf(build?.status) : UNKNOWN;
      sendCached(rc.koa, { body: renderBadge(BADGE_LABEL, message, 'flat'), contentType: 'image/svg+xml', maxAgeSeconds: BADGE_MAX_AGE_SECONDS, status: known ? 200 : 404 });
      return HANDLED;
    },
  }),
  defineRoute<JobRef>({
    method: 'GET',
    path: '/job/{project}/{jobset}/{job}/shield',
    summary: 'Build status shield SVG',
    tag: 'badges',
    access: 'public',
    params: jobParams,
    responses: {
      200: svg('The status as a flat-square SVG; with Accept: application/json, shields.io endpoint JSON ({schemaVersion, label, message, color}) for img.shields.io/endpoint'),
      304: notModified,
      400: errorBody,
      404: svg('build: unknown (SVG), or the error body when JSON was asked for'),
    },
    handler: async ({ params }, rc) => {
      const { known, build } = await latestFinishedJobBuild(rc.db, params);
      const wantsJson = rc.koa.accepts('image/svg+xml', 'application/json') === 'application/json';
      const headers = { Vary: 'Accept' };
      if (wantsJson) {
        if (!known) throw notFound('job', jobName(params));
        const body = JSON.stringify(shieldsEndpoint(BADGE_LABEL, badgeMessageOf(build?.status)));
        sendCached(rc.koa, { body, contentType: 'application/json', maxAgeSeconds: BADGE_MAX_AGE_SECONDS, headers });
      } else {
        const message = known ? badgeMessageOf(build?.status) : UNKNOWN;
        sendCached(rc.koa, { body: renderBadge(BADGE_LABEL, message, 'flat-square'), contentType: 'image/svg+xml', maxAgeSeconds: BADGE_MAX_AGE_SECONDS, status: known ? 200 : 404, headers });
      }
      return HANDLED;
    },
  }),
  defineRoute<JobRef>({
    method: 'GET',
    path: '/job/{project}/{jobset}/{job}/latest',
    summary: 'Redirect to the latest successful build output',
    tag: 'badges',
    access: 'public',
    params: jobParams,
    responses: {
      302: { description: 'Location: the API URL of the job\'s newest succeeded build (/api/v1/builds/{id})', contentType: '' },
      400: errorBody,
      404: errorBody,
    },
    handler: async ({ params }, rc) => {
      const build = await latestSucceededJobBuild(rc.db, params);
      if (!build) throw notFound(`a succeeded build of job ${jobName(params)}`);
      return new Reply(302, undefined, { Location: `${publicBaseUrl(rc)}/api/v1/builds/${build.id}`, 'Cache-Control': 'no-cache' });
    },
  }),
];
