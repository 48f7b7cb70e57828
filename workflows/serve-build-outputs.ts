import { allHandlersFinished, condition, continueAsNew, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { CacheActivities } from '../activities/cache';
import { buildOutputsQueuedSignal } from './shared';

const { serveQueuedBuildOutputsActivity } = proxyActivities<CacheActivities>({
  // A round compresses what its builds' closures add to the cache; the heartbeat, not the total, tells a stuck worker.
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '10 seconds', maximumInterval: '5 minutes' },
});

/** How long a run with nothing queued waits for more before it completes (the next signal-with-start begins a new run). */
const IDLE_BEFORE_CLOSING = '2 minutes';
/** How long before a build whose publication failed is tried again. */
const RETRY_FAILED_AFTER = '30 seconds';

/**
 * One per task queue (ID `serve-outputs-<queue>`): serves the outputs of succeeded builds in batches
 * (issue 6), where each build used to do it in its last workflow task and its own
 * `PublishBuildOutputsWorkflow`. `finishBuild` queues the build in PostgreSQL (`build_outputs_to_serve`)
 * and wakes this workflow by signal-with-start only when the queue was empty; one activity then records
 * the closure sizes, updates the GC roots and publishes to the binary cache, round after round, until
 * the queue is empty.
 */
export async function ServeBuildOutputsWorkflow(
  /** Serve at once: a wake that arrived, or a retry that was due, before the previous run continued as new. */
  wakeAtStart = false,
): Promise<{ served: number }> {
  let queued = wakeAtStart;
  setHandler(buildOutputsQueuedSignal, () => {
    queued = true;
  });
  let served = 0;
  for (;;) {
    if (!(await condition(() => queued, IDLE_BEFORE_CLOSING))) return { served };
    queued = false;
    const round = await serveQueuedBuildOutputsActivity();
    served += round.served;
    if (round.retryLater) {
      await sleep(RETRY_FAILED_AFTER);
      queued = true;
    }
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 2000) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof ServeBuildOutputsWorkflow>(queued);
    }
  }
}
