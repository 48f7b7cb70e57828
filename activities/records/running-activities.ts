import type { Queryable } from '../../lib/db';
import type { ProcessIdentity } from '../../lib/process-identity';

/**
 * One running attempt of an activity with a long heartbeat timeout (migrations/20261201170000_running_activities.ts),
 * and the leases of the worker processes that run them (migrations/20261202150000_worker_leases.ts).
 */
export interface RunningActivity {
  taskToken: Uint8Array;
  activityType: string;
  activityId: string;
  workflowId: string;
  attempt: number;
  owner: ProcessIdentity;
  /** The lease its process keeps (`worker_leases`), or null: a process without one is never judged by lease. */
  leaseKey: string | null;
}

/** A recorded attempt, with what PostgreSQL's clock says of its process's lease. */
export interface RecordedActivity extends RunningActivity {
  /**
   * Its process keeps a lease, and that lease has lapsed: expired, or never written although the attempt was
   * recorded longer ago than `leaseMs` (a process that died before its first renewal reached the database).
   */
  leaseLapsed: boolean;
}

/** Records that this attempt runs, in the process `owner`. */
export async function recordRunningActivity(db: Queryable, a: RunningActivity): Promise<void> {
  await db('running_activities')
    .insert({ task_token: Buffer.from(a.taskToken), activity_type: a.activityType, activity_id: a.activityId, workflow_id: a.workflowId, attempt: a.attempt, owner: JSON.stringify(a.owner), owner_key: a.leaseKey })
    .onConflict('task_token')
    .ignore();
}

/** Forgets an attempt: it ended, or it was failed because its process had ended. */
export async function forgetRunningActivity(db: Queryable, taskToken: Uint8Array): Promise<void> {
  await db('running_activities').where({ task_token: Buffer.from(taskToken) }).delete();
}

/** Every attempt recorded as running, oldest first, each with whether its process's lease has lapsed (see RecordedActivity). */
export async function runningActivities(db: Queryable, leaseMs: number): Promise<RecordedActivity[]> {
  const { rows } = await db.raw(
    `select r.task_token, r.activity_type, r.activity_id, r.workflow_id, r.attempt, r.owner, r.owner_key,
            r.owner_key is not null
              and case when l.owner_key is null then r.started_at < now() - make_interval(secs => ?) else l.expires_at < now() end as lease_lapsed
       from running_activities r
       left join worker_leases l on l.owner_key = r.owner_key
      order by r.started_at`,
    [leaseMs / 1000],
  );
  return (rows as Array<{ task_token: Buffer; activity_type: string; activity_id: string; workflow_id: string; attempt: number; owner: ProcessIdentity; owner_key: string | null; lease_lapsed: boolean }>).map((r) => ({
    taskToken: new Uint8Array(r.task_token),
    activityType: r.activity_type,
    activityId: r.activity_id,
    workflowId: r.workflow_id,
    attempt: r.attempt,
    owner: r.owner,
    leaseKey: r.owner_key,
    leaseLapsed: r.lease_lapsed,
  }));
}

/** Writes or renews the lease `key` of the process `owner`: it lasts `leaseMs` from now, by PostgreSQL's clock. */
export async function renewWorkerLease(db: Queryable, key: string, owner: ProcessIdentity, leaseMs: number): Promise<void> {
  await db.raw(
    `insert into worker_leases (owner_key, owner, renewed_at, expires_at) values (?, ?::jsonb, now(), now() + make_interval(secs => ?))
     on conflict (owner_key) do update set renewed_at = excluded.renewed_at, expires_at = excluded.expires_at`,
    [key, JSON.stringify(owner), leaseMs / 1000],
  );
}

/** Gives the lease up (a process that stops cleanly): attempts it still had recorded are then judged at once. */
export async function dropWorkerLease(db: Queryable, key: string): Promise<void> {
  await db('worker_leases').where({ owner_key: key }).delete();
}

/** Deletes leases that lapsed more than `olderThanMs` ago and that no recorded attempt names. Answers how many. */
export async function dropLapsedLeases(db: Queryable, olderThanMs: number): Promise<number> {
  const { rowCount } = await db.raw(
    `delete from worker_leases l
      where l.expires_at < now() - make_interval(secs => ?)
        and not exists (select 1 from running_activities r where r.owner_key = l.owner_key)`,
    [olderThanMs / 1000],
  );
  return rowCount ?? 0;
}
