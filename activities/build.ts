import fs from 'node:fs';
import type { ActivityDeps } from './deps';
import type { DerivationInput, DerivationResult, WaiterRef } from '../workflows/shared';
import { isFinishedBuildStatus, type BuildStatus } from '../lib/statuses';
import { logBuildFinished } from './operator-lines';
import type { StepPlan } from '../workflows/build-outcome';
import { missingDerivationMessage, readDerivation } from './nix/drv';
import { derivationsToBuild, locallyInvalidPaths } from './realise/closure';
import { readBuildMetrics, readBuildProductsOfOutputs, type BuildMetric, type BuildProduct } from './realise/products';
import { insertPlannedSteps, recordSteps } from './records/steps';
import { findCachedFailure, forgetCachedFailure, resultAsBuildSees } from './records/cached-failures';
import {
  buildsOfEvaluationByDerivation,
  constituentsOfAggregate,
  findBuildToPlan,
  markBuildRunning,
  type BuildToPlan,
  recordBuildResult,
  setBuildPriority,
} from './records/builds';
import { BuildLogWriter, compressedLogPath, liveLogPath } from '../lib/build-log';
import { notifyBuildEvent } from './notifications';
import { promoteChannelsOfEvaluation } from './channel-promotion';
import { mustWakeOutputsServer } from './records/outputs-to-serve';
import { ConcurrentStarts } from './concurrent-starts';

export interface PlannedStep extends StepPlan {
  system: string;
  requiredFeatures: string[];
  logBuildId: string;
}

export type BuildPlan =
  | { kind: 'finished'; status: BuildStatus; priority: number }
  | {
      kind: 'plan';
      steps: PlannedStep[];
      priority: number;
      jobsetId: string;
      shares: number;
      timeoutSeconds: number;
      maxSilentSeconds: number;
      derivationWorkflowIds: Record<string, string>;
      /**
       * The top derivation can plan and wait on its own inputs (issue 6): the build waits on it alone.
       * Not for an aggregate, whose constituents are steps beside the top derivation's own inputs.
       */
      topPlansInputs?: boolean;
      /**
       * The top derivation's outputs, when they are all valid already and it has no cached failure (issue 6:
       * a batch built it ahead of its turn, or another build did): the build succeeds without attaching to
       * its derivation's workflow. Not for an aggregate.
       */
      topBuilt?: Record<string, string>;
    };

/** Rolls back a start whose build has finished meanwhile. */
class FoundFinished extends Error {}

