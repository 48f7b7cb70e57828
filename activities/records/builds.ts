import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { preparedStatement, type BuildRow, type Db, type Queryable } from '../../lib/db';
import { ACTIVE_BUILD_STATUSES, type BuildStatus } from '../../lib/statuses';
import { closeUnfinishedSteps } from './steps';
import { BUILD_WORKFLOW_ID_PREFIX } from '../../lib/workflow-ids';
import type { BuildMetric, BuildProduct } from '../realise/products';
import { BUILD_FINISHED_FACTS, type BuildFinishedFacts } from '../operator-lines';

/** A build with what planning it needs from its jobset (shares, timeouts). */
export type BuildToPlan = BuildRow & { scheduling_shares: number; build_timeout: number; max_silent: number };

export async function findBuildToPlan(db: Queryable, buildId: string): Promise<BuildToPlan | undefined> {
  return db('builds as b')
    .join('jobsets as j', 'j.id', 'b.jobset_id')
    .where('b.id', buildId)
    .first('b.*', 'j.scheduling_shares', 'j.build_timeout', 'j.max_silent');
}

/** The builds an aggregate waits for, with their derivations. */
export async function constituentsOfAggregate(db: Queryable, aggregateBuildId: string): Promise<Array<{ drv_path: string; job_name: string }>> {
  return db('aggregate_constituents as a')
    .join('builds as c', 'c.id', 'a.constituent_build_id')
    .where('a.aggregate_build_id', aggregateBuildId)
    .select('c.drv_path', 'c.job_name');
}

/** The builds of an evaluation whose derivation is one of `drvPaths`. */
export async function buildsOfEvaluationByDerivation(db: Queryable, evaluationId: string, drvPaths: string[]): Promise<Array<{ id: string; drv_path: string; job_name: string }>> {
  return db('builds').where({ evaluation_id: evaluationId }).whereIn('drv_path', drvPaths).select('id', 'drv_path', 'job_name');
}

/** The builds of `buildId`'s evaluation whose derivation is one of `drvPaths` (the jobs among a derivation's inputs). */
export async function buildsOfSameEvaluationByDerivation(db: Queryable, buildId: string, drvPaths: string[]): Promise<Array<{ id: string; drv_path: string; job_name: string }>> {
  if (drvPaths.length === 0) return [];
  return db('builds as b')
    .join('builds as o', 'o.evaluation_id', 'b.evaluation_id')
    .where('o.id', buildId)
    .whereIn('b.drv_path', drvPaths)
    .select('b.id', 'b.drv_path', 'b.job_name');
}

/**
 * A batch's candidate extras (issue 6, `BatchExtras`): the top derivations of the unfinished builds of
 * `buildId`'s evaluation with the given system, priority and time limits (the build's own, else its
 * jobset's), not aggregates, without a cached failure, oldest first, at most `limit`.
 */
export async function waitingDerivationsOfSameEvaluation(
  db: Queryable,
  q: { buildId: string; system: string; priority: number; timeoutSeconds: number; maxSilentSeconds: number; limit: number },
): Promise<string[]> {
  const rows: Array<{ drv_path: string }> = await db('builds as b')
    .join('builds as o', 'o.evaluation_id', 'b.evaluation_id')
    .join('jobsets as j', 'j.id', 'b.jobset_id')
    .where('o.id', q.buildId)
    .whereIn('b.status', ACTIVE_BUILD_STATUSES)
    .where({ 'b.system': q.system, 'b.priority': q.priority, 'b.is_aggregate': false })
    .whereRaw('coalesce(b.meta_timeout, j.build_timeout) = ?', [q.timeoutSeconds])
    .whereRaw('coalesce(b.meta_max_silent, j.max_silent) = ?', [q.maxSilentSeconds])
    .whereNotExists(db('cached_failures as f').whereRaw('f.drv_path = b.drv_path').select(db.raw('1')))
    .orderBy([{ column: 'b.created_at' }, { column: 'b.id' }])
    .limit(q.limit)
    .select('b.drv_path');
  return [...new Set(rows.map((r) => r.drv_path))];
}

