import { proxyActivities } from '@temporalio/workflow';
import type { SystemActivities } from '../activities/system';

const { probeWorkerActivity } = proxyActivities<SystemActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 2 },
});

/** A tiny round trip through Temporal: workflow task, one activity, result. Used by /admin/system. */
export async function SystemProbeWorkflow(): Promise<{ activity: string }> {
  const activity = await probeWorkerActivity();
  return { activity };
}
