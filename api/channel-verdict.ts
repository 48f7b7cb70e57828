import type { EvaluationOutcome } from './queries/channels';

/** Whether an evaluation may become a channel's current one, and if not, why. */
export type ChannelVerdict = { good: true } | { good: false; reason: string };

/**
 * An evaluation is good for a channel when it completed, none of its builds is still pending or running
 * (so the channel's contents no longer change), and either
 * - the channel names a job (an aggregate, as Hydra's `tested`) and that job's build succeeded: the other
 *   jobs may fail without holding the channel back; or
 * - the channel names none, and every build succeeded, with no job that failed to evaluate.
 */
export function channelVerdict(outcome: EvaluationOutcome, aggregateJob: string | null): ChannelVerdict {
  if (outcome.status !== 'completed') return { good: false, reason: `the evaluation is ${outcome.status}, not completed` };
  if (outcome.unfinished > 0) return { good: false, reason: `${outcome.unfinished} of its ${outcome.builds} builds have not finished` };
  if (aggregateJob !== null) {
    if (outcome.jobStatus === null || outcome.jobStatus === undefined) return { good: false, reason: `the evaluation has no job ${aggregateJob}` };
    if (outcome.jobStatus !== 'succeeded') return { good: false, reason: `job ${aggregateJob} ended ${outcome.jobStatus}` };
    return { good: true };
  }
  if (outcome.builds === 0) return { good: false, reason: 'the evaluation has no builds' };
  if (outcome.evaluationErrors > 0) return { good: false, reason: `${outcome.evaluationErrors} jobs failed to evaluate` };
  if (outcome.succeeded < outcome.builds) return { good: false, reason: `${outcome.builds - outcome.succeeded} of its ${outcome.builds} builds did not succeed` };
  return { good: true };
}
