import { WorkflowNotFoundError } from '@temporalio/client';
import type { TemporalDeps } from './temporal';
import { buildersChangedSignal, dispatcherWorkflowId } from '../workflows/shared';

/** Tells the running dispatcher that the builders changed, so it reloads them (no dispatcher yet: nothing to do). */
export async function notifyDispatcherOfBuilders(temporal: TemporalDeps | undefined): Promise<void> {
  if (!temporal) return;
  try {
    await temporal.client.workflow.getHandle(dispatcherWorkflowId(temporal.taskQueue)).signal(buildersChangedSignal);
  } catch (err) {
    // No dispatcher has run yet (it starts with the first build step) and it loads builders when it starts.
    if (!(err instanceof WorkflowNotFoundError)) console.error(`could not tell the dispatcher about builder changes: ${(err as Error).message}`);
  }
}
