import { ActivityCancellationType, CancellationScope, getExternalWorkflowHandle, isCancellation, proxyActivities, setHandler } from '@temporalio/workflow';
import type { BatchActivities } from '../activities/realise-batch';
import { releaseSlotSignal, stepRealisedSignal, stopBatchSignal, type RealiseBatchInput } from './shared';
import { inBatches } from './in-batches';

const { realiseBatch } = proxyActivities<BatchActivities>({
  // A batch runs as long as its members take; the heartbeat is what notices a dead worker.
  startToCloseTimeout: '7 days',
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 5 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/**
 * One `nix-store --realise` of a batch of queued derivations on one builder (ID
 * `dispatcher-<queue>-batch-<n>`, started by the dispatcher, issue 6). Its activity tells each member's
 * DerivationWorkflow its result as soon as its derivation ends; the workflow then gives the batch's
 * slots back. A member cancelled meanwhile (`stopBatch`) stops the whole process: the activity tells
 * the other unfinished members they were interrupted, and they queue again.
 */
export async function RealiseBatchWorkflow(input: RealiseBatchInput): Promise<void> {
  const scope = new CancellationScope();
  setHandler(stopBatchSignal, () => scope.cancel());
  let builderFailure: string | null = null;
  try {
    await scope.run(() => realiseBatch(input));
  } catch (err) {
    if (!isCancellation(err)) {
      // The activity gave up (its retries spent): every member still waiting hears of a builder failure
      // and asks again; members told already ignore it.
      builderFailure = (err as Error).message ?? 'the batch failed';
      const message = builderFailure;
      await inBatches(input.members, (m) =>
        getExternalWorkflowHandle(m.requestId)
          .signal(stepRealisedSignal, { drvPath: m.drvPath, status: 'builder_failure', outputs: {}, errorMessage: message, builderId: input.builderId, logPath: null })
          .catch(() => undefined),
      );
    }
  }
  await getExternalWorkflowHandle(input.dispatcherId).signal(releaseSlotSignal, {
    requestId: input.batchId,
    builderId: input.builderId,
    builderFailed: builderFailure !== null,
    ...(builderFailure !== null ? { failureMessage: builderFailure } : {}),
  });
}
