import { Context, log } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { batchExtrasSignal, releaseSlotSignal, type DerivationResult, type RealiseBatchInput, type StepRealisation, type StepRealisationStatus } from '../workflows/shared';
import { readDerivation, type DerivationInfo } from './nix/drv';
import { localBatchBuilder } from './realise/local-batch';
import { RemoteBatchBuilder } from './realise/remote-batch';
import type { BatchBuilder, BatchRun } from './realise/batch-run';
import { BuilderConnectionError } from './realise/ssh-connection';
import { builderSpecOf } from './realise/builder-spec';
import type { NixBuildEvent, NixBuildFailure } from './realise/nix-json-log';
import { lastErrorLines } from './realise/nix-process';
import { BuildLogWriter, liveLogPath } from '../lib/build-log';
import { logBuildOfStep, markStepsOfDerivation, recordStepsOfExtras } from './records/steps';
import { createBuildActivities } from './build';
import { assignBuilderToBuildsOfDerivation, endStepsOfDerivation, BATCH_TOUCH_MS, firstWaitingBuildOfEvaluation, forgetBatchExtras, forgetBatchExtraWaitedOn, markQueuedBatchExtrasWaitedOn, recordBatchExtras, touchBatchExtras, waitingDerivationsOfSameEvaluation, type BatchLead } from './records/builds';
import { locallyInvalidPaths } from './realise/closure';
import { cachedFailuresAmong, recordCachedFailure } from './records/cached-failures';
import { findRemoteBuilder } from './records/builders';
import { LOCAL_BUILDER } from '../workflows/shared';
import { secretBoxFor, secretKeyFileOf } from '../lib/secret-box';
import { logBuilderFailure } from './operator-lines';
import { liveConfigFile } from '../lib/live-config-file';
import { whileDatabaseUnavailable } from './database-retry';
import { notifyBuildEvent } from './notifications';
import { heldBuildsReleased } from './held-builds';

/** One derivation as the batch sees it: where its log goes, what Nix said of it. */
interface StepInBatch {
  /** The build whose log receives its log (a member's own, or looked up for an input Nix built along). */
  logBuildId: Promise<string | undefined>;
  writer: Promise<BuildLogWriter | undefined> | undefined;
  /** Its records and log, written in the order Nix reported them. */
  chain: Promise<void>;
  logBytes: number;
  failure?: { failure: NixBuildFailure; message: string };
  /** When its build started in this batch: when a build ends, whether its outputs are valid says if it was this one. */
  started?: Date;
  /** How many ends Nix had counted when it started: its own end is one of those counted after. */
  endingsBefore?: number;
  outputs?: Promise<string[]>;
}

/** Why the batch's process was stopped before it ended by itself. */
type Stop = { status: 'cancelled' } | { status: 'log_limit_exceeded'; drvPath: string; limit: number } | { status: 'builder_failure'; message: string };

