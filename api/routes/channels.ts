import { defineRoute, HANDLED, type RouteDef } from '../route';
import { notFound } from '../errors';
import { arrayOf, errorBody, identifier, idParams, noContent, nullableString, nullableTimestamp, paramsOf, timestamp, uuid } from '../schemas';
import { findProject } from '../queries/projects';
import { deleteChannel, findChannel, listChannels, listProjectChannels, type ChannelRow } from '../queries/channels';
import { promoteByHand, PROMOTE_ACTION } from '../channel-promotion';
import { AGGREGATE_JOB_MAX_LENGTH, createChannel } from '../channel-creation';
import { channelNixexprs, currentEvaluationOf } from '../channel-files';
import { notModified, sendCached } from '../cached-response';
import type { Db } from '../../lib/db';

export const channelSchema = {
  type: 'object',
  required: ['id', 'project_id', 'name', 'jobset_id', 'current_evaluation_id', 'created_at', 'updated_at'],
  properties: {
    id: uuid,
    project_id: uuid,
    name: { type: 'string' },
    jobset_id: uuid,
    current_evaluation_id: { type: ['string', 'null'], format: 'uuid' },
    aggregate_job: { ...nullableString, description: 'the job whose success makes an evaluation good for the channel; null: every build must succeed' },
    promoted_at: nullableTimestamp,
    created_at: timestamp,
    updated_at: timestamp,
  },
};

/** How long a client may reuse a channel file before asking again (it then revalidates by ETag). */
export const CHANNEL_FILE_MAX_AGE_SECONDS = 60;

async function requireChannel(db: Db, id: string): Promise<ChannelRow> {
  const channel = await findChannel(db, id);
  if (!channel) throw notFound('channel', id);
  return channel;
}

const readErrors = { 400: errorBody, 404: errorBody };

export const channelRoutes: RouteDef[] = [
  defineRoute({
    method: 'GET',
    path: '/api/v1/channels',
    summary: 'List channels',
    tag: 'channels',
    access: 'public',
    responses: { 200: arrayOf(channelSchema) },
    handler: async (_input, rc) => listChannels(rc.db),
  }),
  defineRoute<{}, {}, { project_id: string; name: string; jobset_id: string; aggregate_job?: string | null }>({
    method: 'POST',
    path: '/api/v1/channels',
    summary: 'Create a channel',
    tag: 'channels',
    access: 'admin',
    body: {
      type: 'object',
      required: ['project_id', 'name', 'jobset_id'],
      additionalProperties: false,
      properties: {
        project_id: uuid,
        name: identifier,
        jobset_id: uuid,
        aggregate_job: { type: ['string', 'null'], minLength: 1, maxLength: AGGREGATE_JOB_MAX_LENGTH, description: 'promote when this job succeeds (Hydra\'s aggregate); omitted or null: when every build succeeds' },
      },
    },
    responses: { 200: channelSchema, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody },
    handler: async ({ body }, rc) => {
      const created = await createChannel(rc.db, { project_id: body.project_id, name: body.name, jobset_id: body.jobset_id, aggregate_job: body.aggregate_job ?? null });
      rc.audit = { targetKind: 'channel', targetId: created.id, details: { ...body } };
      return created;
    },
  }),
  defineRoute<{ channel_id: string; eval_id: string }>({
    method: 'POST',
    path: '/api/v1/channels/{channel_id}/promote/{eval_id}',
    summary: 'Promote an evaluation to a channel',
    tag: 'channels',
    access: 'admin',
    params: paramsOf(['channel_id', 'eval_id']),
    responses: { 200: channelSchema, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody },
    handler: async ({ params }, rc) => {
      const result = await promoteByHand(rc.db, rc.deps.config, params.channel_id, params.eval_id);
      rc.audit = { action: PROMOTE_ACTION, targetKind: 'channel', targetId: result.channel.id, details: result.auditDetails };
      return result.channel;
    },
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/channels/{id}',
    summary: 'Get a channel',
    tag: 'channels',
    access: 'public',
    params: idParams,
    responses: { 200: channelSchema, ...readErrors },
    handler: async ({ params }, rc) => requireChannel(rc.db, params.id),
  }),
  defineRoute<{ id: string }>({
    method: 'DELETE',
    path: '/api/v1/channels/{id}',
    summary: 'Delete a channel',
    tag: 'channels',
    access: 'admin',
    params: idParams,
    responses: { 204: noContent, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
    handler: async ({ params }, rc) => {
      const channel = await requireChannel(rc.db, params.id);
      await deleteChannel(rc.db, channel.id);
      rc.audit = { targetKind: 'channel', targetId: channel.id, details: { name: channel.name } };
    },
  }),
  defineRoute<{ id: string }>({
    method: 'GET',
    path: '/api/v1/channels/{id}/nixexprs.tar.xz',
    summary: 'Download channel nixexprs tarball',
    tag: 'channels',
    access: 'public',
    params: idParams,
    responses: { 200: { description: 'The channel\'s Nix expressions (deterministic: the same evaluation gives the same bytes)', contentType: 'application/x-xz' }, 304: notModified, ...readErrors },
    handler: async ({ params }, rc) => {
      const channel = await requireChannel(rc.db, params.id);
      const { body, etag } = await channelNixexprs(rc.db, currentEvaluationOf(channel));
      sendCached(rc.koa, { body, etag, contentType: 'application/x-xz', maxAgeSeconds: CHANNEL_FILE_MAX_AGE_SECONDS });
      return HANDLED;
    },
  }),
  defineRoute<{ project_id: string }>({
    method: 'GET',
    path: '/api/v1/projects/{project_id}/channels',
    summary: 'List channels for a project',
    tag: 'channels',
    access: 'public',
    params: paramsOf(['project_id']),
    responses: { 200: arrayOf(channelSchema), ...readErrors },
    handler: async ({ params }, rc) => {
      const project = await findProject(rc.db, params.project_id);
      if (!project) throw notFound('project', params.project_id);
      return listProjectChannels(rc.db, project.id);
    },
  }),
];
