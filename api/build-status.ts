import type { TemporalDeps } from './temporal';
import { buildStatusQuery, buildWorkflowId, type BuildStatusView } from '../workflows/shared';

export interface LiveBuildStatus {
  workflow_id: string;
  /** Temporal's view: RUNNING, COMPLETED, CANCELLED, …, or null when Temporal does not answer. */
  execution_status: string | null;
  /** The workflow's own status query: phase, builder, and what it waits for (only while it runs). */
  live: BuildStatusView | null;
}

/** The build's workflow ID and, while it runs, its `status` query (phase, builder, what it waits for). */
export async function liveBuildStatus(temporal: TemporalDeps | undefined, buildId: string): Promise<LiveBuildStatus> {
  const workflowId = buildWorkflowId(buildId);
  if (!temporal) return { workflow_id: workflowId, execution_status: null, live: null };
  const handle = temporal.client.workflow.getHandle(workflowId);
  try {
    const description = await handle.describe();
    const status = description.status.name;
    if (status !== 'RUNNING') return { workflow_id: workflowId, execution_status: status, live: null };
    const live = await Promise.race([
      handle.query(buildStatusQuery),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 2000).unref()),
    ]);
    return { workflow_id: workflowId, execution_status: status, live };
  } catch {
    return { workflow_id: workflowId, execution_status: null, live: null };
  }
}