export function createBatchActivities(deps: ActivityDeps) {
  const { db } = deps;
  const { finishBuild } = createBuildActivities(deps);

  /** The builder a batch runs on: the worker's own Nix, or an SSH builder (its name, or why it cannot be used). */
  async function batchBuilderFor(builderId: string): Promise<{ builder: BatchBuilder; name: string } | { failure: string }> {
    if (builderId === LOCAL_BUILDER) return { builder: localBatchBuilder, name: LOCAL_BUILDER };
    const row = await whileDatabaseUnavailable(() => findRemoteBuilder(db, builderId));
    if (!row) return { failure: `builder ${builderId} no longer exists` };
    const spec = builderSpecOf(row, secretBoxFor(secretKeyFileOf(deps.config)));
    return { builder: new RemoteBatchBuilder(deps.builderPool, spec, deps.config.transferTimeoutSeconds), name: row.name };
  }

  /**
   * The batch's extras (`BatchExtras`): the waiting derivations of its first member's evaluation that
   * need no system feature and are not built here yet, members left out.
   */
  async function chooseExtras(input: RealiseBatchInput, members: Map<string, unknown>, first: BatchLead, derivationOf: (drvPath: string) => Promise<DerivationInfo>): Promise<string[]> {
    const spec = input.extras;
    if (!spec || !first.logBuildId) return [];
    const candidates = (
      await whileDatabaseUnavailable(() =>
        waitingDerivationsOfSameEvaluation(db, {
          buildId: first.logBuildId,
          system: 'system' in spec ? spec.system : first.system ?? '',
          priority: 'system' in spec ? spec.priority : first.priority ?? 0,
          timeoutSeconds: first.timeoutSeconds,
          maxSilentSeconds: first.maxSilentSeconds,
          limit: spec.limit + members.size,
        }),
      )
    ).filter((d) => !members.has(d));
    const drvs = await Promise.all(candidates.map((d) => derivationOf(d).catch(() => undefined)));
    const plain = candidates.flatMap((d, i) => (drvs[i] && drvs[i].requiredSystemFeatures.length === 0 ? [{ drvPath: d, outputs: Object.values(drvs[i].outputs) }] : []));
    // Built already (here: a build realised elsewhere is fetched here): its own build finds it valid.
    const invalid = await locallyInvalidPaths(plain.flatMap((c) => c.outputs));
    return plain.filter((c) => c.outputs.some((o) => invalid.has(o))).slice(0, spec.limit).map((c) => c.drvPath);
  }

  return {
    /**
     * Realises a batch of queued derivations with one `nix-store --realise` (issue 6), on the worker's
     * own Nix or on an SSH builder (its missing closure copied once, before), writing each one's step
     * rows and log as Nix reports it, and telling each one's DerivationWorkflow its result
     * (`stepRealised`) as soon as it ends (over SSH, once its outputs are here), members and inputs that
     * Nix built along alike. A cancel (a member was cancelled) or a member over the log limit stops the
     * process; the members it interrupted are told so, and queue again. A builder that fails (cannot be
     * reached, the connection is lost) stops it too: the dispatcher hears of the failure first (the
     * builder backs off), then the unfinished members (`builder_failure`), which queue again. A retry
     * (the worker died) runs the batch again: what was built is valid and reported at once.
     */
    async realiseBatch(input: RealiseBatchInput): Promise<{ realised: number }> {
      const ctx = Context.current();
      const ticker = setInterval(() => ctx.heartbeat(), 1_000);
      /** Touches the batch's extras while it runs, until their rows are forgotten. */
      let aliveTicker: NodeJS.Timeout | undefined;
      /** The batch's builder, once chosen: closed at the end (over SSH, its store session). */
      let usedBuilder: BatchBuilder | undefined;
      try {
        return await realiseMembers();
      } finally {
        clearInterval(ticker);
        clearInterval(aliveTicker);
        usedBuilder?.close?.();
      }

      async function realiseMembers(): Promise<{ realised: number }> {
        const members = new Map(input.members.map((m) => [m.drvPath, m]));
        /** The batch's extras (`BatchExtras`), once chosen. */
        const extras = new Set<string>();
        /**
         * An extra ended (or, without `drvPath`, the batch did): its rows go, and the start loop looks at once.
         * For one extra, answers whether a derivation workflow waits for the batch's word on it.
         */
        const releaseExtras = async (drvPath?: string): Promise<boolean> => {
          const waitedOn = await whileDatabaseUnavailable(async () =>
            drvPath ? forgetBatchExtraWaitedOn(db, input.batchId, drvPath) : (await forgetBatchExtras(db, input.batchId), false),
          );
          heldBuildsReleased();
          return waitedOn;
        };
        const chosen = await batchBuilderFor(input.builderId);
        const builder: BatchBuilder | undefined = 'builder' in chosen ? chosen.builder : undefined;
        usedBuilder = builder;
        const recordedBuilderId = builder ? builder.recordedBuilderId : input.builderId;
        const logLimitBytes = (await liveConfigFile(deps.config.configFile).current()).builds?.log_limit_bytes ?? deps.config.logLimitBytes;
        // The member whose limits the batch's Nix applies; a batch of an evaluation's waiting derivations
        // (no member) takes those of its first waiting build, and has nothing to do without one.
        const first: BatchLead | undefined = input.members[0] ?? (input.extras && 'evaluationId' in input.extras ? await whileDatabaseUnavailable(() => firstWaitingBuildOfEvaluation(db, (input.extras as { evaluationId: string }).evaluationId)) : undefined);
        if (!first) return { realised: 0 };
        const steps = new Map<string, StepInBatch>();
        /** Each `.drv` the batch reads, read once (a store path's content never changes). */
        const derivations = new Map<string, Promise<DerivationInfo>>();
        const derivationOf = (drvPath: string): Promise<DerivationInfo> => {
          let read = derivations.get(drvPath);
          if (!read) derivations.set(drvPath, (read = readDerivation(drvPath)));
          return read;
        };
        /** The build that gets an extra's log, where the batch recorded that build's step row itself (`recordStepsOfExtras`). */
        let logBuildOfExtra = new Map<string, string>();
        const reported = new Set<string>();
        const errors: unknown[] = [];
        const otherLines: string[] = [];
        let stop: Stop | undefined;
        /** The stop, when the batch was stopped for this member's log going over the limit. */
        const logLimitStopOf = (drvPath: string) => (stop?.status === 'log_limit_exceeded' && stop.drvPath === drvPath ? stop : undefined);

        /** When Nix's count of ended builds grew, in order: a build ended at the first of these after its start. */
        const endings: Date[] = [];
        /** When a started build ended on the builder (not when its outputs arrived here): the first end Nix counted after its start. */
        const endOf = (s: StepInBatch): Date => (s.endingsBefore !== undefined ? endings[s.endingsBefore] : undefined) ?? new Date();
        const stepOf = (drvPath: string): StepInBatch => {
          let s = steps.get(drvPath);
          if (!s) {
            const member = members.get(drvPath);
            const extraLog = logBuildOfExtra.get(drvPath);
            const logBuildId = member ? Promise.resolve(member.logBuildId) : extraLog !== undefined ? Promise.resolve(extraLog) : logBuildOfStep(db, drvPath, first.logBuildId).catch(() => undefined);
            s = { logBuildId, writer: undefined, chain: Promise.resolve(), logBytes: 0 };
            steps.set(drvPath, s);
          }
          return s;
        };
        const writerOf = (s: StepInBatch) =>
          (s.writer ??= s.logBuildId.then((id) => (id ? BuildLogWriter.open(deps.config.dataDir, id) : undefined)));
        const then = (s: StepInBatch, work: () => Promise<unknown>) => {
          s.chain = s.chain.then(work).then(
            () => undefined,
            (err) => {
              errors.push(err);
            },
          );
        };

        /** Records how a derivation ended and tells its workflow; once per derivation. */
        const finish = async (drvPath: string, status: StepRealisationStatus, errorMessage: string | null) => {
          if (reported.has(drvPath)) return;
          reported.add(drvPath);
          const s = stepOf(drvPath);
          const logBuildId = await s.logBuildId;
          const outputs = status === 'succeeded' ? (await derivationOf(drvPath)).outputs : {};
          const writer = await (status === 'builder_failure' ? writerOf(s) : s.writer);
          if (writer) {
            if (status === 'interrupted') await writer.append(`ringmaster: ${drvPath} was interrupted (its batch stopped for another derivation); it is queued again\n`);
            if (status === 'builder_failure') await writer.append(`ringmaster: builder failure: ${errorMessage ?? 'unknown'}; the step will be retried elsewhere\n`);
            await writer.close();
          }
          const final = status === 'succeeded' || status === 'failed' || status === 'timeout' || status === 'log_limit_exceeded';
          /** With a success, the builds of the derivation whose workflow has not started (in the same statement as its steps' end). */
          let unstarted: string[] = [];
          if (final) {
            unstarted = await whileDatabaseUnavailable(() =>
              endStepsOfDerivation(db, drvPath, { status, builderId: recordedBuilderId, completedAt: endOf(s), errorMessage }, { unstarted: status === 'succeeded' }),
            );
          } else if (status === 'interrupted' || status === 'builder_failure') {
            await whileDatabaseUnavailable(() => markStepsOfDerivation(db, drvPath, { status: 'running', phase: 'queued', builderId: null }));
          }
          // A derivation built along (an input or an extra) may have no workflow listening yet, or one that
          // queues later: its failure is cached here, so its own build takes it instead of building it again.
          if (!members.has(drvPath) && (status === 'failed' || status === 'timeout' || status === 'log_limit_exceeded')) {
            await whileDatabaseUnavailable(() => recordCachedFailure(db, { drvPath, status, errorMessage }));
          }
          // The builds of a derivation built here whose workflow has not started (held back for this batch, or
          // still to start) get their result now, before the batch lets them start: their workflows then start
          // with it recorded and end at once. Builds whose workflow runs hear it from their derivation or find it.
          if (unstarted.length > 0) {
            const top: DerivationResult = { drvPath, status: 'succeeded', outputs, errorMessage: null, builderId: null, logPath: null };
            for (const buildId of unstarted) {
              await whileDatabaseUnavailable(() => finishBuild({ buildId, status: 'succeeded', errorMessage: null, top }, { onlyUnfinished: true, byTheBatch: true }));
            }
          }
          const result: StepRealisation = { drvPath, status, outputs, errorMessage, builderId: input.builderId, logPath: logBuildId ? liveLogPath(deps.config.dataDir, logBuildId) : null, ...(members.has(drvPath) ? {} : { alongInput: true }) };
          // An extra's final word goes only to a workflow that waits for it (its row says so; read as the row
          // goes, in one statement). Most extras have no workflow at all (their builds are held for this
          // batch), and a signal to a workflow that does not exist costs the worker and Temporal about 5 ms
          // of CPU. Members, inputs built along and words that are not final are sent as before.
          if (extras.has(drvPath) && final) {
            if (await releaseExtras(drvPath)) await deps.workflows.tellStepRealised(drvPath, result);
            return;
          }
          await deps.workflows.tellStepRealised(drvPath, result);
          if (extras.has(drvPath)) await releaseExtras(drvPath);
        };

        /**
         * Slots the process can no longer use go back to the dispatcher at once (another batch may take
         * them): Nix builds at most as many derivations at a time as it has left of those it said at its
         * start it would build.
         */
        let willBuild: number | undefined;
        let ended = 0;
        let slotsHeld = input.slots;
        const releaseSpareSlots = () => {
          if (willBuild === undefined || stop) return;
          const spare = slotsHeld - Math.max(0, willBuild - ended);
          if (spare <= 0) return;
          slotsHeld -= spare;
          deps.workflows.signalDispatcher(releaseSlotSignal, [{ requestId: input.batchId, builderId: input.builderId, builderFailed: false, slots: spare }]).catch((err) => {
            log.warn('could not give spare batch slots back', { batchId: input.batchId, error: String(err) });
          });
        };

        /**
         * A build ended: the started builds whose outputs are now valid succeeded (one validity check
         * for all of them). A failed build is settled by its error message instead.
         */
        let checks: Promise<void> = Promise.resolve();
        let checkPending = false;
        /** An error of the builder itself stops the batch as a builder failure; any other fails the activity (it is retried). */
        const failed = (err: unknown) => {
          if (!(err instanceof BuilderConnectionError)) {
            errors.push(err);
            return;
          }
          if (stop) return;
          stop = { status: 'builder_failure', message: err.message };
          run?.stop();
        };
        /** Of the derivations given, those whose outputs the builder now has, fetched here. */
        const builtOnBuilder = async (open: string[]): Promise<Set<string>> => {
          const outputs = await Promise.all(open.map((d) => (stepOf(d).outputs ??= derivationOf(d).then((drv) => Object.values(drv.outputs)))));
          const invalid = await builder!.invalidPaths(outputs.flat());
          const built = new Set(open.filter((_d, i) => outputs[i].every((o) => !invalid.has(o))));
          const fetched = open.flatMap((d, i) => (built.has(d) ? outputs[i] : []));
          if (fetched.length > 0) await builder!.fetch(fetched);
          return built;
        };
        const checkStartedBuilds = () => {
          if (checkPending) return;
          checkPending = true;
          checks = checks.then(async () => {
            checkPending = false;
            if (stop?.status === 'builder_failure') return;
            const open = [...steps.entries()].filter(([d, s]) => s.started && !s.failure && !reported.has(d)).map(([d]) => d);
            // A build over the log limit may be found built before its last lines are read (over SSH the
            // log lags behind the builder): it is left to the end, where it gets log_limit_exceeded.
            for (const d of await builtOnBuilder(open)) then(stepOf(d), async () => (logLimitStopOf(d) ? undefined : finish(d, 'succeeded', null)));
          }).catch(failed);
        };

        const onEvent = (event: NixBuildEvent) => {
          switch (event.kind) {
            case 'build_started': {
              const s = stepOf(event.drvPath);
              const startedAt = (s.started = new Date());
              s.endingsBefore = endings.length;
              then(s, async () => {
                const logBuildId = await s.logBuildId;
                const startedBuilds = await whileDatabaseUnavailable(async () => {
                  if (!logBuildId) {
                    await markStepsOfDerivation(db, event.drvPath, { status: 'running', phase: 'building', builderId: recordedBuilderId, startedAt });
                    return [];
                  }
                  // The step rows and the builds in one statement.
                  return assignBuilderToBuildsOfDerivation(db, event.drvPath, { builderId: recordedBuilderId, logPath: liveLogPath(deps.config.dataDir, logBuildId), steps: { phase: 'building', startedAt } });
                });
                for (const id of startedBuilds) await notifyBuildEvent(deps, id, 'build_started');
                const what = members.has(event.drvPath)
                  ? `in a batch of ${input.members.length}`
                  : extras.has(event.drvPath)
                    ? 'in a batch, ahead of its own turn (a derivation of the same evaluation waiting to be queued)'
                    : 'in a batch, as an input of its members';
                await (await writerOf(s))?.append(`ringmaster: building ${event.drvPath} ${builder!.where}, ${what}\n`);
              });
              return;
            }
            case 'log_line': {
              const s = stepOf(event.drvPath);
              if (stop) return;
              s.logBytes += Buffer.byteLength(event.line) + 1;
              if (logLimitBytes > 0 && s.logBytes > logLimitBytes) {
                stop = { status: 'log_limit_exceeded', drvPath: event.drvPath, limit: logLimitBytes };
                run?.stop();
                return;
              }
              then(s, async () => {
                // A line read after the build was found done (its end counted from its outputs' validity,
                // answered before its last lines arrived) goes to its log as well, not to the closed writer.
                if (!reported.has(event.drvPath)) return (await writerOf(s))?.append(`${event.line}\n`);
                const logBuildId = await s.logBuildId;
                if (logBuildId) await BuildLogWriter.appendLate(deps.config.dataDir, logBuildId, `${event.line}\n`);
              });
              return;
            }
            case 'build_failed': {
              const s = stepOf(event.drvPath);
              s.failure = { failure: event.failure, message: event.message };
              if (!stop) then(s, () => finish(event.drvPath, event.failure, event.message));
              return;
            }
            case 'will_build':
              willBuild = event.count;
              releaseSpareSlots();
              return;
            case 'build_ended':
              endings.push(new Date());
              ended = event.ended;
              releaseSpareSlots();
              if (!stop) checkStartedBuilds();
              return;
            case 'other':
              otherLines.push(event.line);
              if (otherLines.length > 20) otherLines.shift();
              return;
          }
        };

        /** What the batch's Nix realises: its members, then its extras (chosen just before it starts). */
        const targets = [...members.keys()];
        let run: BatchRun | undefined;
        let exit: Awaited<BatchRun['finished']> = { exitCode: null, spawnError: null };
        const onAbort = () => {
          stop ??= { status: 'cancelled' };
          run?.stop();
        };
        ctx.cancellationSignal.addEventListener('abort', onAbort, { once: true });
        try {
          if ('failure' in chosen) stop = { status: 'builder_failure', message: chosen.failure };
          else {
            // A member whose failure was cached after it queued (built along, or as an extra, in another batch
            // meanwhile: its own word may still be on its way) is not built again: it ends with that failure.
            for (const f of await whileDatabaseUnavailable(() => cachedFailuresAmong(db, [...members.keys()]))) {
              targets.splice(targets.indexOf(f.drv_path), 1);
              then(stepOf(f.drv_path), () => finish(f.drv_path, f.status as StepRealisationStatus, f.error_message));
            }
            // Whatever keeps the members' inputs from reaching the builder is a failure of that builder, as on the per-step path.
            // Extras only speed things up: without them the batch realises its members as before.
            const chosenExtras = await chooseExtras(input, members, first, derivationOf).catch((err) => {
              log.warn('could not choose the batch extras', { batchId: input.batchId, error: String(err) });
              return [];
            });
            for (const d of chosenExtras) extras.add(d);
            targets.push(...chosenExtras);
            // Before Nix starts: the cancel of an extra's build reaches this batch through the dispatcher, and a
            // derivation workflow that plans an extra waits for this batch's word instead of queueing it.
            if (chosenExtras.length > 0) {
              await deps.workflows.signalDispatcher(batchExtrasSignal, [{ batchId: input.batchId, requestIds: chosenExtras.map((d) => deps.workflows.derivationWorkflowId(d)) }]);
              await whileDatabaseUnavailable(async () => {
                await recordBatchExtras(db, input.batchId, chosenExtras);
                // After the rows are committed, before Nix marks any step `building`.
                await markQueuedBatchExtrasWaitedOn(db, input.batchId);
                logBuildOfExtra = await recordStepsOfExtras(db, chosenExtras);
              });
              // Alive while it runs: the rows of a batch whose worker died hold nothing a minute later.
              aliveTicker = setInterval(() => {
                touchBatchExtras(db, input.batchId).catch((err) => log.warn('could not touch the batch extras', { batchId: input.batchId, error: String(err) }));
              }, BATCH_TOUCH_MS);
            }
            await builder!.prepare(targets).catch((err: Error) => {
              stop ??= { status: 'builder_failure', message: err instanceof BuilderConnectionError ? err.message : `while sending inputs: ${err.message}` };
            });
          }
          if (!stop && targets.length > 0) {
            run = builder!.realise(targets, { slots: input.slots, timeoutSeconds: first.timeoutSeconds, maxSilentSeconds: first.maxSilentSeconds, onEvent });
            exit = await run.finished;
          }
        } finally {
          ctx.cancellationSignal.removeEventListener('abort', onAbort);
        }
        await checks;
        await Promise.all([...steps.values()].map((s) => s.chain));

        // Derivations Nix did not report ending: built before (or by another batch), failed, or cut short.
        const open = [...steps.keys(), ...members.keys()].filter((d, i, all) => !reported.has(d) && all.indexOf(d) === i);
        // Extras Nix never started (the batch stopped first, or they were valid already).
        const unstarted = [...extras].filter((d) => !steps.has(d) && !reported.has(d));
        if (exit.spawnError && !stop) stop = { status: 'builder_failure', message: exit.spawnError };
        const built = stop?.status === 'builder_failure' ? new Set<string>() : await builtOnBuilder([...open, ...unstarted]).catch((err) => (failed(err), new Set<string>()));
        const lost = stop?.status === 'builder_failure' ? stop.message : undefined;
        if (builder?.recordedBuilderId !== null) {
          // A remote builder's outcome, before its members queue again: a failure backs it off (its batch's slots are free).
          if (lost !== undefined) logBuilderFailure(deps.logger, { id: input.builderId, name: 'name' in chosen ? chosen.name : input.builderId }, first.drvPath, lost);
          await deps.workflows.signalDispatcher(releaseSlotSignal, [{ requestId: input.batchId, builderId: input.builderId, builderFailed: lost !== undefined, ...(lost !== undefined ? { failureMessage: lost } : {}) }]).catch((err) => {
            log.warn('could not tell the dispatcher how the batch ended', { batchId: input.batchId, error: String(err) });
          });
        }
        const why = lastErrorLines(otherLines.join('\n')) ?? `nix-store exited with code ${exit.exitCode}`;
        for (const drvPath of open) {
          const s = stepOf(drvPath);
          let settled: [StepRealisationStatus, string | null];
          // Over the log limit is that member's status even when its build ended before the kill reached it
          // (over SSH the kill is a round trip away).
          const overLimit = logLimitStopOf(drvPath);
          if (overLimit) settled = ['log_limit_exceeded', `build log exceeded the limit of ${overLimit.limit} bytes`];
          else if (built.has(drvPath)) settled = ['succeeded', null];
          else if (lost !== undefined) settled = ['builder_failure', lost];
          else if (s.failure) settled = [s.failure.failure, s.failure.message];
          else if (stop) settled = ['interrupted', 'its batch was stopped'];
          else settled = ['failed', why];
          then(s, () => finish(drvPath, ...settled));
        }
        // An unstarted extra built meanwhile succeeded like the rest; the others' workflows, if they wait for
        // this batch, hear `interrupted` (no step row: nothing was attempted) and queue as usual.
        for (const drvPath of unstarted) {
          if (built.has(drvPath)) then(stepOf(drvPath), () => finish(drvPath, 'succeeded', null));
          else {
            const result: StepRealisation = { drvPath, status: 'interrupted', outputs: {}, errorMessage: 'its batch ended before building it', builderId: input.builderId, logPath: null, alongInput: true };
            await deps.workflows.tellStepRealised(drvPath, result).catch((err) => errors.push(err));
          }
        }
        await Promise.all([...steps.values()].map((s) => s.chain));
        if (extras.size > 0) await releaseExtras();
        if (errors.length > 0) throw errors[0];
        if (stop?.status === 'cancelled') log.info('batch stopped for a cancelled member', { batchId: input.batchId });
        return { realised: reported.size };
      }
    },
  };
}

export type BatchActivities = ReturnType<typeof createBatchActivities>;
