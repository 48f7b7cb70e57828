import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import { syncGcRoots } from '../lib/gc-roots';
import { ApiError, conflict, invalidField, notFound } from './errors';
import { channelVerdict } from './channel-verdict';
import { writeAuditEntry } from './queries/audit-log';
import {
  evaluationOfBuildWithChannels,
  evaluationOutcome,
  findChannel,
  findPromotableEvaluation,
  hasUnfinishedBuilds,
  listJobsetChannels,
  lockChannel,
  recentCompletedEvaluationIds,
  setChannelEvaluation,
  type ChannelRow,
  type PromotableEvaluation,
} from './queries/channels';

/** The audit action of every promotion, manual or automatic. */
export const PROMOTE_ACTION = 'channel.promote';

/** What an automatic promotion did on one channel, and why not when it did not. */
export interface AutoPromotion {
  channel: string;
  promoted: boolean;
  reason?: string;
}

export interface PromotionResult {
  channel: ChannelRow;
  previousEvaluationId: string | null;
  /** False when the evaluation already was the channel's current one. */
  changed: boolean;
}

/** Evaluations are ordered by creation (the id breaks a tie): a channel only moves forward in it. */
function isOlder(a: PromotableEvaluation, b: PromotableEvaluation): boolean {
  const ta = a.created_at.getTime();
  const tb = b.created_at.getTime();
  return ta < tb || (ta === tb && a.id < b.id);
}

/**
 * Makes the evaluation the channel's current one, refusing (as ApiErrors) an unknown channel or
 * evaluation (404), an evaluation of another jobset (400), an evaluation older than the current one (409)
 * and an evaluation that is not good by the channel's rule (409). The channel's row is locked meanwhile,
 * so concurrent promotions of one channel serialize. `automatic` promotions write their own audit row
 * with the actor `system`; a manual one is audited by the API like every mutation.
 */
export async function promoteEvaluation(db: Db, channelId: string, evaluationId: string, opts: { automatic: boolean }): Promise<PromotionResult> {
  return db.transaction(async (trx) => {
    const channel = await lockChannel(trx, channelId);
    if (!channel) throw notFound('channel', channelId);
    const evaluation = await findPromotableEvaluation(trx, evaluationId);
    if (!evaluation) throw notFound('evaluation', evaluationId);
    if (evaluation.jobset_id !== channel.jobset_id) {
      throw invalidField('params.eval_id', `evaluation ${evaluation.id} is of another jobset than channel ${channel.name} follows (${channel.jobset_id})`);
    }
    if (channel.current_evaluation_id === evaluation.id) return { channel, previousEvaluationId: channel.current_evaluation_id, changed: false };
    if (channel.current_evaluation_id) {
      const current = await findPromotableEvaluation(trx, channel.current_evaluation_id);
      if (current && isOlder(evaluation, current)) {
        throw conflict(`evaluation ${evaluation.id} is older than channel ${channel.name}'s current evaluation ${current.id}: a channel never goes back in time`, {
          current_evaluation_id: current.id,
        });
      }
    }
    const outcome = await evaluationOutcome(trx, evaluation.id, channel.aggregate_job);
    if (!outcome) throw notFound('evaluation', evaluationId);
    const verdict = channelVerdict(outcome, channel.aggregate_job);
    if (!verdict.good) throw conflict(`evaluation ${evaluation.id} is not good enough for channel ${channel.name}: ${verdict.reason}`, { reason: verdict.reason });

    const updated = await setChannelEvaluation(trx, channel.id, evaluation.id);
    if (opts.automatic) {
      await writeAuditEntry(trx as unknown as Db, {
        actorKind: 'system',
        actorId: null,
        actorName: 'system',
        action: PROMOTE_ACTION,
        targetKind: 'channel',
        targetId: channel.id,
        details: promotionDetails(updated, channel.current_evaluation_id, true),
        remoteAddr: null,
      });
    }
    return { channel: updated, previousEvaluationId: channel.current_evaluation_id, changed: true };
  });
}

/**
 * A promotion asked for by a person (POST /api/v1/channels/{channel_id}/promote/{eval_id}, or the dashboard's
 * form): promoteEvaluation's refusals, the channel's GC roots kept in step, and the audit entry's details.
 */
export async function promoteByHand(
  db: Db,
  config: Pick<RingmasterConfig, 'gcRootsDir'>,
  channelId: string,
  evaluationId: string,
): Promise<PromotionResult & { auditDetails: Record<string, unknown> }> {
  const result = await promoteEvaluation(db, channelId, evaluationId, { automatic: false });
  // The channel's current evaluation is kept from garbage collection from now on.
  if (result.changed) await syncGcRoots(db, config.gcRootsDir);
  return { ...result, auditDetails: { ...promotionDetails(result.channel, result.previousEvaluationId, false), changed: result.changed } };
}

/** The audit details of a promotion. */
export function promotionDetails(channel: ChannelRow, previousEvaluationId: string | null, automatic: boolean): Record<string, unknown> {
  return {
    channel: channel.name,
    evaluation_id: channel.current_evaluation_id,
    previous_evaluation_id: previousEvaluationId,
    automatic,
  };
}

/**
 * Promotes the evaluation on every channel that follows its jobset and for which it is good. Called when
 * a build finishes and when an evaluation completes; cheap when nothing can change (no channel follows
 * the jobset, or a build of the evaluation is still open). Refusals are expected here (an older
 * evaluation finishing after a newer one was promoted) and only reported in the result.
 */
export async function autoPromoteEvaluation(db: Db, evaluationId: string): Promise<AutoPromotion[]> {
  const evaluation = await findPromotableEvaluation(db, evaluationId);
  if (!evaluation || evaluation.status !== 'completed') return [];
  const channels = await listJobsetChannels(db, evaluation.jobset_id);
  if (channels.length === 0 || (await hasUnfinishedBuilds(db, evaluationId))) return [];
  const results: AutoPromotion[] = [];
  for (const channel of channels) {
    if (channel.current_evaluation_id === evaluationId) continue;
    results.push(await tryPromote(db, channel, evaluationId));
  }
  return results;
}

/** After a build finished: promotes its evaluation where it is now good. */
export async function autoPromoteAfterBuild(db: Db, buildId: string): Promise<AutoPromotion[]> {
  // One statement for the build of a jobset without channels, as most are (issue 6: statements per build).
  const evaluationId = await evaluationOfBuildWithChannels(db, buildId);
  return evaluationId ? autoPromoteEvaluation(db, evaluationId) : [];
}

/** A new channel starts at the newest good evaluation among its jobset's latest completed ones, if any. */
export async function promoteLatestGoodEvaluation(db: Db, channel: ChannelRow, lookBack = 20): Promise<ChannelRow> {
  for (const evaluationId of await recentCompletedEvaluationIds(db, channel.jobset_id, lookBack)) {
    const outcome = await evaluationOutcome(db, evaluationId, channel.aggregate_job);
    if (!outcome || !channelVerdict(outcome, channel.aggregate_job).good) continue;
    const result = await tryPromote(db, channel, evaluationId);
    if (result.promoted) return (await findChannel(db, channel.id)) ?? channel;
    break;
  }
  return channel;
}

async function tryPromote(db: Db, channel: ChannelRow, evaluationId: string): Promise<AutoPromotion> {
  try {
    const result = await promoteEvaluation(db, channel.id, evaluationId, { automatic: true });
    return { channel: channel.name, promoted: result.changed };
  } catch (err) {
    if (err instanceof ApiError && err.status < 500) return { channel: channel.name, promoted: false, reason: err.message };
    throw err;
  }
}
