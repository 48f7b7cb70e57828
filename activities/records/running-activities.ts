import type { Queryable } from '../../lib/db';
import type { ProcessIdentity } from '../../lib/process-identity';

/** One running attempt of an activity with a long heartbeat timeout (migrations/20261201170000_running_activities.ts). */
export interface RunningActivity {
  taskToken: Uint8Array;
  activityType: string;
  activityId: string;
  workflowId: string;
  attempt: number;
  owner: ProcessIdentity;
}

/** Records that this attempt runs, in the process `owner`. */
export async function recordRunningActivity(db: Queryable, a: RunningActivity): Promise<void> {
  await db('running_activities')
    .insert({ task_token: Buffer.from(a.taskToken), activity_type: a.activityType, activity_id: a.activityId, workflow_id: a.workflowId, attempt: a.attempt, owner: JSON.stringify(a.owner) })
    .onConflict('task_token')
    .ignore();
}

/** Forgets an attempt: it ended, or it was failed because its process had ended. */
export async function forgetRunningActivity(db: Queryable, taskToken: Uint8Array): Promise<void> {
  await db('running_activities').where({ task_token: Buffer.from(taskToken) }).delete();
}

/** Every attempt recorded as running, oldest first. */
export async function runningActivities(db: Queryable): Promise<RunningActivity[]> {
  const rows: Array<{ task_token: Buffer; activity_type: string; activity_id: string; workflow_id: string; attempt: number; owner: ProcessIdentity }> = await db('running_activities')
    .orderBy('started_at')
    .select('task_token', 'activity_type', 'activity_id', 'workflow_id', 'attempt', 'owner');
  return rows.map((r) => ({ taskToken: new Uint8Array(r.task_token), activityType: r.activity_type, activityId: r.activity_id, workflowId: r.workflow_id, attempt: r.attempt, owner: r.owner }));
}