/** The newest succeeded build of a job (a `build` input: "project:jobset:job"). */
export async function newestSucceededBuildOfJob(db: Queryable, job: { project: string; jobset: string; job: string }): Promise<{ id: string; build_output_path: string | null } | undefined> {
  return db('builds as b')
    .join('jobsets as j', 'j.id', 'b.jobset_id')
    .join('projects as p', 'p.id', 'b.project_id')
    .where({ 'p.name': job.project, 'j.name': job.jobset, 'b.job_name': job.job, 'b.status': 'succeeded' })
    .orderBy('b.completed_at', 'desc')
    .first('b.id', 'b.build_output_path');
}

/** The row of a job an evaluation found. */
export type EvaluatedBuild = Pick<
  BuildRow,
  | 'evaluation_id' | 'jobset_id' | 'project_id' | 'job_name' | 'drv_path' | 'system' | 'status' | 'priority' | 'is_aggregate' | 'is_fod'
  | 'meta_description' | 'meta_license' | 'meta_homepage' | 'meta_maintainers' | 'meta_timeout' | 'meta_max_silent' | 'required_features'
>;

/** A build row an evaluation recorded; `inserted` is false for a job recorded before (a retried evaluation). */
export interface RecordedBuild {
  id: string;
  job_name: string;
  drv_path: string;
  system: string;
  is_aggregate: boolean;
  priority: number;
  inserted: boolean;
}

// xmax is 0 for a row this statement inserted, and set for one it updated.
const INSERT_EVALUATED_BUILDS = `with r as (
       select * from jsonb_to_recordset(?::jsonb) as r(
         id uuid, job_name text, drv_path text, system text, status text, priority integer, is_aggregate boolean, is_fod boolean,
         meta_description text, meta_license text, meta_homepage text, meta_maintainers text, meta_timeout integer,
         meta_max_silent integer, required_features jsonb)),
     ins as (
       insert into builds (id, workflow_id, evaluation_id, jobset_id, project_id, job_name, drv_path, system, status, priority,
                           is_aggregate, is_fod, meta_description, meta_license, meta_homepage, meta_maintainers, meta_timeout,
                           meta_max_silent, required_features)
       select r.id, ? || r.id::text, ?::uuid, ?::uuid, ?::uuid, r.job_name, r.drv_path, r.system, r.status, r.priority,
              r.is_aggregate, r.is_fod, r.meta_description, r.meta_license, r.meta_homepage, r.meta_maintainers, r.meta_timeout,
              r.meta_max_silent, array(select jsonb_array_elements_text(r.required_features))
         from r
       on conflict (evaluation_id, job_name) do update set drv_path = excluded.drv_path
       returning id, job_name, drv_path, system, is_aggregate, priority, (xmax = 0) as inserted),
     starts as (
       insert into build_workflow_starts (build_id, evaluation_id, is_aggregate, priority)
       select id, ?::uuid, is_aggregate, priority from ins where inserted
       on conflict (build_id) do nothing)
     select * from ins`;

/**
 * Records a batch of an evaluation's jobs (a job seen again keeps its row and takes the new derivation),
 * with each build's workflow ID and, for each new build, the row that says its workflow is still to be
 * started (`build_workflow_starts`). Answers the rows. One prepared statement, the batch as one JSON
 * parameter: a query builder's insert of 125 rows × 17 columns cost this process 3–4 times the CPU
 * (2,000 builds: 220–450 ms against 66–131 ms) and PostgreSQL a tenth more.
 */
export async function insertEvaluatedBuilds(db: Queryable, rows: EvaluatedBuild[]): Promise<RecordedBuild[]> {
  if (rows.length === 0) return [];
  const { evaluation_id, jobset_id, project_id } = rows[0];
  if (rows.some((r) => r.evaluation_id !== evaluation_id || r.jobset_id !== jobset_id || r.project_id !== project_id)) {
    throw new Error('insertEvaluatedBuilds records the jobs of one evaluation at a time');
  }
  // The ID is chosen here so the row carries its workflow ID from the start (a job recorded before keeps both).
  const batch = JSON.stringify(rows.map(({ evaluation_id: _e, jobset_id: _j, project_id: _p, ...r }) => ({ ...r, id: crypto.randomUUID() })));
  const { rows: recorded } = await db
    .raw(INSERT_EVALUATED_BUILDS, [batch, BUILD_WORKFLOW_ID_PREFIX, evaluation_id, jobset_id, project_id, evaluation_id])
    .options(preparedStatement('insert_evaluated_builds', INSERT_EVALUATED_BUILDS));
  return recorded as RecordedBuild[];
}

