import { proxyActivities } from '@temporalio/workflow';
import type { CacheActivities } from '../activities/cache';

const { publishBuildOutputsActivity } = proxyActivities<CacheActivities>({
  // A big closure takes a while to compress; the heartbeat, not the total, tells a stuck worker.
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '10 seconds', maximumAttempts: 10 },
});

/**
 * Puts a succeeded build's outputs, with their closures, into the binary cache. finishBuild used to start
 * it as `publish-<build id>` for each build; it queues the build for ServeBuildOutputsWorkflow now (issue 6,
 * in batches). Still registered for the runs started before that change.
 */
export async function PublishBuildOutputsWorkflow(input: { buildId: string; outputs: string[] }): Promise<{ published: number }> {
  return publishBuildOutputsActivity(input);
}
