import crypto from 'node:crypto';
import { ServiceError } from '@temporalio/client';
import type { Db } from '../../lib/db';
import type { SecretBox } from '../../lib/secret-box';
import type { TemporalDeps } from '../temporal';
import { listProjectJobsets } from '../queries/jobsets';
import { findEnabledWebhookWithSecret, forgetDelivery, recordDelivery } from '../queries/webhooks';
import { DELIVERY_HEADERS, EVENT_HEADERS, forgeEventOf, type ForgeEvent, type ForgeType } from './forge-event';
import { jobsetsToTrigger, type JobsetTrigger } from './jobset-match';
import { SIGNATURE_HEADERS, signatureIsValid } from './signature';
import type { TokenBuckets } from './token-bucket';

/**
 * One forge delivery, from the raw request to the workflows it starts. In order:
 * 1. no enabled webhook for (project, forge): 404;
 * 2. a missing or wrong signature: 401;
 * 3. the project's token bucket is empty: 429 (counted after the signature, so forged requests cannot use up
 *    the bucket and lock the forge's real deliveries out);
 * 4. a body that is not JSON: 400;
 * 5. a delivery ID seen before: 200 `duplicate`, nothing started;
 * 6. an event that matches no jobset: 200 `ignored`, with the reason;
 * 7. otherwise one CheckJobsetWorkflow per matching jobset is started (not awaited), 200 `triggered`;
 *    if Temporal cannot start them, the delivery is forgotten again and answered 503, so a retry is not a duplicate.
 * Nothing is started for 1–5, and the secret never leaves this function.
 */

export interface DeliveryRequest {
  projectId: string;
  forge: ForgeType;
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
}

export interface DeliveryDeps {
  db: Db;
  temporal: TemporalDeps | undefined;
  secretBox: () => SecretBox;
  buckets: TokenBuckets;
}

export interface StartedCheck {
  jobset_id: string;
  jobset_name: string;
  ref: string;
  commit: string;
  pr_number: number | null;
  workflow_id: string;
}

export type DeliveryOutcome =
  | { kind: 'not_configured' }
  | { kind: 'rate_limited'; retryAfterSeconds: number }
  | { kind: 'bad_signature'; header: string }
  | { kind: 'bad_body'; message: string }
  | { kind: 'bad_delivery_id'; header: string }
  | { kind: 'temporal_unavailable' }
  | { kind: 'duplicate'; deliveryId: string; event: string }
  | { kind: 'ignored'; deliveryId: string; event: string; reason: string }
  | { kind: 'triggered'; deliveryId: string; event: string; checks: StartedCheck[] };

function header(headers: DeliveryRequest['headers'], names: string[]): string | undefined {
  for (const name of names) {
    const value = headers[name];
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined && first !== '') return first;
  }
  return undefined;
}

/** JSON, or GitHub's `application/x-www-form-urlencoded` delivery (`payload=<json>`). */
function parsePayload(rawBody: Buffer, contentType: string | undefined): unknown {
  const text = rawBody.toString('utf8');
  if ((contentType ?? '').startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw new SyntaxError('form body without a payload field');
    return JSON.parse(payload);
  }
  return JSON.parse(text);
}

/** The workflow ID of a delivery's check of one jobset: the same delivery never starts two. */
/** What names a delivery's check (lib/workflow-ids.ts `checkJobsetWorkflowId`): the forge and a hash of its delivery ID. */
export function deliveryCheckName(forge: ForgeType, deliveryId: string): string {
  return `${forge}-${crypto.createHash('sha256').update(deliveryId).digest('hex').slice(0, 32)}`;
}

async function startChecks(temporal: TemporalDeps, forge: ForgeType, deliveryId: string, triggers: JobsetTrigger[]): Promise<StartedCheck[]> {
  return Promise.all(
    triggers.map(async (t) => {
      const { workflowId } = await temporal.workflows.startJobsetCheck(
        { jobsetId: t.jobsetId, trigger: 'source_change', commitHash: t.commit, ref: t.ref, pullRequest: t.pullRequest },
        deliveryCheckName(forge, deliveryId),
      );
      return { jobset_id: t.jobsetId, jobset_name: t.jobsetName, ref: t.ref, commit: t.commit, pr_number: t.pullRequest?.number ?? null, workflow_id: workflowId };
    }),
  );
}

function describeEvent(event: string, forgeEvent: ForgeEvent): string {
  return forgeEvent.kind === 'ignored' || forgeEvent.kind === event ? event : `${event} (${forgeEvent.kind})`;
}

export async function receiveDelivery(deps: DeliveryDeps, req: DeliveryRequest): Promise<DeliveryOutcome> {
  const webhook = await findEnabledWebhookWithSecret(deps.db, req.projectId, req.forge);
  if (!webhook) return { kind: 'not_configured' };

  const signatureHeader = SIGNATURE_HEADERS[req.forge];
  const secret = deps.secretBox().open(webhook.secret);
  if (!(await signatureIsValid(req.forge, secret, req.rawBody, header(req.headers, [signatureHeader])))) {
    return { kind: 'bad_signature', header: signatureHeader };
  }
  if (!deps.buckets.take(req.projectId)) return { kind: 'rate_limited', retryAfterSeconds: deps.buckets.secondsUntilToken(req.projectId) };

  let payload: unknown;
  try {
    payload = parsePayload(req.rawBody, header(req.headers, ['content-type']));
  } catch (err) {
    return { kind: 'bad_body', message: (err as Error).message };
  }
  const event = header(req.headers, EVENT_HEADERS[req.forge]) ?? '';
  // A forge that names no delivery (older GitLab) is deduplicated by the body's hash: a byte-identical redelivery.
  const deliveryId = header(req.headers, DELIVERY_HEADERS[req.forge]) ?? `sha256:${crypto.createHash('sha256').update(req.rawBody).digest('hex')}`;
  if (deliveryId.length > 200) return { kind: 'bad_delivery_id', header: DELIVERY_HEADERS[req.forge][0] };

  const forgeEvent = forgeEventOf(req.forge, event, payload);
  const triggers = jobsetsToTrigger(await listProjectJobsets(deps.db, req.projectId), forgeEvent);
  if (triggers.length > 0 && !deps.temporal) return { kind: 'temporal_unavailable' };

  const fresh = await recordDelivery(deps.db, {
    projectId: req.projectId,
    forge: req.forge,
    deliveryId,
    event: describeEvent(event, forgeEvent),
    outcome: triggers.length > 0 ? 'triggered' : 'ignored',
    triggeredJobsets: triggers.map((t) => t.jobsetId),
  });
  if (!fresh) return { kind: 'duplicate', deliveryId, event };
  if (triggers.length === 0) {
    const reason = forgeEvent.kind === 'ignored' ? forgeEvent.reason : `no enabled jobset follows this ${forgeEvent.kind === 'pull_request' ? 'base branch' : forgeEvent.kind}`;
    return { kind: 'ignored', deliveryId, event, reason };
  }
  try {
    return { kind: 'triggered', deliveryId, event, checks: await startChecks(deps.temporal!, req.forge, deliveryId, triggers) };
  } catch (err) {
    // Nothing (or not everything) started: forget the delivery so the forge's retry is not a duplicate.
    // The workflow IDs come from the delivery, so checks that did start are not started twice.
    await forgetDelivery(deps.db, req.projectId, req.forge, deliveryId);
    // Temporal did not answer: a 503 the forge may retry (GitLab does), not a 500.
    if (err instanceof ServiceError) return { kind: 'temporal_unavailable' };
    throw err;
  }
}