/** A build whose workflow is still to be started, with what its search attributes need. */
export interface BuildToStart {
  id: string;
  job_name: string;
  system: string;
  /** Its status when read: a final one was recorded before its workflow (found built, or realised in a batch while held). */
  status?: BuildStatus;
}

/**
 * Up to `limit` builds of an evaluation whose workflow has not been started yet, aggregates last
 * (an aggregate's workflow reads its constituents, recorded when the evaluation ends), then the highest
 * priority first (a bumped build starts before the rest), then in the order they were recorded.
 */
export async function buildsWithoutWorkflow(db: Queryable, evaluationId: string, limit: number, { notHeld = false }: { notHeld?: boolean } = {}): Promise<BuildToStart[]> {
  // The start rows' own order and its index (`build_workflow_starts_order_index`): the first rows, not a sort of all.
  return db('build_workflow_starts as s')
    .join('builds as b', 'b.id', 's.build_id')
    .where('s.evaluation_id', evaluationId)
    .modify((q) => {
      if (notHeld) q.whereNotExists((e) => e.select(db.raw('1')).from('batch_extras as e').whereRaw('e.drv_path = b.drv_path').whereRaw(BATCH_ALIVE));
    })
    .orderBy([{ column: 's.is_aggregate' }, { column: 's.priority', order: 'desc' }, { column: 's.build_id' }])
    .limit(limit)
    .select('b.id', 'b.job_name', 'b.system', 'b.status');
}

const END_STEPS_OF_DERIVATION = `with steps as (
       update build_steps set status = ?, phase = null, builder_id = ?, completed_at = ?, error_message = ?
        where drv_path = ? and status in ('pending', 'running'))
     select b.id
       from builds b
       join build_workflow_starts s on s.build_id = b.id
      where ?::boolean and b.drv_path = ? and not b.is_aggregate and b.status = any(?)`;

/**
 * A derivation a batch realised ended with a final status (issue 6): its unfinished step rows end with
 * it, and, with `unstarted` (it succeeded), the statement also answers its unfinished builds whose
 * workflow has not started (held back while the batch realised it, or still to start): the batch records
 * their results itself, and their workflows start with the result recorded. Aggregates are left to
 * their workflows (their constituents). One statement for both, for each derivation of a batch.
 */
export async function endStepsOfDerivation(
  db: Queryable,
  drvPath: string,
  end: { status: string; builderId: string | null; completedAt: Date; errorMessage: string | null },
  { unstarted }: { unstarted: boolean },
): Promise<string[]> {
  const { rows } = await db
    .raw(END_STEPS_OF_DERIVATION, [end.status, end.builderId, end.completedAt, end.errorMessage, drvPath, unstarted, drvPath, [...ACTIVE_BUILD_STATUSES]])
    .options(preparedStatement('end_steps_of_derivation', END_STEPS_OF_DERIVATION));
  return (rows as Array<{ id: string }>).map((r) => r.id);
}

/** Whether any build of the evaluation still waits for its workflow to start (its start row's index). */
export async function evaluationHasBuildsToStart(db: Queryable, evaluationId: string): Promise<boolean> {
  return (await db('build_workflow_starts').where({ evaluation_id: evaluationId }).first('build_id')) !== undefined;
}

/**
 * Builds whose workflow has started and not finished: unfinished rows without a start row (a build
 * still to start keeps one). This is what RINGMASTER_MAX_OPEN_BUILDS bounds. One index scan of the
 * unfinished builds (`builds (status, created_at, id)`) and a probe of the start rows' key each.
 */
export async function countOpenBuildWorkflows(db: Queryable): Promise<number> {
  const [{ count }] = await db('builds as b')
    .whereIn('b.status', ACTIVE_BUILD_STATUSES)
    .whereNotExists((q) => q.select(db.raw('1')).from('build_workflow_starts as s').whereRaw('s.build_id = b.id'))
    .count<{ count: string }[]>('* as count');
  return Number(count);
}

/** The builds whose workflows have started: nothing is left to start for them. */
export async function markBuildWorkflowsStarted(db: Queryable, buildIds: string[]): Promise<void> {
  for (let i = 0; i < buildIds.length; i += 1000) {
    await db('build_workflow_starts').whereIn('build_id', buildIds.slice(i, i + 1000)).delete();
  }
}

/**
 * Unfinished builds whose workflow never started, cancelled in the read model (a started workflow is
 * cancelled through Temporal instead). Answers how many changed.
 */
