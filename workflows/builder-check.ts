import { proxyActivities } from '@temporalio/workflow';
import type { BuilderCheckActivities, BuilderCheckResult } from '../activities/builder-check';

const { checkBuilder } = proxyActivities<BuilderCheckActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 1 },
});

/** Checks one remote builder by building a trivial derivation on it (GET /admin/builders/{id}?check=true). */
export async function BuilderCheckWorkflow(input: { builderId: string }): Promise<BuilderCheckResult> {
  return checkBuilder(input);
}
