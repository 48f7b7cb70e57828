import type { TemporalDeps } from './temporal';
import type { BuildStatusView } from '../workflows/shared';
import { buildWorkflowId } from '../lib/workflow-ids';

export interface LiveBuildStatus {
  workflow_id: string;
  /** Temporal's view: RUNNING, COMPLETED, CANCELLED, …, or null when Temporal does not answer. */
  execution_status: string | null;
  /** The workflow's own status query: phase, builder, and what it waits for (only while it runs). */
  live: BuildStatusView | null;
}

/** The build's workflow ID and, while it runs, its `status` query (phase, builder, what it waits for). */
export async function liveBuildStatus(temporal: TemporalDeps | undefined, buildId: string): Promise<LiveBuildStatus> {
  if (!temporal) return { workflow_id: buildWorkflowId(buildId), execution_status: null, live: null };
  const state = await temporal.workflows.buildState(buildId);
  return { workflow_id: state.workflowId, execution_status: state.executionStatus, live: state.live };
}
