import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { logBuildFinished, logEvaluationFinished, logEvaluationStarted } from './operator-lines';
import { fetchGitSource, inputsHash } from './nix/source';
import { ConcurrentStarts } from './concurrent-starts';
import { OpenBuildBound } from './open-build-bound';
import { WorkflowTaskBacklogGate } from './workflow-task-backlog';
import { recordBuildsAlreadyBuilt } from './already-built';
import { evaluateJobs, type EvalJob, type EvalJobError, type NixArg } from './nix/evaluate';
import { BatchRecorder } from './batch-recorder';
import { realiseEvaluationSignal, type CheckJobsetInput } from '../workflows/shared';
import { isFinishedBuildStatus, type EvaluationStatus } from '../lib/statuses';
import { evaluationSearchAttributes } from '../lib/search-attributes';
import type { SearchAttributePair } from '@temporalio/common';
import { findJobsetToEvaluate, jobsetInputsOf, markJobsetChecked } from './records/jobsets';
import { promoteChannelsOfEvaluation } from './channel-promotion';
import {
  buildsOnlySupersededEvaluationsWant,
  insertAggregateConstituents,
  insertBuildDependencies,
  buildsWithoutWorkflow,
  evaluationHasBuildsToStart,
  evaluationHasHeldBuilds,
  cancelUnstartedBuild,
  insertEvaluatedBuilds,
  markBuildWorkflowsStarted,
  newestSucceededBuildOfJob,
  type BuildToStart,
  type EvaluatedBuild,
} from './records/builds';
import {
  findEvaluation,
  findEvaluationWithInputsHash,
  finishEvaluationRecord,
  inputsOfEvaluation,
  insertEvaluation,
  insertEvaluationErrors,
  insertUnfetchableEvaluation,
  markEvaluationCompleted,
  markEvaluationRunning,
  markEvaluationSuperseded,
  olderActiveEvaluations,
  recordEvaluationCounts,
  type EvaluationInputRecord,
} from './records/evaluations';
import { notifyBuildEvent, notifyEvaluationEvent } from './notifications';
import { countRemoteBuilders } from './records/builders';
import { untilHeldBuildsReleased } from './held-builds';

const BATCH = 100;
/** Workflow starts in flight at once: bounded starts beat firing them all (../PERFORMANCE.md). */
const STARTS_IN_FLIGHT = 32;
/**
 * Jobs and errors are written at least BATCH at a time, and at most MAX_BATCH (the writer takes what
 * waits when it falls behind the evaluator); the reader waits only when MAX_PENDING wait.
 */
const MAX_BATCH = 1000;
const MAX_PENDING = 2000;
/** Jobs read while the evaluator then stalls are written after this long, short of BATCH. */
const LINGER_MS = 500;
/**
 * How long the evaluator must be silent before the builds recorded so far start (see evaluatorSpoke).
 * Longer than the stalls of a healthy evaluator: Nix's store database (SQLite in WAL mode) makes every
 * few thousand `.drv` registrations wait about a second for a checkpoint, and builds started then ran
 * beside the rest of the evaluation (`bench/evaluation.ts`, docs/architecture.md, stop 30).
 */
const STARTS_AFTER_SILENCE_MS = 2_000;
/**
 * Workflow starts in flight while the evaluator runs (and is silent: see evaluatorSpoke): builds start
 * during a long evaluation, but few enough that they leave the CPU to the evaluator;
 * startBuildWorkflowsOfEvaluation starts the rest, STARTS_IN_FLIGHT at once, after completion.
 */
const STARTS_WHILE_EVALUATING = 4;
/** Builds read per page by the activity that starts an evaluation's remaining workflows. */
const START_PAGE = 500;
/** Started builds whose start rows are deleted at once. */
const MARK_EVERY = 100;
/**
 * How long the start of an evaluation's remaining builds waits for the evaluation's batch to say which
 * derivations it realises (it writes them within moments of being asked, when the builder takes it).
 */
const BATCH_WORD_MS = 2_000;
/** How often builds held back for a running batch are looked at again (at once when a batch of this process releases some). */
const HOLD_POLL_MS = 100;
/** At least this long between two looks for released builds, when a release wakes the start loop early. */
const HELD_ROUND_MIN_MS = 50;

type ResolvedInput = EvaluationInputRecord;

export interface PreparedEvaluation {
  evaluationId: string;
  created: boolean;
  searchAttributes: SearchAttributePair[];
}

