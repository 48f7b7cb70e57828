import type { Knex } from 'knex';
import type { Db } from '../lib/db';
import type { TemporalDeps } from './temporal';
import { deleteProject } from './queries/projects';
import { listProjectJobsets, type JobsetRow } from './queries/jobsets';

// The schedule runs CheckJobsetWorkflow, which hashes the inputs and starts EvaluationWorkflow `eval-<id>` when they changed.
export { jobsetScheduleId } from '../lib/workflow-ids';

/** A jobset is checked on a schedule when it has an interval and is neither switched off nor disabled. */
export function jobsetWantsSchedule(jobset: Pick<JobsetRow, 'check_interval' | 'enabled' | 'state'>): boolean {
  return jobset.check_interval > 0 && jobset.enabled && jobset.state !== 'disabled';
}

/**
 * Brings the Temporal Schedule `jobset-<id>` in line with the jobset row: created or updated when the
 * jobset wants one (interval > 0, enabled, state not disabled), deleted otherwise. Idempotent.
 * Without Temporal (an API started without it) there is nothing to schedule.
 */
export async function syncJobsetSchedule(temporal: TemporalDeps | undefined, jobset: JobsetRow): Promise<void> {
  if (!temporal) return;
  if (!jobsetWantsSchedule(jobset)) return deleteJobsetSchedule(temporal, jobset.id);
  await temporal.workflows.upsertJobsetSchedule({
    jobsetId: jobset.id,
    intervalSeconds: jobset.check_interval,
    note: `checks jobset ${jobset.name} every ${jobset.check_interval} s`,
    memo: { jobsetId: jobset.id, projectId: jobset.project_id },
  });
}

/** Deletes the jobset's schedule; a schedule that does not exist is already deleted. */
export async function deleteJobsetSchedule(temporal: TemporalDeps | undefined, jobsetId: string): Promise<void> {
  if (!temporal) return;
  await temporal.workflows.deleteJobsetSchedule(jobsetId);
}

/**
 * The schedule changes made while a database transaction is open, so that they can be undone when
 * the transaction fails: the database and Temporal never disagree about which jobsets are scheduled.
 */
export class JobsetScheduleChanges {
  private readonly undo: Array<() => Promise<void>> = [];
  constructor(private readonly temporal: TemporalDeps | undefined) {}

  /** Syncs `jobset`'s schedule; `previous` is the row before this transaction (undefined for a new jobset). */
  async sync(jobset: JobsetRow, previous: JobsetRow | undefined): Promise<void> {
    this.undo.push(() => (previous ? syncJobsetSchedule(this.temporal, previous) : deleteJobsetSchedule(this.temporal, jobset.id)));
    await syncJobsetSchedule(this.temporal, jobset);
  }

  /** Deletes the schedule of `previous`, a jobset this transaction deletes. */
  async delete(previous: JobsetRow): Promise<void> {
    this.undo.push(() => syncJobsetSchedule(this.temporal, previous));
    await deleteJobsetSchedule(this.temporal, previous.id);
  }

  /** Puts every touched schedule back as it was, newest change first. Best effort: it runs after a failure. */
  async revert(): Promise<void> {
    for (const undo of this.undo.reverse()) {
      await undo().catch((err: unknown) => console.error(`could not restore a jobset schedule: ${(err as Error).message}`));
    }
    this.undo.length = 0;
  }
}

/**
 * Runs `work` in one database transaction; the schedule changes it makes through `schedules` happen
 * before the commit, and are reverted if the work or the commit fails.
 */
export async function withJobsetSchedules<T>(
  db: Db,
  temporal: TemporalDeps | undefined,
  work: (trx: Knex.Transaction, schedules: JobsetScheduleChanges) => Promise<T>,
): Promise<T> {
  const schedules = new JobsetScheduleChanges(temporal);
  try {
    return await db.transaction((trx) => work(trx, schedules));
  } catch (err) {
    await schedules.revert();
    throw err;
  }
}

/** Deletes a project (its jobsets cascade) and the schedules of its jobsets. False when there is no such project. */
export async function deleteProjectWithJobsetSchedules(db: Db, temporal: TemporalDeps | undefined, projectId: string): Promise<boolean> {
  return withJobsetSchedules(db, temporal, async (trx, schedules) => {
    const jobsets = await listProjectJobsets(trx, projectId);
    if (!(await deleteProject(trx, projectId))) return false;
    for (const jobset of jobsets) await schedules.delete(jobset);
    return true;
  });
}