export async function markUnstartedBuildsCancelled(db: Queryable, buildIds: string[], message: string): Promise<number> {
  if (buildIds.length === 0) return 0;
  const cancelled: Array<{ id: string }> = await db('builds')
    .whereIn('id', buildIds)
    .whereIn('status', ACTIVE_BUILD_STATUSES)
    .update({ status: 'cancelled', error_message: message, completed_at: db.fn.now(), updated_at: db.fn.now() }, ['id']);
  // Their step rows, if a batch recorded them while they were held back, end with them.
  await closeUnfinishedSteps(db, cancelled.map((b) => b.id), 'cancelled');
  return cancelled.length;
}

/** Dependency edges between builds of one evaluation, 500 at a time; an edge recorded before is kept. */
export async function insertBuildDependencies(db: Queryable, edges: Array<{ build_id: string; dependency_build_id: string }>): Promise<void> {
  for (let i = 0; i < edges.length; i += 500) {
    await db('build_dependencies').insert(edges.slice(i, i + 500)).onConflict(['build_id', 'dependency_build_id']).ignore();
  }
}

/** Aggregates' constituents, 500 at a time; a pair recorded before is kept. */
export async function insertAggregateConstituents(db: Queryable, rows: Array<{ aggregate_build_id: string; constituent_build_id: string }>): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await db('aggregate_constituents').insert(rows.slice(i, i + 500)).onConflict(['aggregate_build_id', 'constituent_build_id']).ignore();
  }
}

/** A build starts (or starts again): running, with no end and no error yet. */
/**
 * Marks a pending build running. A start run again (a retried or re-executed local activity) finds it
 * running already and changes nothing; a late one that finds it finished changes nothing either, so a
 * finished build never goes back to running. Answers which of the three it found.
 */
export async function markBuildRunning(db: Queryable, buildId: string): Promise<'started' | 'already_running' | 'finished'> {
  // One statement (issue 6): the update, and otherwise the status as it was when the statement began.
  const { rows } = await db.raw(
    `with started as (
       update builds set status = 'running', started_at = now(), completed_at = null, error_message = null, updated_at = now()
        where id = ? and status = 'pending' returning id)
     select (select count(*) from started) > 0 as started, (select status from builds where id = ?) as status`,
    [buildId, buildId],
  );
  const row: { started: boolean; status: string | null } | undefined = rows[0];
  if (row?.started) return 'started';
  // Pending when the statement began, yet not updated: another transaction changed it meanwhile (a batch
  // that began building its derivation, or a cancel). Its status now says which.
  const status = row?.status === 'pending' ? (await db('builds').where({ id: buildId }).first('status'))?.status : row?.status;
  return status === 'running' ? 'already_running' : 'finished';
}

export async function setBuildPriority(db: Queryable, buildId: string, priority: number): Promise<void> {
  await db('builds').where({ id: buildId }).update({ priority, updated_at: db.fn.now() });
  await db('build_workflow_starts').where({ build_id: buildId }).update({ priority });
}

/**
 * The unfinished builds of a derivation get the builder that realises it, and the log it writes. Those
 * still pending (held back while a batch builds their derivation, or waiting for room to start) are
 * running from now on, as a build is while its derivation builds: their ids are answered, for their
 * `build_started` notifications (their workflows, when they start, find them running and send none).
 */
export async function assignBuilderToBuildsOfDerivation(
  db: Queryable,
  drvPath: string,
  assignment: { builderId: string | null; logPath: string; steps?: { phase: string; startedAt: Date } },
): Promise<string[]> {
  // One statement (issue 6): the unfinished builds, locked, then updated, each saying whether it was pending;
  // with `steps`, the derivation's unfinished step rows are marked running in that phase in it too.
  const steps = assignment.steps
    ? `steps as (
         update build_steps set status = 'running', phase = ?, builder_id = ?, started_at = ?
          where drv_path = ? and status in ('pending', 'running')),`
    : '';
  const sql = `with ${steps} unfinished as (
       select id, status from builds where drv_path = ? and status = any(?) for update)
     update builds b
        set builder_id = ?, log_path = ?,
            status = case when u.status = 'pending' then 'running' else b.status end,
            started_at = case when u.status = 'pending' then now() else b.started_at end,
            updated_at = case when u.status = 'pending' then now() else b.updated_at end
       from unfinished u
      where b.id = u.id
     returning b.id, u.status = 'pending' as started`;
  const { rows } = await db.raw(
    sql,
    [
      ...(assignment.steps ? [assignment.steps.phase, assignment.builderId, assignment.steps.startedAt, drvPath] : []),
      drvPath,
      [...ACTIVE_BUILD_STATUSES],
      assignment.builderId,
      assignment.logPath,
    ],
  ).options(preparedStatement('assign_builder_to_builds_of_derivation', sql));
  return (rows as Array<{ id: string; started: boolean }>).filter((r) => r.started).map((r) => r.id);
}

