import { log } from '@temporalio/activity';
import type { Db } from '../lib/db';
import { autoPromoteEvaluation, type AutoPromotion } from '../api/channel-promotion';

/**
 * Channel auto-promotion, hooked into the activities that record results. A failure to promote is
 * logged and never fails the build or evaluation that triggered it: the channel simply stays where it
 * is until the next result, or an admin promotes by hand.
 */
async function promoting(what: Record<string, string>, run: () => Promise<AutoPromotion[]>): Promise<void> {
  try {
    for (const p of await run()) {
      if (p.promoted) log.info('channel promoted', { ...what, channel: p.channel });
      else log.debug('channel not promoted', { ...what, channel: p.channel, reason: p.reason });
    }
  } catch (err) {
    log.warn('channel auto-promotion failed', { ...what, error: (err as Error)?.message ?? String(err) });
  }
}

/** After an evaluation completed: every build may have finished before it did. */
export async function promoteChannelsOfEvaluation(db: Db, evaluationId: string): Promise<void> {
  await promoting({ evaluationId }, () => autoPromoteEvaluation(db, evaluationId));
}