/** `--arg` values for a path: a Nix path literal that survives spaces. */
function nixPathLiteral(p: string): string {
  return `(/. + ${JSON.stringify(p)})`;
}

let niceRefusedWarned = false;
/** Once per process: a worker without CAP_SYS_NICE would otherwise say it at every evaluation. */
function warnNiceRefused(nice: number, reason: string): void {
  if (niceRefusedWarned) return;
  niceRefusedWarned = true;
  log.warn('the evaluator runs at the worker\'s priority: its nice value could not be set (RINGMASTER_EVALUATOR_NICE; below 0 needs root or CAP_SYS_NICE, 0 asks for nothing)', { nice, reason });
}

/** Runs `work`, heartbeating `details()` every second meanwhile (a cancellation reaches an activity only with a heartbeat). */
async function whileHeartbeating<T>(ctx: Context, details: () => unknown, work: () => Promise<T>): Promise<T> {
  const ticker = setInterval(() => ctx.heartbeat(details()), 1_000);
  try {
    return await work();
  } finally {
    clearInterval(ticker);
  }
}

export function createEvaluationActivities(deps: ActivityDeps) {
  const { db } = deps;

  /** Starts a build's workflow with its search attributes; a workflow that exists already is left alone. */
  const startBuildWorkflow = (jobset: { project_name: string; name: string }, evaluationId: string, b: BuildToStart) =>
    deps.workflows.startBuild({
      projectName: jobset.project_name,
      jobsetName: jobset.name,
      jobName: b.job_name,
      system: b.system,
      buildId: b.id,
      evaluationId,
      // Finished before its workflow (found built, realised by a batch while held, or cancelled): the workflow ends at once.
      ...(b.status && isFinishedBuildStatus(b.status) ? { recorded: b.status } : {}),
    });
  const gitCache = () => path.join(deps.config.dataDir, 'git');

  async function resolveInputs(jobsetId: string, heartbeat: () => void): Promise<ResolvedInput[]> {
    const rows = await jobsetInputsOf(db, jobsetId);
    const out: ResolvedInput[] = [];
    for (const r of rows) {
      heartbeat();
      const base: ResolvedInput = { name: r.name, input_type: r.input_type, value: r.value, revision: r.revision ?? null, store_path: null, dependency_build_id: null };
      if (r.input_type === 'git') {
        const [url, branch] = String(r.value).split(/\s+/);
        const src = await fetchGitSource({ url, branch: branch ?? null, revision: r.revision ?? null, cacheDir: gitCache() });
        out.push({ ...base, revision: src.commit, store_path: src.path });
      } else if (r.input_type === 'build') {
        // "project:jobset:job" → the newest succeeded build of that job.
        const [project, jobset, job] = String(r.value).split(':');
        const b = await newestSucceededBuildOfJob(db, { project, jobset, job });
        if (!b) throw ApplicationFailure.nonRetryable(`input ${r.name}: no succeeded build of ${r.value}`, 'SourceError');
        out.push({ ...base, revision: b.id, store_path: b.build_output_path, dependency_build_id: b.id });
      } else {
        out.push(base);
      }
    }
    return out;
  }

  function argsOf(inputs: ResolvedInput[]): NixArg[] {
    return inputs.map((i): NixArg => {
      switch (i.input_type) {
        case 'string':
          return { name: i.name, kind: 'argstr', value: i.value };
        case 'boolean':
          return { name: i.name, kind: 'arg', value: i.value === 'true' ? 'true' : 'false' };
        case 'nix':
          return { name: i.name, kind: 'arg', value: i.value };
        case 'git':
        case 'path':
          return { name: i.name, kind: 'arg', value: nixPathLiteral(i.store_path ?? i.value) };
        case 'build':
          return { name: i.name, kind: 'arg', value: `builtins.storePath ${JSON.stringify(i.store_path)}` };
        default:
          return { name: i.name, kind: 'argstr', value: i.value };
      }
    });
  }

  return {
    /**
     * Fetches the jobset's source and inputs and hashes them. Under trigger mode source_change an
     * evaluation with the same hash is answered instead of a new one. A source that cannot be fetched
     * gives a failed evaluation with the reason.
     */
    async prepareEvaluation(input: CheckJobsetInput): Promise<PreparedEvaluation> {
      const ctx = Context.current();
      const heartbeat = () => ctx.heartbeat();
      const t0 = Date.now();
      const phasesMs: Record<string, number> = {};
      const jobset = await findJobsetToEvaluate(db, input.jobsetId);
      if (!jobset) throw ApplicationFailure.nonRetryable(`jobset ${input.jobsetId} not found`, 'NotFound');
      const attrs = (evaluationId: string) => evaluationSearchAttributes({ projectName: jobset.project_name, jobsetName: jobset.name, evaluationId });

      let commit: string;
      let branch: string | null;
      let inputs: ResolvedInput[];
      const wantedBranch: string | null = input.ref ?? jobset.branch ?? null;
      const pullRequest = input.pullRequest ? { pr_number: input.pullRequest.number, pr_head: input.pullRequest.head, pr_base: input.pullRequest.base } : {};
      try {
        // The jobset's source and its inputs are fetched side by side (git serialises work on one mirror).
        const [src, resolved] = await Promise.all([
          fetchGitSource({ url: jobset.repository_url, branch: wantedBranch, revision: input.commitHash ?? null, cacheDir: gitCache() }).finally(() => {
            phasesMs.sourceFetched = Date.now() - t0;
          }),
          resolveInputs(jobset.id, heartbeat),
        ]);
        phasesMs.inputsResolved = Date.now() - t0;
        commit = src.commit;
        branch = src.branch ?? wantedBranch;
        inputs = resolved;
      } catch (err) {
        const message = (err as Error).message;
        const evaluationId = await insertUnfetchableEvaluation(db, {
          jobsetId: jobset.id,
          errorMessage: `fetching inputs failed: ${message}`,
          trigger: input.trigger,
          branch: wantedBranch,
          commitHash: input.commitHash ?? null,
          pullRequest,
        });
        await markJobsetChecked(db, jobset.id, message);
        await logEvaluationFinished(deps.logger, db, evaluationId).catch(() => undefined);
        return { evaluationId, created: false, searchAttributes: attrs(evaluationId) };
      }
      const hash = inputsHash({
        commit,
        inputs: inputs.map((i) => ({ name: i.name, type: i.input_type, value: i.value, revision: i.revision })),
        nixExpression: jobset.nix_expression,
        flakeMode: jobset.flake_mode,
      });

      const result = await db.transaction(async (trx) => {
        await markJobsetChecked(trx, jobset.id, null);
        if (jobset.trigger_mode === 'source_change') {
          const existing = await findEvaluationWithInputsHash(trx, jobset.id, hash);
          if (existing) return { evaluationId: existing, created: false };
        }
        const evaluationId = await insertEvaluation(trx, { jobsetId: jobset.id, commitHash: commit, branch, inputsHash: hash, trigger: input.trigger, pullRequest }, inputs);
        return { evaluationId, created: true };
      });
      phasesMs.recorded = Date.now() - t0;
      log.info('evaluation prepared', { evaluationId: result.evaluationId, created: result.created, phasesMs });
      return { ...result, searchAttributes: attrs(result.evaluationId) };
    },

    /**
     * Evaluates the jobset as a stream of jobs and records them in batches (one transaction each, of
     * 100 to 1,000 jobs, written behind the reader: Nix's output is read while earlier batches are
     * written), finding each batch's builds that are built already. Dependency edges and aggregates'
     * constituents are recorded when the stream ends.
     *
     * Each batch's BuildWorkflows start while the evaluation goes on, from a queue the reader never
     * waits for. With `startsInBackground`, at most STARTS_WHILE_EVALUATING at once and only while the
     * evaluator has been silent for STARTS_AFTER_SILENCE_MS (builds running during the evaluation compete with the
     * evaluator for the CPU), and the activity marks the evaluation `completed` in the transaction of its
     * last writes (edges, constituents, counts) and returns: each new build has its
     * `build_workflow_starts` row until its workflow starts, and `startBuildWorkflowsOfEvaluation` starts
     * what is left once the workflow has done the bookkeeping of completion (finishEvaluation).
     * Without it (an evaluation whose workflow predates that change), STARTS_IN_FLIGHT at once,
     * aggregates last, and the activity waits for every start.
     */
    async evaluateAndRecord(input: { evaluationId: string; startsInBackground?: boolean }): Promise<{ jobs: number; errors: number }> {
      const ctx = Context.current();
      // Where the time goes, in ms after the activity started (logged with "evaluation recorded").
      const t0 = Date.now();
      const phases: Record<string, number> = {};
      const mark = (name: string) => (phases[name] ??= Date.now() - t0);
      const batchMs = { insert: 0, alreadyBuilt: 0, other: 0, batches: 0 };
      // The evaluation's inputs are read beside the evaluation: the evaluator waits for both.
      const storedInputs = inputsOfEvaluation(db, input.evaluationId);
      storedInputs.catch(() => undefined);
      const evaluation = await findEvaluation(db, input.evaluationId);
      if (!evaluation) throw ApplicationFailure.nonRetryable(`evaluation ${input.evaluationId} not found`, 'NotFound');
      const jobset = await findJobsetToEvaluate(db, evaluation.jobset_id);
      if (!jobset) throw ApplicationFailure.nonRetryable(`jobset ${evaluation.jobset_id} not found`, 'NotFound');
      // A retry of an attempt that recorded every build and completed the evaluation (its report was lost): nothing is left to do.
      if (input.startsInBackground && evaluation.status === 'completed') return { jobs: evaluation.nr_jobs ?? 0, errors: evaluation.nr_errors ?? 0 };
      // The evaluation is marked running, and its start logged and notified, beside the checkout and
      // while the evaluator starts: the evaluator waits for none of it. Every path out of this activity,
      // and the first batch of builds, waits for it first (so `running` never comes after a finish, nor
      // `evaluation_started` after a build's notification), and a failure of it fails the activity as
      // it did when it came first (retried, not an evaluation failure).
      let announceFailure: { error: unknown } | null = null;
      const announcing = (async () => {
        await markEvaluationRunning(db, evaluation.id);
        await logEvaluationStarted(deps.logger, db, evaluation.id).catch(() => undefined);
        await notifyEvaluationEvent(deps, evaluation.id, 'evaluation_started');
      })().catch((error) => {
        announceFailure = { error };
      });
      const announced = async () => {
        await announcing;
        if (announceFailure) throw announceFailure.error;
      };

      const src = await fetchGitSource({ url: jobset.repository_url, branch: evaluation.branch, revision: evaluation.commit_hash, cacheDir: gitCache(), fetchedBefore: true }).catch(async (err) => {
        await announced();
        throw ApplicationFailure.nonRetryable(`fetching ${jobset.repository_url} at ${evaluation.commit_hash}: ${(err as Error).message}`, 'SourceError');
      });
      // Git inputs are checked out again (from the cache) at their recorded revision.
      const inputs: ResolvedInput[] = [];
      try {
        const stored = await storedInputs;
        for (const i of stored) {
          if (i.input_type === 'git') {
            const [url] = String(i.value).split(/\s+/);
            const s = await fetchGitSource({ url, revision: i.revision, cacheDir: gitCache(), fetchedBefore: true });
            inputs.push({ ...i, store_path: s.path });
          } else inputs.push(i);
        }
      } catch (err) {
        await announcing;
        throw err;
      }

      mark('sourceReady');
      const started = Date.now();
      // How busy this process's event loop was while the evaluator ran (it reads Nix's output and writes the batches).
      const elu0 = performance.eventLoopUtilization();
      let evaluatorLoopUtilization = 0;
      const drvToBuild = new Map<string, string>();
      const pendingEdges: Array<{ buildId: string; inputDrvs: string[] }> = [];
      const aggregates: Array<{ buildId: string; jobName: string; system: string; constituents: string[] }> = [];
      const nameToBuild = new Map<string, string>();
      let jobs = 0;
      let errors = 0;
      let lastError: string | null = null;

      // Workflow starts go out concurrently from a queue: reading Nix's output never waits for Temporal.
      // A started build's start row is deleted with the next batch.
      // In the background mode these starts take their room under RINGMASTER_MAX_OPEN_BUILDS too; a build
      // that finds none keeps its start row for startBuildWorkflowsOfEvaluation.
      let startedIds: string[] = [];
      let startsInFlight = 0;
      const bound = new OpenBuildBound(db, deps.config.maxOpenBuilds);
      const starts = new ConcurrentStarts<BuildToStart>(input.startsInBackground ? STARTS_WHILE_EVALUATING : STARTS_IN_FLIGHT, async (b) => {
        if (input.startsInBackground && (await bound.claim(1, () => startedIds.length + startsInFlight)) === 0) return;
        startsInFlight++;
        try {
          await startBuildWorkflow(jobset, evaluation.id, b);
          startedIds.push(b.id);
        } finally {
          startsInFlight--;
        }
      });
      const startBuilds = (rows: BuildToStart[]) => starts.push(...rows);
      // The started builds stay in `startedIds` (uncounted) until their start rows are gone: a count in
      // between would otherwise see them neither open nor uncounted. Starts finishing meanwhile append.
      const forgetStarted = async () => {
        const n = startedIds.length;
        await markBuildWorkflowsStarted(db, startedIds.slice(0, n));
        startedIds = startedIds.slice(n);
      };

      const recordBatch = async (items: Array<EvalJob | EvalJobError>) => {
        await announced();
        const tb = Date.now();
        batchMs.batches++;
        const jobsOfBatch = items.filter((i): i is EvalJob => i.kind === 'job');
        await insertEvaluationErrors(
          db,
          items.filter((i): i is EvalJobError => i.kind === 'error').map((e) => ({ evaluation_id: evaluation.id, job_name: e.attr || '(top level)', error_message: e.error })),
        );
        await forgetStarted();
        if (jobsOfBatch.length === 0) return;
        const rows = jobsOfBatch.map((j): EvaluatedBuild => ({
          evaluation_id: evaluation.id,
          jobset_id: jobset.id,
          project_id: jobset.project_id,
          job_name: j.attr,
          drv_path: j.drvPath,
          system: j.system,
          status: 'pending',
          priority: j.meta.schedulingPriority ?? 100,
          is_aggregate: j.isAggregate,
          is_fod: j.isFod,
          meta_description: j.meta.description ?? null,
          meta_license: j.meta.license ?? null,
          meta_homepage: j.meta.homepage ?? null,
          meta_maintainers: j.meta.maintainers ?? null,
          meta_timeout: j.meta.timeout ?? null,
          meta_max_silent: j.meta.maxSilent ?? null,
          required_features: j.requiredSystemFeatures,
        }));
        const ti = Date.now();
        const inserted = await insertEvaluatedBuilds(db, rows);
        batchMs.insert += Date.now() - ti;
        const byName = new Map(jobsOfBatch.map((j) => [j.attr, j]));
        for (const r of inserted) {
          drvToBuild.set(r.drv_path, r.id);
          nameToBuild.set(r.job_name, r.id);
          const job = byName.get(r.job_name)!;
          if (job.inputDrvs.length) pendingEdges.push({ buildId: r.id, inputDrvs: job.inputDrvs });
          if (r.is_aggregate) aggregates.push({ buildId: r.id, jobName: r.job_name, system: r.system, constituents: job.constituents });
        }
        const fresh = inserted.filter((r) => !r.is_aggregate);
        const ta = Date.now();
        // Builds whose outputs are valid already are recorded succeeded here, in one check per batch.
        const found = await recordBuildsAlreadyBuilt(db, fresh.map((r) => ({ ...r, outputs: byName.get(r.job_name)!.outputs }))).catch((err) => {
          log.warn('could not check which builds are built already', { error: (err as Error).message });
          return new Set<string>();
        });
        batchMs.alreadyBuilt += Date.now() - ta;
        // A build found built is finished here, not by finishBuild: it gets its operator line and its notifications here.
        for (const buildId of found) {
          await logBuildFinished(deps.logger, db, buildId).catch(() => undefined);
          await notifyBuildEvent(deps, buildId, 'build_finished');
        }
        // In the background mode a job recorded by an earlier attempt is left to startBuildWorkflowsOfEvaluation.
        const toStart = fresh.map((r) => (found.has(r.id) ? { ...r, status: 'succeeded' as const } : r));
        startBuilds(input.startsInBackground ? toStart.filter((r) => r.inserted) : toStart);
        ctx.heartbeat({ jobs, errors });
        batchMs.other += Date.now() - tb;
      };
      // In the background mode builds start only while the evaluator is silent (STARTS_AFTER_SILENCE_MS
      // without a job): while it streams they would compete with it for the CPU; one that waits (a FIFO, a fetch,
      // a slow attribute) lets the builds recorded so far start.
      let quiet: NodeJS.Timeout | undefined;
      const evaluatorSpoke = () => {
        if (!input.startsInBackground) return;
        starts.pause();
        clearTimeout(quiet);
        quiet = setTimeout(() => starts.resume(), STARTS_AFTER_SILENCE_MS);
      };
      // Batches are written one after another, behind the reader.
      const recorder = new BatchRecorder<EvalJob | EvalJobError>({ minBatch: BATCH, maxBatch: MAX_BATCH, maxPending: MAX_PENDING, lingerMs: LINGER_MS }, recordBatch);

      const args = argsOf(inputs);
      // A heartbeat every second while Nix evaluates: a cancellation (a newer evaluation superseded this
      // one) reaches the activity only with a heartbeat, and then stops Nix through cancellationSignal.
      const ticker = setInterval(() => ctx.heartbeat({ jobs, errors }), 1_000);
      try {
        const nice = deps.config.evaluatorNice;
        for await (const item of evaluateJobs({ sourceDir: src.path, flakeMode: jobset.flake_mode, expression: jobset.nix_expression, args, signal: ctx.cancellationSignal, nice, onNiceRefused: (reason) => warnNiceRefused(nice, reason) })) {
          if (item.kind === 'error') {
            errors++;
            lastError = `${item.attr || '(top level)'}: ${item.error}`;
          } else jobs++;
          mark('firstJob');
          evaluatorSpoke();
          await recorder.add(item);
        }
        mark('evaluatorDone');
        evaluatorLoopUtilization = Math.round(performance.eventLoopUtilization(elu0).utilization * 100) / 100;
        await recorder.end();
        mark('batchesWritten');
      } catch (err) {
        starts.abandon();
        await recorder.abandon();
        await announced();
        // Cancelled (superseded): the activity reports a cancellation, not an evaluation failure.
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('the evaluation was cancelled');
        throw ApplicationFailure.nonRetryable(`evaluation failed: ${(err as Error).message}`, 'EvaluationError');
      } finally {
        clearInterval(ticker);
        clearTimeout(quiet);
      }
      await announced();
      if (jobs === 0 && errors > 0) {
        throw ApplicationFailure.nonRetryable(`evaluation failed: ${lastError}`, 'EvaluationError');
      }

      // Dependency edges between this evaluation's builds, and aggregates' constituents.
      const edges: Array<{ build_id: string; dependency_build_id: string }> = [];
      for (const e of pendingEdges) {
        for (const d of e.inputDrvs) {
          const dep = drvToBuild.get(d);
          if (dep && dep !== e.buildId) edges.push({ build_id: e.buildId, dependency_build_id: dep });
        }
      }
      const constituentRows: Array<{ aggregate_build_id: string; constituent_build_id: string }> = [];
      for (const a of aggregates) {
        for (const name of a.constituents) {
          const c = nameToBuild.get(name);
          if (c && c !== a.buildId) constituentRows.push({ aggregate_build_id: a.buildId, constituent_build_id: c });
        }
      }
      if (input.startsInBackground) {
        // The edges, the counts and the `completed` mark are one transaction: the evaluation completes
        // as its last writes commit, and the workflow's bookkeeping (notifications, channels) follows.
        // What is still queued is left to startBuildWorkflowsOfEvaluation; the starts in flight finish after.
        starts.abandon();
        await db.transaction(async (trx) => {
          await insertBuildDependencies(trx, edges);
          await insertAggregateConstituents(trx, constituentRows);
          await recordEvaluationCounts(trx, evaluation.id, { jobs, errors });
          await markEvaluationCompleted(trx, evaluation.id);
        });
        mark('completed');
        await starts.drain().catch((err) => log.warn('a build workflow start failed; it is retried after the evaluation', { error: (err as Error).message }));
        await forgetStarted();
      } else {
        await insertBuildDependencies(db, edges);
        await insertAggregateConstituents(db, constituentRows);
        startBuilds(aggregates.map((a) => ({ id: a.buildId, job_name: a.jobName, system: a.system })));
        await whileHeartbeating(ctx, () => ({ jobs, errors, waitingStarts: starts.waiting }), () => starts.drain());
        await forgetStarted();
        await recordEvaluationCounts(db, evaluation.id, { jobs, errors });
      }
      mark('done');
      batchMs.other -= batchMs.insert + batchMs.alreadyBuilt;
      log.info('evaluation recorded', { evaluationId: evaluation.id, jobs, errors, seconds: (Date.now() - started) / 1000, phasesMs: phases, batchMs, evaluatorLoopUtilization });
      return { jobs, errors };
    },

    /**
     * Starts the BuildWorkflows of an evaluation's builds that have none yet, highest priority first,
     * STARTS_IN_FLIGHT at a time, heartbeating, while fewer than RINGMASTER_MAX_OPEN_BUILDS build
     * workflows are open (started and not finished): each round starts at most the room it counted
     * (and at most START_PAGE), then counts again; with no room it waits for builds to finish. It reads
     * what is left from `build_workflow_starts`, so after a crash it resumes where it stopped; a start of
     * a workflow that exists already (started before the crash, even if closed since) changes nothing.
     * A build bumped while it waits is started first by the next round.
     */
    async startBuildWorkflowsOfEvaluation(input: { evaluationId: string }): Promise<{ started: number; eagerly?: number; waitedForBatch?: boolean }> {
      const ctx = Context.current();
      // Nothing to start (e.g. an evaluation that failed before recording a build): nothing to look up.
      if (!(await evaluationHasBuildsToStart(db, input.evaluationId))) return { started: 0 };
      const evaluation = await findEvaluation(db, input.evaluationId);
      if (!evaluation) throw ApplicationFailure.nonRetryable(`evaluation ${input.evaluationId} not found`, 'NotFound');
      const jobset = await findJobsetToEvaluate(db, evaluation.jobset_id);
      if (!jobset) throw ApplicationFailure.nonRetryable(`jobset ${evaluation.jobset_id} not found`, 'NotFound');
      // Issue 6: the builder, if free, starts on the evaluation's waiting derivations now, while their builds'
      // workflows start and catch up (a dispatcher that cannot take it drops the word; it only saves time).
      const asked = await deps.workflows.signalDispatcher(realiseEvaluationSignal, [{ evaluationId: evaluation.id }]).then(
        () => true,
        (err) => {
          log.warn('could not ask for a batch of the evaluation', { evaluationId: evaluation.id, error: String(err) });
          return false;
        },
      );
      // A build whose derivation a running batch realises as an extra (the evaluation's own batch, or a later
      // one that takes its waiting derivations) is held back: its workflow starts once that derivation has
      // ended, finds it built (or its failure cached) and finishes in its first task, instead of a build and
      // a derivation workflow that plan, queue and wait beside the batch's Nix, on the same cores. Only the
      // only enabled builder takes extras (the dispatcher's `mayTakeExtras`), so only then is the batch's
      // word awaited.
      // A dispatcher whose builder had no free slot dropped the word: nothing is held, and nothing is awaited.
      const remote = await countRemoteBuilders(db);
      const taken = asked && (remote.all === 0 || remote.enabled === 1)
        ? await deps.workflows.dispatcherRealisesEvaluation(evaluation.id).catch(() => undefined)
        : false;
      const waitedForBatch = taken !== false;
      if (waitedForBatch) {
        for (const t0 = Date.now(); Date.now() - t0 < BATCH_WORD_MS && !(await evaluationHasHeldBuilds(db, evaluation.id)); ) {
          ctx.heartbeat({ started: 0, waitingForBatch: true });
          await ctx.sleep(HOLD_POLL_MS);
        }
      }
      const bound = new OpenBuildBound(db, deps.config.maxOpenBuilds);
      const backlog = new WorkflowTaskBacklogGate(() => deps.workflows.workflowTaskBacklog(), deps.config.maxWorkflowTaskBacklog);
      let started = 0;
      // Starts whose first workflow task the server handed straight to this worker (lib/eager-starts.ts).
      let eagerly = 0;
      for (;;) {
        const roundStarted = Date.now();
        // The page first: a round that finds every build left held back (or none left) needs no count.
        const candidates = await buildsWithoutWorkflow(db, evaluation.id, START_PAGE, { notHeld: true });
        if (candidates.length === 0) {
          if (!(await evaluationHasBuildsToStart(db, evaluation.id))) break;
          // Every build left is held back for a running batch: its rows go as its derivations end.
          ctx.heartbeat({ started, held: true });
          await untilHeldBuildsReleased(ctx.sleep(HOLD_POLL_MS));
          // Woken by a release: derivations that end together (Nix's slots) go in one round.
          const early = roundStarted + HELD_ROUND_MIN_MS - Date.now();
          if (early > 0) await ctx.sleep(early);
          continue;
        }
        // No more workflow tasks queue than the gate allows (builds released by a batch, built already, are
        // not counted by the bound below): asked first, as it counts every RECOUNT_MS, the bound every second.
        const admitted = await backlog.take(candidates.length, () => ctx.heartbeat({ started, waitingForWorkflowTasks: true }), ctx.cancellationSignal);
        // The rounds of an evaluation whose builds a batch releases one by one come every HOLD_POLL_MS or
        // so: the bound counts at most once a second for them.
        const room = await bound.claim(admitted);
        if (room === 0) {
          // The page is read again once there is room: a build bumped meanwhile goes first.
          await bound.waitForRoom(() => ctx.heartbeat({ started, waitingForRoom: true }), ctx.cancellationSignal);
          continue;
        }
        const page = candidates.slice(0, room);
        // Started builds lose their start row MARK_EVERY at a time, so a crash repeats few starts; all of
        // them before the next count, which sees a build as open once its row is gone.
        let startedIds: string[] = [];
        let marking = Promise.resolve();
        const markStarted = () => {
          const ids = startedIds;
          startedIds = [];
          started += ids.length;
          marking = marking.then(() => markBuildWorkflowsStarted(db, ids));
          return marking;
        };
        const starts = new ConcurrentStarts<BuildToStart>(STARTS_IN_FLIGHT, async (b) => {
          if ((await startBuildWorkflow(jobset, evaluation.id, b)).eagerly) eagerly++;
          startedIds.push(b.id);
          if (startedIds.length >= MARK_EVERY) await markStarted();
        });
        try {
          // The head of the page (the highest priority: a bumped build) starts before the rest of its
          // round, which would otherwise race it (STARTS_IN_FLIGHT at once): one round trip per round.
          for (const part of [page.slice(0, 1), page.slice(1)]) {
            starts.push(...part);
            await whileHeartbeating(ctx, () => ({ started: started + startedIds.length }), () => starts.drain());
          }
        } finally {
          // What started is not started again by the next attempt, even when a start of this page failed.
          await markStarted();
        }
      }
      return { started, eagerly, waitedForBatch };
    },

    async finishEvaluation(input: { evaluationId: string; status: EvaluationStatus; errorMessage: string | null }): Promise<void> {
      await finishEvaluationRecord(db, input.evaluationId, input.status, input.errorMessage);
      // Builds can all finish while the evaluation still runs: the last chance to promote is now.
      if (input.status === 'completed') await promoteChannelsOfEvaluation(db, input.evaluationId);
      await logEvaluationFinished(deps.logger, db, input.evaluationId).catch(() => undefined);
      await notifyEvaluationEvent(deps, input.evaluationId, 'evaluation_finished');
    },

    /**
     * A newer evaluation of the same jobset and branch supersedes older pending or running ones; their
     * builds that this evaluation does not also want are cancelled.
     */
    async supersedeOlderEvaluations(input: { evaluationId: string }): Promise<{ superseded: number; cancelledBuilds: number }> {
      const current = await findEvaluation(db, input.evaluationId);
      if (!current) return { superseded: 0, cancelledBuilds: 0 };
      const older = await olderActiveEvaluations(db, current);
      let cancelledBuilds = 0;
      for (const o of older) {
        await markEvaluationSuperseded(db, o.id, current.id);
        await logEvaluationFinished(deps.logger, db, o.id).catch(() => undefined);
        try {
          await deps.workflows.cancelEvaluation(o.id);
        } catch (err) {
          log.warn('could not cancel superseded evaluation', { id: o.id, error: (err as Error).message });
        }
      }
      // Builds of superseded (or earlier-completed-but-still-building) evaluations that nothing newer wants.
      const stale = await buildsOnlySupersededEvaluationsWant(db, current, older.map((o) => o.id));
      // A few cancels at a time: one after another, thousands of them would outlast this local activity.
      for (let i = 0; i < stale.length; i += 20) {
        await Promise.all(
          stale.slice(i, i + 20).map(async (b) => {
            if (await deps.workflows.cancelBuild(b.id)) cancelledBuilds++;
            // No workflow yet (its evaluation still starts them): the row says cancelled, and the
            // workflow, once started, finds the build finished.
            else {
              // Held back while a running batch builds its derivation as an extra: that batch stops.
              if (await cancelUnstartedBuild(db, deps.workflows, b.id, `superseded by evaluation ${current.id}`)) cancelledBuilds++;
            }
          }),
        );
      }
      return { superseded: older.length, cancelledBuilds };
    },
  };
}

export type EvaluationActivities = ReturnType<typeof createEvaluationActivities>;