/** What a finished build recorded. */
export interface BuildResult {
  buildId: string;
  status: BuildStatus;
  errorMessage: string | null;
  outputs: Record<string, string>;
  products: BuildProduct[];
  metrics: BuildMetric[];
  /** Undefined leaves the recorded size as it is (it is recorded when the outputs are served). */
  closureSize: number | null | undefined;
  logPath: string | null;
  builderId: string | null;
}

/** A build_products row of a product read from a build's output. */
function buildProductRow(buildId: string, p: BuildProduct) {
  return {
    build_id: buildId,
    product_type: p.type,
    subtype: p.subtype,
    name: p.name,
    path: p.path,
    sha256_hash: p.sha256,
    file_size: p.size,
    content_type: p.contentType,
    is_directory: p.isDirectory,
  };
}

/** How a build's unfinished step rows close when it ends. */
export interface StepsClosing {
  /** The status of the step rows still pending or running. */
  status: string;
  /** This derivation's row takes `ownStatus` instead (the build's own failure decided before the row existed). */
  own?: { drvPath: string; status: string };
}

/**
 * Records a build's end in one statement (issue 6): its unfinished step rows closed, its status, outputs,
 * products and metrics (replacing those of an earlier run), and its outputs queued to be served when
 * `queueOutputs`. One statement, so the rollup cells of the jobset that its row's update locks (the
 * triggers on `builds`) are held for that statement only, not across round trips of a transaction.
 * With `onlyUnfinished`, a build found finished changes nothing (a late run): it answers undefined.
 * Otherwise it answers what the operator's line of a finished build says, and whether its jobset has
 * channels to promote.
 */
