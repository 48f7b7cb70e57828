import crypto from 'node:crypto';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { TemporalDeps } from './temporal';
import type { CheckJobsetWorkflow } from '../workflows/evaluation';
import type { CheckJobsetInput } from '../workflows/shared';

/**
 * The one way the API starts a jobset check (CheckJobsetWorkflow: fetch, hash, then EvaluationWorkflow when the
 * inputs changed): `POST /evaluations/trigger` starts it and waits for its result; a forge webhook only starts it,
 * so it answers at once. A webhook passes a workflow ID derived from its delivery, so starting twice starts once.
 */
export function startJobsetCheck(
  temporal: TemporalDeps,
  input: CheckJobsetInput,
  workflowId = `check-${input.jobsetId}-${crypto.randomUUID()}`,
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof CheckJobsetWorkflow>> {
  return temporal.client.workflow.start<typeof CheckJobsetWorkflow>('CheckJobsetWorkflow', {
    taskQueue: temporal.taskQueue,
    workflowId,
    args: [input],
    workflowExecutionTimeout: '10 minutes',
  });
}
