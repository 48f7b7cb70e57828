import { defineRoute, Reply, type RequestContext, type RouteDef } from '../route';
import { ApiError, conflict, invalidField, notFound } from '../errors';
import { arrayOf, errorBody, noContent, paramsOf, timestamp, uuid } from '../schemas';
import { findProject } from '../queries/projects';
import { deleteWebhook, findWebhookByForge, insertWebhook, listWebhooks } from '../queries/webhooks';
import { FORGE_TYPES, type ForgeType } from '../webhooks/forge-event';
import { receiveDelivery, type DeliveryOutcome } from '../webhooks/receive-delivery';
import { TokenBuckets } from '../webhooks/token-bucket';
import { secretBoxFor, secretKeyFileOf } from '../../lib/secret-box';

/**
 * A project's forge webhooks (COMPAT's Webhook: id, project_id, forge_type, enabled, created_at; the secret is
 * write-only, sealed at rest) and the four receivers forges deliver to.
 */

/** Deliveries a project may burst, and the sustained rate after it (per API process). */
export const WEBHOOK_BURST = 60;
export const WEBHOOK_REFILL_PER_SECOND = 1;

const webhookSchema = {
  type: 'object',
  required: ['id', 'project_id', 'forge_type', 'enabled', 'created_at'],
  properties: { id: uuid, project_id: uuid, forge_type: { enum: [...FORGE_TYPES] }, enabled: { type: 'boolean' }, created_at: timestamp },
};

export const FORGE_NAMES: Record<ForgeType, string> = { github: 'GitHub', gitlab: 'GitLab', gitea: 'Gitea', forgejo: 'Forgejo' };

/** Printable ASCII without surrounding spaces: GitLab sends the secret itself as a header value. */
const SECRET_TEXT = /^[!-~](?:[ -~]*[!-~])?$/;

const deliveryAnswerSchema = {
  type: 'object',
  required: ['accepted', 'status'],
  properties: {
    accepted: { type: 'boolean' },
    status: { enum: ['triggered', 'ignored', 'duplicate'] },
    message: { type: 'string' },
    event: { type: 'string' },
    delivery_id: { type: 'string' },
    evaluations_started: {
      type: 'array',
      description: 'One jobset check per matching jobset; the evaluation appears in /evaluations once its inputs are fetched',
      items: {
        type: 'object',
        required: ['jobset_id', 'jobset_name', 'ref', 'commit', 'pr_number', 'workflow_id'],
        properties: {
          jobset_id: uuid,
          jobset_name: { type: 'string' },
          ref: { type: 'string' },
          commit: { type: 'string' },
          pr_number: { type: ['integer', 'null'] },
          workflow_id: { type: 'string' },
        },
      },
    },
  },
};

/** The raw request body the app kept for this route (`RouteDef.rawBody`). */
function rawBodyOf(rc: RequestContext): Buffer {
  const state = rc.koa.state as { rawBody?: Buffer | string };
  const request = rc.koa.request as { rawBody?: Buffer | string };
  const raw = state.rawBody ?? request.rawBody ?? Buffer.alloc(0);
  return typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
}

/** A refusal: the COMPAT error body plus circus's `accepted: false`, and no audit row. */
function refusal(rc: RequestContext, status: number, code: string, message: string, headers: Record<string, string> = {}): Reply {
  rc.audit = { action: 'none' };
  return new Reply(status, { accepted: false, error: message, error_code: code }, headers);
}

function answerOf(outcome: DeliveryOutcome, rc: RequestContext, projectId: string, forge: ForgeType): Reply {
  switch (outcome.kind) {
    case 'not_configured':
      return refusal(rc, 404, 'NOT_FOUND', `project ${projectId} has no enabled ${forge} webhook`);
    case 'rate_limited':
      return refusal(rc, 429, 'RATE_LIMITED', `too many deliveries for project ${projectId}; retry in ${outcome.retryAfterSeconds} s`, {
        'retry-after': String(outcome.retryAfterSeconds),
      });
    case 'bad_signature':
      return refusal(rc, 401, 'UNAUTHORIZED', `missing or invalid ${outcome.header}`);
    case 'bad_body':
      rc.audit = { action: 'none' };
      throw invalidField('body', `must be the forge's JSON payload (${outcome.message})`);
    case 'bad_delivery_id':
      rc.audit = { action: 'none' };
      throw invalidField(`headers.${outcome.header}`, 'must be at most 200 characters');
    case 'temporal_unavailable':
      rc.audit = { action: 'none' };
      throw new ApiError('SERVICE_UNAVAILABLE', 'Temporal is unavailable: no evaluation was started and the delivery was not recorded; deliver it again');
    case 'duplicate':
      rc.audit = { action: 'none' };
      return new Reply(200, { accepted: true, status: 'duplicate', message: `delivery ${outcome.deliveryId} was received before`, event: outcome.event, delivery_id: outcome.deliveryId });
    case 'ignored':
      rc.audit = { action: 'none' };
      return new Reply(200, { accepted: true, status: 'ignored', message: outcome.reason, event: outcome.event, delivery_id: outcome.deliveryId });
    case 'triggered':
      rc.audit = {
        action: 'webhook.trigger',
        targetKind: 'project',
        targetId: projectId,
        details: {
          forge,
          delivery_id: outcome.deliveryId,
          event: outcome.event,
          checks: outcome.checks.map((c) => ({ jobset_id: c.jobset_id, ref: c.ref, commit: c.commit, pr_number: c.pr_number, workflow_id: c.workflow_id })),
        },
      };
      return new Reply(200, {
        accepted: true,
        status: 'triggered',
        message: `${outcome.checks.length} jobset(s) to evaluate`,
        event: outcome.event,
        delivery_id: outcome.deliveryId,
        evaluations_started: outcome.checks,
      });
  }
}