export async function recordBuildResult(
  db: Queryable,
  r: BuildResult & { steps: StepsClosing; queueOutputs: boolean },
  { onlyUnfinished = false }: { onlyUnfinished?: boolean } = {},
): Promise<(BuildFinishedFacts & { has_channels: boolean }) | undefined> {
  const { buildId, outputs } = r;
  const names = Object.keys(outputs);
  const seen = new Set<string>();
  // One value per metric name: the first output that reports it wins.
  const metrics = r.metrics.filter((m) => (seen.has(m.name) ? false : (seen.add(m.name), true)));
  const products = r.products.map((p) => buildProductRow(buildId, p));
  const set: string[] = [
    'status = ?',
    'error_message = ?',
    'outputs = ?::jsonb',
    'build_output_path = ?',
    // A finish recorded again (its local activity re-ran after a worker died) keeps the first completion time.
    'completed_at = coalesce(b.completed_at, now())',
    'updated_at = now()',
  ];
  const setValues: Knex.Value[] = [r.status, r.status === 'succeeded' ? null : r.errorMessage, JSON.stringify(outputs), outputs.out ?? Object.values(outputs)[0] ?? null];
  if (onlyUnfinished) set.push('started_at = coalesce(b.started_at, now())');
  if (r.closureSize !== undefined) (set.push('closure_size = ?'), setValues.push(r.closureSize));
  if (r.logPath) (set.push('log_path = ?'), setValues.push(r.logPath));
  if (r.builderId) (set.push('builder_id = ?'), setValues.push(r.builderId));
  const sql = `with target as (
       select id from builds where id = ? ${onlyUnfinished ? 'and status = any(?)' : ''} for update),
     steps as (
       update build_steps set status = case when ?::text is not null and drv_path = ?::text then ?::text else ?::text end, completed_at = now(), phase = null
        where build_id in (select id from target) and status in ('pending', 'running')),
     old_outputs as (delete from build_outputs where build_id in (select id from target) and not (name = any(?::text[]))),
     new_outputs as (
       insert into build_outputs (build_id, name, path)
       select t.id, o.name, o.path from target t, unnest(?::text[], ?::text[]) as o(name, path)
       on conflict (build_id, name) do update set path = excluded.path),
     old_products as (delete from build_products where build_id in (select id from target)),
     new_products as (
       insert into build_products (build_id, product_type, subtype, name, path, sha256_hash, file_size, content_type, is_directory)
       select t.id, p.product_type, p.subtype, p.name, p.path, p.sha256_hash, p.file_size, p.content_type, p.is_directory
         from target t, jsonb_to_recordset(?::jsonb) as p(product_type text, subtype text, name text, path text, sha256_hash text, file_size bigint, content_type text, is_directory boolean)),
     old_metrics as (delete from build_metrics where build_id in (select id from target) and not (name = any(?::text[]))),
     new_metrics as (
       insert into build_metrics (build_id, name, value, unit)
       select t.id, m.name, m.value, m.unit from target t, jsonb_to_recordset(?::jsonb) as m(name text, value float8, unit text)
       on conflict (build_id, name) do update set value = excluded.value, unit = excluded.unit),
     queued as (
       insert into build_outputs_to_serve (build_id) select id from target where ?::boolean
       on conflict (build_id) do nothing),
     updated as (
       update builds b set ${set.join(', ')} from target t where b.id = t.id
       returning b.*)
     select ${BUILD_FINISHED_FACTS},
            exists (select 1 from channels c where c.jobset_id = b.jobset_id) as has_channels
       from updated b
       join jobsets j on j.id = b.jobset_id
       join projects p on p.id = j.project_id
       left join remote_builders r on r.id = b.builder_id`;
  // Prepared: planning this statement took longer than running it (about 9 ms a call under load).
  const { rows } = await db.raw(
    sql,
    [
      buildId,
      ...(onlyUnfinished ? [[...ACTIVE_BUILD_STATUSES]] : []),
      r.steps.own?.drvPath ?? null,
      r.steps.own?.drvPath ?? null,
      r.steps.own?.status ?? null,
      r.steps.status,
      names,
      names,
      names.map((n) => outputs[n]),
      JSON.stringify(products),
      metrics.map((m) => m.name),
      JSON.stringify(metrics.map((m) => ({ name: m.name, value: m.value, unit: m.unit }))),
      r.queueOutputs,
      ...setValues,
    ],
  ).options(preparedStatement('record_build_result', sql));
  return rows[0];
}

/**
 * The unfinished builds of a jobset's superseded evaluations (`supersededIds`, older than `current`) whose
 * derivation the current evaluation does not also want.
 */
export async function buildsOnlySupersededEvaluationsWant(
  db: Queryable,
  current: { id: string; jobset_id: string; created_at: Date },
  supersededIds: string[],
): Promise<Array<{ id: string }>> {
  return db('builds as b')
    .join('evaluations as e', 'e.id', 'b.evaluation_id')
    .where('e.jobset_id', current.jobset_id)
    .whereNot('e.id', current.id)
    .where('e.created_at', '<', current.created_at)
    .whereIn('b.status', ACTIVE_BUILD_STATUSES)
    .whereNotIn('b.drv_path', db('builds').where({ evaluation_id: current.id }).select('drv_path'))
    .whereIn('e.id', supersededIds)
    .select('b.id');
}

/**
 * Records, in a few statements, builds found already built when planned: succeeded with their outputs,
 * products, metrics and closure size, without steps. Only builds still `pending` change (a retried
 * evaluation must not touch a build that started); answers the IDs that changed. Run it in a transaction.
 */
export async function recordBuildsFoundBuilt(db: Queryable, results: Array<Omit<BuildResult, 'status' | 'errorMessage' | 'logPath' | 'builderId'>>): Promise<string[]> {
  if (results.length === 0) return [];
  const changed: Array<{ id: string }> = await db('builds')
    .whereIn('id', results.map((r) => r.buildId))
    .where({ status: 'pending' })
    .update({ status: 'succeeded', error_message: null, started_at: db.fn.now(), completed_at: db.fn.now(), updated_at: db.fn.now() })
    .returning('id');
  const ids = new Set(changed.map((c) => c.id));
  const mine = results.filter((r) => ids.has(r.buildId));
  for (const r of mine) {
    await db('builds').where({ id: r.buildId }).update({
      outputs: JSON.stringify(r.outputs),
      build_output_path: r.outputs.out ?? Object.values(r.outputs)[0] ?? null,
      closure_size: r.closureSize,
    });
  }
  const outputRows = mine.flatMap((r) => Object.entries(r.outputs).map(([name, path]) => ({ build_id: r.buildId, name, path })));
  for (let i = 0; i < outputRows.length; i += 500) await db('build_outputs').insert(outputRows.slice(i, i + 500)).onConflict(['build_id', 'name']).merge(['path']);
  const productRows = mine.flatMap((r) =>
    r.products.map((p) => buildProductRow(r.buildId, p)),
  );
  for (let i = 0; i < productRows.length; i += 500) await db('build_products').insert(productRows.slice(i, i + 500));
  const metricRows = mine.flatMap((r) => {
    const seen = new Set<string>();
    return r.metrics
      .filter((m) => (seen.has(m.name) ? false : (seen.add(m.name), true)))
      .map((m) => ({ build_id: r.buildId, name: m.name, value: m.value, unit: m.unit }));
  });
  for (let i = 0; i < metricRows.length; i += 500) await db('build_metrics').insert(metricRows.slice(i, i + 500));
  return [...ids];
}