export function createBuildActivities(deps: ActivityDeps) {
  const { db } = deps;

  /** The status a build found finished by a late run of an activity keeps ('aborted' if it is not finished after all). */
  async function recordedFinalStatus(buildId: string): Promise<BuildStatus> {
    const now = await findBuildToPlan(db, buildId);
    return now && isFinishedBuildStatus(now.status) ? now.status : 'aborted';
  }

  /**
   * Records the build's result: outputs, products, metrics, its compressed log. A succeeded build's
   * outputs are queued to be served (closure size, GC roots, binary cache) by ServeBuildOutputsWorkflow,
   * in batches, after the build has closed.
   */
  async function finishBuild(
    input: { buildId: string; status: BuildStatus; errorMessage: string | null; top: DerivationResult | null },
    { onlyUnfinished = false, byTheBatch = false }: { onlyUnfinished?: boolean; byTheBatch?: boolean } = {},
  ): Promise<{ status: BuildStatus }> {
    const { buildId, top } = input;
    // A cached failure decided after this build was created is this build's own failure.
    const seen = await resultAsBuildSees(db, buildId, top?.drvPath, { status: input.status, errorMessage: input.errorMessage });
    const status = seen.status as BuildStatus;
    const outputs = status === 'succeeded' && top ? top.outputs : {};
    const products: BuildProduct[] = await readBuildProductsOfOutputs(outputs).catch(() => []);
    const metrics: BuildMetric[] = [];
    for (const path of Object.values(outputs)) metrics.push(...(await readBuildMetrics(path).catch(() => [])));
    const served = Object.keys(outputs).length > 0;

    // The log: compress this build's own live log; a build that shared another build's realisation points at that log.
    // Recorded by the batch that realised it: that batch, in this process, is where its late lines come from.
    let logPath: string | null = (await BuildLogWriter.compressLive(deps.config.dataDir, buildId, { lateLinesFromThisProcessOnly: byTheBatch })) ?? null;
    if (logPath === null && top?.logPath) {
      logPath = fs.existsSync(top.logPath) ? top.logPath : fs.existsSync(`${top.logPath}.gz`) ? `${top.logPath}.gz` : top.logPath;
    }
    const builderId = top?.builderId && top.builderId !== 'local' ? top.builderId : null;

    // A build's own failure decided before its step row existed (its derivation failed in a batch, built
    // along or as an extra, before the build started) closes that step with the failure, not as skipped.
    // The closure size of served outputs is recorded when they are served; no outputs, no size.
    const ownFailure = status === 'failed' || status === 'timeout' || status === 'log_limit_exceeded';
    const recorded = await recordBuildResult(
      db,
      {
        buildId,
        status,
        errorMessage: seen.errorMessage,
        outputs,
        products,
        metrics,
        closureSize: served ? undefined : null,
        logPath,
        builderId,
        steps: { status: status === 'succeeded' ? 'succeeded' : status === 'cancelled' ? 'cancelled' : 'skipped', ...(ownFailure && top ? { own: { drvPath: top.drvPath, status } } : {}) },
        queueOutputs: served,
      },
      { onlyUnfinished },
    );
    // Only with onlyUnfinished: a build found finished meanwhile keeps its result.
    if (!recorded) return { status: await recordedFinalStatus(buildId) };
    // Promotion first: the GC roots that serving recomputes then include a channel's new evaluation.
    if (recorded.has_channels) await promoteChannelsOfEvaluation(db, recorded.evaluation_id);
    if (served && (await mustWakeOutputsServer(db, buildId))) await deps.workflows.wakeBuildOutputsServer();
    await logBuildFinished(deps.logger, db, buildId, recorded).catch(() => undefined);
    await notifyBuildEvent(deps, buildId, 'build_finished');
    return { status };
  }

  /** The plan of a build that waits on its top derivation alone: that one step (one `.drv` read), and the derivation's outputs. */
  async function planTop(build: BuildToPlan): Promise<{ step: PlannedStep; outputs: Record<string, string> }> {
    const d = await readDerivation(build.drv_path);
    return { step: { drvPath: build.drv_path, isTop: true, inputs: [], jobName: build.job_name, system: d.system, requiredFeatures: d.requiredSystemFeatures, logBuildId: build.id }, outputs: d.outputs };
  }

  /** The outputs when every one is valid here and the derivation has no cached failure (which its workflow would answer). */
  async function validOutputsOf(outputs: Record<string, string>, drvPath: string): Promise<Record<string, string> | undefined> {
    const paths = Object.values(outputs);
    if (paths.length === 0 || paths.some((p) => p === '')) return undefined;
    if ((await locallyInvalidPaths(paths)).size > 0) return undefined;
    return (await findCachedFailure(db, drvPath)) ? undefined : outputs;
  }

  /**
   * The plan of an aggregate: the derivations of its closure whose outputs are missing, and its
   * constituents (each a step it waits on), dependencies first, the top last.
   */
  async function planClosure(build: BuildToPlan): Promise<PlannedStep[]> {
    const { order: needed, parsed } = await derivationsToBuild(build.drv_path);
    const constituents = await constituentsOfAggregate(db, build.id);
    for (const c of constituents) {
      if (!needed.includes(c.drv_path)) {
        needed.unshift(c.drv_path);
        if (!parsed.has(c.drv_path)) parsed.set(c.drv_path, await readDerivation(c.drv_path));
      }
    }
    // Another build of the same evaluation that *is* a step's derivation gets that step's log.
    const owners = await buildsOfEvaluationByDerivation(db, build.evaluation_id, needed);
    const ownerOf = new Map(owners.map((o) => [o.drv_path, o]));
    const neededSet = new Set(needed);
    const steps: PlannedStep[] = needed.map((drv) => {
      const d = parsed.get(drv)!;
      const isTop = drv === build.drv_path;
      const inputs = d.inputDrvs.filter((i) => neededSet.has(i) && i !== drv);
      if (isTop) for (const c of constituents) if (c.drv_path !== drv && !inputs.includes(c.drv_path)) inputs.push(c.drv_path);
      const owner = ownerOf.get(drv);
      return {
        drvPath: drv,
        isTop,
        inputs,
        jobName: owner?.job_name ?? null,
        system: d.system,
        requiredFeatures: d.requiredSystemFeatures,
        logBuildId: isTop ? build.id : owner?.id ?? build.id,
      };
    });
    // Top last, dependencies in closure order.
    return steps.sort((a, b) => (a.isTop === b.isTop ? 0 : a.isTop ? 1 : -1));
  }

  return {
    /**
     * Loads the build, marks it running and plans it. A build waits on its top derivation alone, which
     * plans its own inputs (issue 6): its plan is that one step, and its one step row (each derivation
     * planned below it records its row where it runs, see recordSteps). An aggregate plans as before:
     * every derivation of its closure whose outputs are not valid yet (dependencies first), plus its
     * constituents, each a step it waits on.
     */
    async startBuild(input: { buildId: string; restart: boolean }): Promise<BuildPlan> {
      const build = await findBuildToPlan(db, input.buildId);
      if (!build) return { kind: 'finished', status: 'aborted', priority: 0 };
      if (input.restart) {
        await forgetCachedFailure(db, build.drv_path);
      } else if (isFinishedBuildStatus(build.status)) {
        return { kind: 'finished', status: build.status, priority: build.priority };
      }

      let steps: PlannedStep[];
      let topBuilt: Record<string, string> | undefined;
      try {
        if (build.is_aggregate) steps = await planClosure(build);
        else {
          const top = await planTop(build);
          steps = [top.step];
          topBuilt = await validOutputsOf(top.outputs, build.drv_path);
        }
      } catch (err) {
        // A .drv gone from the store (garbage-collected since the evaluation, e.g. a restart of an old
        // build) cannot be realised however often this is retried: the build ends now, saying why.
        const errorMessage = missingDerivationMessage(err, build.drv_path);
        if (errorMessage === undefined) throw err;
        await finishBuild({ buildId: build.id, status: 'aborted', errorMessage, top: null });
        return { kind: 'finished', status: 'aborted', priority: build.priority };
      }

      // Built already, on a first start (issue 6: a batch realised it while the build was held back, or
      // another build did): the build records its result in one transaction, without a step row or a
      // running state of its own. A held build is running already, with the step row its batch recorded; one
      // found built otherwise has no step, as a build found built at its evaluation. A late run of this
      // activity (the build finished meanwhile) changes nothing and answers the recorded status.
      if (topBuilt && !input.restart) {
        const top: DerivationResult = { drvPath: build.drv_path, status: 'succeeded', outputs: topBuilt, errorMessage: null, builderId: null, logPath: null };
        const { status } = await finishBuild({ buildId: build.id, status: 'succeeded', errorMessage: null, top }, { onlyUnfinished: true });
        return { kind: 'finished', status, priority: build.priority };
      }

      const found = await db
        .transaction(async (trx) => {
          if (build.is_aggregate) {
            await insertPlannedSteps(trx, build.id, steps.map((s) => s.drvPath));
          } else {
            // A restart lists its new run's steps only.
            if (input.restart) await trx('build_steps').where({ build_id: build.id }).delete();
            await recordSteps(trx, [{ buildId: build.id, drvPath: build.drv_path }]);
          }
          // Last: marking the build running locks the jobset's rollup cells until the commit. A build
          // found finished (a late run of this activity) takes its step rows back with the rollback.
          const state = await markBuildRunning(trx, build.id);
          if (state === 'finished') throw new FoundFinished();
          return state;
        })
        .catch((err) => {
          if (err instanceof FoundFinished) return 'finished' as const;
          throw err;
        });
      if (found === 'finished') {
        // A late run of this activity (its workflow task had timed out and was retried): the build has
        // finished meanwhile, and neither its row nor its notifications go back to running.
        return { kind: 'finished', status: await recordedFinalStatus(input.buildId), priority: build.priority };
      }
      // Started once per run: a repeated start sends no second pending after the final status.
      if (found === 'started') await notifyBuildEvent(deps, build.id, 'build_started');
      if (input.restart) {
        for (const p of [liveLogPath(deps.config.dataDir, build.id), compressedLogPath(deps.config.dataDir, build.id)]) fs.rmSync(p, { force: true });
      }
      // Built already (a batch realised it while the build was held back, or another build did): the build
      // records its result here, and its workflow ends with this answer (issue 6: one local activity and one
      // status change less per build). Plans recorded by older code carried topBuilt to the workflow, which
      // finishes the build itself: replay reads those answers from the history.
      if (topBuilt) {
        const top: DerivationResult = { drvPath: build.drv_path, status: 'succeeded', outputs: topBuilt, errorMessage: null, builderId: null, logPath: null };
        const { status } = await finishBuild({ buildId: build.id, status: 'succeeded', errorMessage: null, top });
        return { kind: 'finished', status, priority: build.priority };
      }
      return {
        kind: 'plan',
        steps,
        priority: build.priority,
        jobsetId: build.jobset_id,
        shares: build.scheduling_shares,
        timeoutSeconds: build.meta_timeout ?? build.build_timeout,
        maxSilentSeconds: build.meta_max_silent ?? build.max_silent,
        derivationWorkflowIds: Object.fromEntries(steps.map((s) => [s.drvPath, deps.workflows.derivationWorkflowId(s.drvPath)])),
        topPlansInputs: !build.is_aggregate,
        ...(topBuilt ? { topBuilt } : {}),
      };
    },

    /** Registers the build as a waiter of the derivation's shared workflow, starting it if needed. */
    async attachToDerivation(input: Omit<DerivationInput, 'priority'> & { priority: number; waiterWorkflowId: string }): Promise<void> {
      const { waiterWorkflowId, ...derivation } = input;
      await deps.workflows.attachToDerivation(derivation, { workflowId: waiterWorkflowId, priority: input.priority });
    },

    /** Registers the build as a waiter of several derivations (their signal-with-starts run 32 at a time). */
    async attachToDerivations(input: { derivations: DerivationInput[]; waiter: WaiterRef }): Promise<void> {
      const starts = new ConcurrentStarts<DerivationInput>(32, (d) => deps.workflows.attachToDerivation(d, input.waiter));
      starts.push(...input.derivations);
      await starts.drain();
    },

    async setBuildPriority(input: { buildId: string; priority: number }): Promise<void> {
      await setBuildPriority(db, input.buildId, input.priority);
    },

    finishBuild,
  };
}

export type BuildActivities = ReturnType<typeof createBuildActivities>;
