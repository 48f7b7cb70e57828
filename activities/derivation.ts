import { Context, log } from '@temporalio/activity';
import { secretBoxFor, secretKeyFileOf } from '../lib/secret-box';
import type { ActivityDeps } from './deps';
import { LOCAL_BUILDER, releaseSlotSignal, reprioritizeSignal, requestSlotSignal, withdrawRequestSignal, type BatchStep, type DerivationInput } from '../workflows/shared';
import type { RealisePhase, StepPhase } from '../lib/statuses';
import { missingDerivationMessage, readDerivation, type DerivationInfo } from './nix/drv';
import { locallyInvalidPaths } from './realise/closure';
import { realiseLocally } from './realise/local';
import { realiseOnBuilder } from './realise/remote';
import type { BuilderSpec, RealiseResult } from './realise/types';
import { builderSpecOf } from './realise/builder-spec';
import { BuildLogWriter, liveLogPath } from '../lib/build-log';
import { markStepsOfDerivation, markStepsQueued, recordSteps } from './records/steps';
import { findCachedFailure, findCachedFailureFor, ownFailureOf, recordCachedFailure, type OwnFailureStatus } from './records/cached-failures';
import { anyRemoteBuilder, findRemoteBuilder } from './records/builders';
import { assignBuilderToBuildsOfDerivation, buildsOfSameEvaluationByDerivation, markBatchExtraWaitedOn } from './records/builds';
import { logBuilderFailure } from './operator-lines';
import { liveConfigFile } from '../lib/live-config-file';
import { whileDatabaseUnavailable } from './database-retry';
import { notifyBuildEvent } from './notifications';

export interface RealiseStepInput {
  drvPath: string;
  builderId: string;
  logBuildId: string;
  timeoutSeconds: number;
  maxSilentSeconds: number;
  /**
   * The dispatcher request whose slot this step holds: the activity releases it itself as soon as the
   * Nix process has ended (not a builder failure), before its own bookkeeping and without waiting for a
   * workflow task of the derivation. Unset by derivation workflows that release the slot themselves.
   */
  slotRequestId?: string;
}

export type DerivationState =
  | { kind: 'valid'; outputs: Record<string, string> }
  | {
      kind: 'cached_failure';
      errorMessage: string;
      /**
       * The failure was recorded after the build this derivation runs for was created: that build was
       * waiting for it (it attached a moment after the derivation's last run closed), so for it this is
       * its own failure, with this status (Hydra marks the builds queued on a failing step failed too).
       */
      failedAfterQueued?: { status: OwnFailureStatus; errorMessage: string | null };
    }
  | { kind: 'needs_build' };

/** A derivation whose `.drv` (or an input's) has left the store: it cannot be built (issue 6, planned by the derivation). */
export type MissingDerivation = { kind: 'missing_derivation'; errorMessage: string };

/** A derivation that plans its own inputs: its state, and when it needs building, the input derivations to wait on first. */
export type DerivationPlan =
  | Exclude<DerivationState, { kind: 'needs_build' }>
  | MissingDerivation
  | {
      kind: 'needs_build';
      inputs: DerivationInput[];
      jobNames: Record<string, string>;
      workflowIds: Record<string, string>;
      /**
       * The derivation may queue for a batch at once, before its inputs are built, since one Nix
       * realises a batch in dependency order and builds missing inputs along: when the worker's own Nix
       * builds (no remote builder is configured), or when every input still to build has the
       * derivation's own system and required features (a builder that takes it can build them too).
       */
      runAhead?: boolean;
      /**
       * A running batch realises it as an extra (`batch_extras`): the derivation waits for that batch's word
       * (`stepRealised`) before it attaches to its inputs and queues.
       */
      extraOfRunningBatch?: boolean;
    };

/** What the dispatcher needs to place a derivation: its DerivationInput's scheduling fields, and more. */
export interface SlotRequestInput extends Pick<DerivationInput, 'drvPath' | 'system' | 'requiredFeatures' | 'priority' | 'jobsetId' | 'shares'> {
  requestId: string;
  avoidBuilders: string[];
  reprioritizeOnly?: boolean;
}

export type RealiseStepOutcome = Omit<RealiseResult, 'logBytes'> & {
  logPath: string | null;
  /** The activity released the step's slot (see RealiseStepInput.slotRequestId). */
  slotReleased?: boolean;
};