/** What a batch's Nix is run with when it has no member: its first waiting build's (issue 6, `realiseEvaluation`). */
export interface BatchLead {
  drvPath: string;
  logBuildId: string;
  timeoutSeconds: number;
  maxSilentSeconds: number;
  system?: string;
  priority?: number;
}

/** An evaluation's unfinished non-aggregate build that goes first (highest priority, then oldest), for a batch of its waiting derivations. */
export async function firstWaitingBuildOfEvaluation(db: Queryable, evaluationId: string): Promise<(BatchLead & { system: string; priority: number }) | undefined> {
  const row = await db('builds as b')
    .join('jobsets as j', 'j.id', 'b.jobset_id')
    .where({ 'b.evaluation_id': evaluationId, 'b.is_aggregate': false })
    .whereIn('b.status', ACTIVE_BUILD_STATUSES)
    .orderBy([{ column: 'b.priority', order: 'desc' }, { column: 'b.created_at' }, { column: 'b.id' }])
    .first<{ id: string; drv_path: string; system: string; priority: number; timeout: number; max_silent: number } | undefined>(
      'b.id', 'b.drv_path', 'b.system', 'b.priority', db.raw('coalesce(b.meta_timeout, j.build_timeout) as timeout'), db.raw('coalesce(b.meta_max_silent, j.max_silent) as max_silent'),
    );
  return row && { drvPath: row.drv_path, logBuildId: row.id, timeoutSeconds: Number(row.timeout), maxSilentSeconds: Number(row.max_silent), system: row.system, priority: row.priority };
}

/** A batch's extras, written before its Nix starts (`batch_extras`): a later batch's choice takes a derivation over. */
export async function recordBatchExtras(db: Queryable, batchId: string, drvPaths: string[]): Promise<void> {
  if (drvPaths.length === 0) return;
  await db('batch_extras')
    .insert(drvPaths.map((d) => ({ drv_path: d, batch_id: batchId, created_at: db.fn.now(), alive_at: db.fn.now() })))
    .onConflict('drv_path')
    .merge(['batch_id', 'created_at', 'alive_at']);
}

/** The whole batch ended: its extras' rows go, but for those another batch has taken since (one extra: `forgetBatchExtraWaitedOn`). */
export async function forgetBatchExtras(db: Queryable, batchId: string): Promise<void> {
  await db('batch_extras').where({ batch_id: batchId }).delete();
}

/**
 * A batch's extras that a derivation workflow had queued already (a step row of the derivation in phase
 * `queued`): such a workflow waits for the batch's word (the dispatcher holds its request while the batch
 * runs), so the row says so. Run after `recordBatchExtras` has committed and before the batch's Nix starts
 * (which marks the steps `building`); a workflow that queues later marks the row itself (`queueDerivation`).
 */
export async function markQueuedBatchExtrasWaitedOn(db: Queryable, batchId: string): Promise<void> {
  await db('batch_extras as e')
    .where('e.batch_id', batchId)
    .whereExists((q) => q.select(db.raw('1')).from('build_steps as s').whereRaw('s.drv_path = e.drv_path').whereIn('s.status', ['pending', 'running']).where('s.phase', 'queued'))
    .update({ workflow_waits: true });
}