export function webhookRoutes(): RouteDef[] {
  const buckets = new TokenBuckets(WEBHOOK_BURST, WEBHOOK_REFILL_PER_SECOND);

  const receiver = (forge: ForgeType) =>
    defineRoute<{ project_id: string }>({
      method: 'POST',
      path: `/api/v1/webhooks/{project_id}/${forge}`,
      summary: `${FORGE_NAMES[forge]} webhook receiver`,
      tag: 'webhooks',
      access: 'always-public',
      rawBody: true,
      params: paramsOf(['project_id']),
      responses: {
        200: deliveryAnswerSchema,
        400: errorBody,
        401: errorBody,
        404: errorBody,
        429: errorBody,
        503: errorBody,
      },
      handler: async ({ params }, rc) => {
        const outcome = await receiveDelivery(
          { db: rc.db, temporal: rc.deps.temporal, secretBox: () => secretBoxFor(secretKeyFileOf(rc.deps.config)), buckets },
          { projectId: params.project_id, forge, headers: rc.koa.headers, rawBody: rawBodyOf(rc) },
        );
        return answerOf(outcome, rc, params.project_id, forge);
      },
    });

  return [
    defineRoute<{ id: string }>({
      method: 'GET',
      path: '/api/v1/projects/{id}/webhooks',
      summary: 'List configured webhooks (never their secrets)',
      tag: 'webhooks',
      access: 'public',
      params: paramsOf(['id']),
      responses: { 200: arrayOf(webhookSchema), 400: errorBody, 404: errorBody },
      handler: async ({ params }, rc) => {
        if (!(await findProject(rc.db, params.id))) throw notFound('project', params.id);
        return listWebhooks(rc.db, params.id);
      },
    }),
    defineRoute<{ id: string }, {}, { forge_type: ForgeType; secret: string }>({
      method: 'POST',
      path: '/api/v1/projects/{id}/webhooks',
      summary: 'Register a webhook: one per forge and project; the secret is stored encrypted and never returned',
      tag: 'webhooks',
      access: 'create-projects',
      params: paramsOf(['id']),
      body: {
        type: 'object',
        required: ['forge_type', 'secret'],
        additionalProperties: false,
        properties: {
          forge_type: { enum: [...FORGE_TYPES] },
          secret: { type: 'string', minLength: 8, maxLength: 1024, pattern: SECRET_TEXT.source, writeOnly: true, description: 'The shared secret (GitHub, Gitea, Forgejo) or token (GitLab)' },
        },
      },
      responses: { 200: webhookSchema, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody },
      handler: async ({ params, body }, rc) => {
        if (!SECRET_TEXT.test(body.secret)) throw invalidField('body.secret', 'must be printable ASCII without leading or trailing spaces');
        if (!(await findProject(rc.db, params.id))) throw notFound('project', params.id);
        if (await findWebhookByForge(rc.db, params.id, body.forge_type)) {
          throw conflict(`project ${params.id} already has a ${body.forge_type} webhook; delete it to register a new secret`);
        }
        const webhook = await insertWebhook(rc.db, params.id, body.forge_type, secretBoxFor(secretKeyFileOf(rc.deps.config)).seal(body.secret));
        rc.audit = { targetKind: 'webhook', targetId: webhook.id, details: { project_id: params.id, forge_type: body.forge_type } };
        return webhook;
      },
    }),
    defineRoute<{ id: string; webhook_id: string }>({
      method: 'DELETE',
      path: '/api/v1/projects/{id}/webhooks/{webhook_id}',
      summary: 'Delete a webhook',
      tag: 'webhooks',
      access: 'admin',
      params: paramsOf(['id', 'webhook_id']),
      responses: { 204: noContent, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody },
      handler: async ({ params }, rc) => {
        if (!(await deleteWebhook(rc.db, params.id, params.webhook_id))) throw notFound('webhook', params.webhook_id);
        rc.audit = { targetKind: 'webhook', targetId: params.webhook_id, details: { project_id: params.id } };
      },
    }),
    ...FORGE_TYPES.map(receiver),
  ];
}