/** Whether every builder that can build `drv` can build `input` too: the same system and required features. */
function buildsWhereItDoes(input: DerivationInfo, drv: DerivationInfo): boolean {
  const features = (d: DerivationInfo) => [...d.requiredSystemFeatures].sort().join(' ');
  return input.system === drv.system && features(input) === features(drv);
}

export function createDerivationActivities(deps: ActivityDeps) {
  const { db } = deps;
  const signalDispatcher = deps.workflows.signalDispatcher.bind(deps.workflows);

  /**
   * The derivation's cached failure (it failed before and is not built again), if it has one; for
   * `forBuildId`, whether that build was created before the failure was decided (it waited for it).
   */
  async function cachedFailureOf(drvPath: string, forBuildId?: string): Promise<Extract<DerivationState, { kind: 'cached_failure' }> | undefined> {
    const cached = forBuildId === undefined ? await findCachedFailure(db, drvPath) : await findCachedFailureFor(db, drvPath, forBuildId);
    if (!cached) return undefined;
    const state = { kind: 'cached_failure' as const, errorMessage: `cached failure (${cached.status})${cached.error_message ? `: ${cached.error_message}` : ''}` };
    // Found without a build, a failure is no build's own.
    const own = ownFailureOf({ decidedAfterBuild: false, ...cached });
    return own ? { ...state, failedAfterQueued: own } : state;
  }

  /**
   * Whether the derivation's outputs are already valid in the server's store, or failed before; the
   * failure as `logBuildId`'s build sees it (failed, when it was decided after that build was created).
   */
  async function checkDerivation(input: { drvPath: string; logBuildId?: string }): Promise<DerivationState> {
    const cached = await cachedFailureOf(input.drvPath, input.logBuildId);
    if (cached) return cached;
    const drv = await readDerivation(input.drvPath);
    const missing = await locallyInvalidPaths(Object.values(drv.outputs));
    if (missing.size === 0) return { kind: 'valid', outputs: drv.outputs };
    return { kind: 'needs_build' };
  }

  async function requestBuilderSlot(input: SlotRequestInput & { batch?: BatchStep }): Promise<void> {
    if (input.reprioritizeOnly) {
      await signalDispatcher(reprioritizeSignal, [{ requestId: input.requestId, priority: input.priority }]);
      return;
    }
    await signalDispatcher(requestSlotSignal, [
      {
        requestId: input.requestId,
        system: input.system,
        requiredFeatures: input.requiredFeatures,
        priority: input.priority,
        jobsetId: input.jobsetId,
        shares: input.shares,
        avoidBuilders: input.avoidBuilders,
        ...(input.batch ? { batch: input.batch } : {}),
      },
    ]);
  }

  return {
    checkDerivation,

    /**
     * The derivation's own plan (issue 6: a derivation waits on its inputs, not the builds on every
     * step): a cached failure, or valid outputs, or the input derivations whose outputs are not valid
     * yet, each to be realised by its own (shared) derivation workflow that plans its inputs in turn.
     * Reads the .drv files directly; asks `nix-store` only about outputs that exist on disk.
     */
    async planDerivation(input: DerivationInput): Promise<DerivationPlan> {
      const cached = await cachedFailureOf(input.drvPath, input.logBuildId);
      if (cached) return cached;
      let drv: DerivationInfo;
      let inputDrvs: Array<{ path: string; info: DerivationInfo }>;
      try {
        drv = await readDerivation(input.drvPath);
        inputDrvs = await Promise.all(drv.inputDrvs.map(async (path) => ({ path, info: await readDerivation(path) })));
      } catch (err) {
        // A .drv gone from the store cannot be realised however often this is retried.
        const errorMessage = missingDerivationMessage(err, input.drvPath);
        if (errorMessage === undefined) throw err;
        return { kind: 'missing_derivation', errorMessage };
      }
      const own = Object.values(drv.outputs);
      const invalid = await locallyInvalidPaths([...own, ...inputDrvs.flatMap((i) => Object.values(i.info.outputs))]);
      if (own.length > 0 && own.every((o) => !invalid.has(o))) return { kind: 'valid', outputs: drv.outputs };
      const needed = inputDrvs.filter((i) => Object.values(i.info.outputs).some((o) => invalid.has(o)));
      // An input that is a job of the same evaluation writes its log to that job's build, as planned builds do.
      const owners = await buildsOfSameEvaluationByDerivation(db, input.logBuildId, needed.map((i) => i.path));
      const ownerOf = new Map(owners.map((o) => [o.drv_path, o]));
      const logBuildOf = (path: string) => ownerOf.get(path)?.id ?? input.logBuildId;
      // Each input to build gets its step row now, in the build that runs it (before this derivation can be
      // queued, so a batch that builds an input along finds its row): a closure is planned once, not per build.
      await recordSteps(db, needed.map((i) => ({ buildId: logBuildOf(i.path), drvPath: i.path })));
      return {
        kind: 'needs_build',
        inputs: needed.map((i) => ({
          drvPath: i.path,
          system: i.info.system,
          requiredFeatures: i.info.requiredSystemFeatures,
          priority: input.priority,
          jobsetId: input.jobsetId,
          shares: input.shares,
          logBuildId: logBuildOf(i.path),
          timeoutSeconds: input.timeoutSeconds,
          maxSilentSeconds: input.maxSilentSeconds,
          plansInputs: true,
        })),
        jobNames: Object.fromEntries(owners.map((o) => [o.drv_path, o.job_name])),
        workflowIds: Object.fromEntries(needed.map((i) => [i.path, deps.workflows.derivationWorkflowId(i.path)])),
        runAhead: needed.every((i) => buildsWhereItDoes(i.info, drv)) || !(await anyRemoteBuilder(db)),
        ...((await markBatchExtraWaitedOn(db, input.drvPath)) ? { extraOfRunningBatch: true } : {}),
      };
    },

    /**
     * A derivation's way into the queue in one local activity: (when `check`) whether it is already
     * valid or a cached failure, and if it needs building its steps marked queued and its slot asked for.
     */
    async queueDerivation(input: { check: boolean; logBuildId?: string; request: SlotRequestInput & { batch?: BatchStep } }): Promise<DerivationState> {
      if (input.check) {
        const state = await checkDerivation({ drvPath: input.request.drvPath, logBuildId: input.logBuildId });
        if (state.kind !== 'needs_build') return state;
      }
      // Marked first: a database error then fails the activity before the dispatcher has the request,
      // so its retry never asks twice (a second request after the grant would free the granted slot).
      await markStepsQueued(db, input.request.drvPath);
      // A running batch that realises it as an extra then tells this workflow its word (batch_extras.workflow_waits):
      // the dispatcher holds the request while that batch runs.
      await markBatchExtraWaitedOn(db, input.request.drvPath);
      await requestBuilderSlot(input.request);
      return { kind: 'needs_build' };
    },

    async recordCachedFailure(input: { drvPath: string; status: string; errorMessage: string | null }): Promise<void> {
      await recordCachedFailure(db, input);
    },

    /** Asks the dispatcher (started on first use) for a builder slot, or raises a queued request's priority. */
    requestBuilderSlot,

    /**
     * Gives a granted slot back, or (`builderId` null) withdraws a request; `kill` (a cancelled
     * derivation) also stops the batch realising it, if one does.
     */
    async releaseBuilderSlot(input: { requestId: string; builderId: string | null; builderFailed: boolean; failureMessage?: string; kill?: boolean }): Promise<void> {
      if (input.builderId === null) {
        await signalDispatcher(withdrawRequestSignal, [{ requestId: input.requestId, ...(input.kill ? { kill: true } : {}) }]);
        return;
      }
      await signalDispatcher(releaseSlotSignal, [{ requestId: input.requestId, builderId: input.builderId, builderFailed: input.builderFailed, failureMessage: input.failureMessage }]);
    },

    async markStepPhase(input: { drvPath: string; phase: StepPhase; builderId: string | null }): Promise<void> {
      await markStepsOfDerivation(db, input.drvPath, { phase: input.phase, builderId: input.builderId });
    },

    /**
     * Realises one derivation on the granted builder (remote over SSH, or the worker's own Nix),
     * streaming its log into the build log, heartbeating, and killing the build when cancelled.
     */
    async realiseStep(input: RealiseStepInput): Promise<RealiseStepOutcome> {
      const ctx = Context.current();
      const remoteId = input.builderId === LOCAL_BUILDER ? null : input.builderId;
      const writer = await BuildLogWriter.open(deps.config.dataDir, input.logBuildId);
      const logPath = liveLogPath(deps.config.dataDir, input.logBuildId);
      // The rows are marked running while the Nix process starts (not before it): the phase marks
      // below follow this one in order, and the step's last mark waits for them all.
      const started = whileDatabaseUnavailable(() =>
        // The step rows and the builds in one statement.
        assignBuilderToBuildsOfDerivation(db, input.drvPath, { builderId: remoteId, logPath, steps: { phase: 'connecting', startedAt: new Date() } }),
      ).then(async (startedBuilds) => {
        for (const id of startedBuilds) await notifyBuildEvent(deps, id, 'build_started');
      });
      let marks: Promise<unknown> = started.catch(() => undefined);

      let lastBeat = 0;
      const beat = (detail?: string) => {
        const now = Date.now();
        if (now - lastBeat > 1000) {
          lastBeat = now;
          ctx.heartbeat(detail);
        }
      };
      const ticker = setInterval(() => ctx.heartbeat('alive'), 1_000);
      let pendingWrite = Promise.resolve();
      const opts = {
        timeoutSeconds: input.timeoutSeconds,
        maxSilentSeconds: input.maxSilentSeconds,
        // The config file's builds.log_limit_bytes applies live, to the next step; the environment's is the fallback.
        logLimitBytes: (await liveConfigFile(deps.config.configFile).current()).builds?.log_limit_bytes ?? deps.config.logLimitBytes,
        transferTimeoutSeconds: deps.config.transferTimeoutSeconds,
        signal: ctx.cancellationSignal,
        onLog: (chunk: string) => {
          pendingWrite = pendingWrite.then(() => writer.append(chunk)).catch(() => undefined);
          beat();
        },
        onPhase: (phase: RealisePhase) => {
          marks = marks.then(() => markStepsOfDerivation(db, input.drvPath, { phase, builderId: remoteId })).catch(() => undefined);
          beat(phase);
        },
      };
      let result: RealiseResult;
      let builderName = 'local';
      try {
        if (remoteId === null) {
          opts.onLog(`ringmaster: building ${input.drvPath} on the worker's own Nix (no remote builders configured)\n`);
          result = await realiseLocally(input.drvPath, opts);
        } else {
          const row = await whileDatabaseUnavailable(() => findRemoteBuilder(db, remoteId));
          if (!row) {
            result = { status: 'builder_failure', exitCode: null, errorMessage: `builder ${remoteId} no longer exists`, outputs: {}, logBytes: 0 };
          } else {
            const spec = builderSpecOf(row, secretBoxFor(secretKeyFileOf(deps.config)));
            builderName = row.name;
            opts.onLog(`ringmaster: building ${input.drvPath} on builder ${row.name}\n`);
            result = await realiseOnBuilder(deps.builderPool, spec, input.drvPath, opts);
          }
        }
      } catch (err) {
        await pendingWrite;
        await writer.close();
        await marks;
        throw err;
      } finally {
        clearInterval(ticker);
      }
      await pendingWrite;
      // The builder's slot is free once its process has ended: the next step may start while this one's records are written.
      let slotReleased = false;
      if (input.slotRequestId && result.status !== 'builder_failure') {
        slotReleased = await signalDispatcher(releaseSlotSignal, [{ requestId: input.slotRequestId, builderId: input.builderId, builderFailed: false }]).then(
          () => true,
          () => false,
        );
      }
      if (result.status === 'builder_failure') {
        await writer.append(`ringmaster: builder failure: ${result.errorMessage ?? 'unknown'}; the step will be retried elsewhere\n`);
        logBuilderFailure(deps.logger, { id: remoteId ?? LOCAL_BUILDER, name: builderName }, input.drvPath, result.errorMessage);
      }
      await writer.close();
      // A step whose start could not be recorded fails here, as it did before it ran.
      await started;
      await marks;
      const finished = result.status !== 'builder_failure';
      // The step is built: a database restart now must not cost a second build of it.
      await whileDatabaseUnavailable(() => markStepsOfDerivation(db, input.drvPath, {
        status: finished ? (result.status === 'succeeded' ? 'succeeded' : result.status) : 'running',
        phase: finished ? null : 'queued',
        builderId: remoteId,
        completedAt: finished ? new Date() : undefined,
        exitCode: result.exitCode,
        errorMessage: result.errorMessage,
      }));
      if (ctx.cancellationSignal.aborted) log.info('step cancelled', { drvPath: input.drvPath });
      return { status: result.status, exitCode: result.exitCode, errorMessage: result.errorMessage, outputs: result.outputs, logPath, slotReleased };
    },
  };
}

export type DerivationActivities = ReturnType<typeof createDerivationActivities>;