/**
 * An extra ended: its row goes (unless another batch has taken it since), and the answer says whether a
 * derivation workflow waits for this batch's word on it (`markBatchExtraWaitedOn`,
 * `markQueuedBatchExtrasWaitedOn`). Deleting and reading in one statement settles a workflow that marks
 * the row at the same moment: either it marked the row first and is told, or it finds no row and takes
 * the usual way.
 */
export async function forgetBatchExtraWaitedOn(db: Queryable, batchId: string, drvPath: string): Promise<boolean> {
  const rows: Array<{ workflow_waits: boolean }> = await db('batch_extras').where({ batch_id: batchId, drv_path: drvPath }).delete().returning('workflow_waits');
  return rows.some((r) => r.workflow_waits);
}

/**
 * A batch's rows are alive while its activity touches them (`touchBatchExtras`, every BATCH_TOUCH_MS):
 * the rows of a batch whose worker died, or whose activity gave up, hold nothing a minute later.
 */
const BATCH_ALIVE = "e.alive_at > now() - interval '60 seconds'";
/** How often a running batch touches its rows. */
export const BATCH_TOUCH_MS = 15_000;

/** A running batch says it is alive. */
export async function touchBatchExtras(db: Queryable, batchId: string): Promise<void> {
  await db('batch_extras').where({ batch_id: batchId }).update({ alive_at: db.fn.now() });
}

/**
 * Whether a running batch (alive) realises the derivation as an extra; if so, its row records in the same
 * statement that the derivation's workflow waits for that batch's word (`forgetBatchExtraWaitedOn`).
 */
export async function markBatchExtraWaitedOn(db: Queryable, drvPath: string): Promise<boolean> {
  const rows = await db('batch_extras as e').where({ 'e.drv_path': drvPath }).whereRaw(BATCH_ALIVE).update({ workflow_waits: true }).returning('e.drv_path');
  return rows.length > 0;
}

/**
 * Whether a build of the evaluation still waits for its workflow while a running batch realises its
 * derivation as an extra: its workflow starts once that derivation has ended (`startBuildWorkflowsOfEvaluation`).
 */
export async function evaluationHasHeldBuilds(db: Queryable, evaluationId: string): Promise<boolean> {
  const row = await db('build_workflow_starts as s')
    .join('builds as b', 'b.id', 's.build_id')
    .join('batch_extras as e', 'e.drv_path', 'b.drv_path')
    .where('s.evaluation_id', evaluationId)
    .whereRaw(BATCH_ALIVE)
    .first('s.build_id');
  return row !== undefined;
}

/**
 * The derivation of a build cancelled before its workflow started, when a running batch realises it as an
 * extra and no other unfinished build has it for its own or (in its evaluation) needs it as an input: that
 * batch is to be stopped, as for a cancelled build whose derivation's workflow waits for the batch.
 */
export async function extraOfCancelledBuild(db: Queryable, buildId: string): Promise<string | undefined> {
  const row = await db('builds as b')
    .join('batch_extras as e', 'e.drv_path', 'b.drv_path')
    .where('b.id', buildId)
    .whereRaw(BATCH_ALIVE)
    .whereNotExists((q) => q.select(db.raw('1')).from('builds as o').whereRaw('o.drv_path = b.drv_path').whereNot('o.id', buildId).whereIn('o.status', ACTIVE_BUILD_STATUSES))
    // Nor an unfinished build of its evaluation that needs it as an input.
    .whereNotExists((q) =>
      q.select(db.raw('1')).from('build_dependencies as d').join('builds as o', 'o.id', 'd.build_id').whereRaw('d.dependency_build_id = b.id').whereIn('o.status', ACTIVE_BUILD_STATUSES),
    )
    .first<{ drv_path: string } | undefined>('b.drv_path');
  return row?.drv_path;
}

/**
 * Cancels a build whose workflow has not started (its evaluation still starts them, or it is held back):
 * its row says cancelled, and when a live batch realises its derivation as an extra that nothing else
 * wants, that batch is stopped (`stopBatchOfExtra`, as for a cancelled member). Answers whether the row
 * changed (false: the build had finished, or its workflow had started meanwhile).
 */
export async function cancelUnstartedBuild(db: Queryable, workflows: { stopBatchOfExtra(drvPath: string): Promise<void> }, buildId: string, why: string): Promise<boolean> {
  if ((await markUnstartedBuildsCancelled(db, [buildId], why)) === 0) return false;
  const extra = await extraOfCancelledBuild(db, buildId);
  if (extra) await workflows.stopBatchOfExtra(extra);
  return true;
}
