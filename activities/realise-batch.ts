import { Context, log } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { releaseSlotSignal, type RealiseBatchInput, type StepRealisation, type StepRealisationStatus } from '../workflows/shared';
import { readDerivation } from './nix/drv';
import { locallyInvalidPaths } from './realise/closure';
import { realiseBatchLocally } from './realise/local-batch';
import type { NixBuildEvent, NixBuildFailure } from './realise/nix-json-log';
import { lastErrorLines } from './realise/nix-process';
import { BuildLogWriter, liveLogPath } from '../lib/build-log';
import { logBuildOfStep, markStepsOfDerivation } from './records/steps';
import { assignBuilderToBuildsOfDerivation } from './records/builds';
import { liveConfigFile } from '../lib/live-config-file';
import { whileDatabaseUnavailable } from './database-retry';

/** One derivation as the batch sees it: where its log goes, what Nix said of it. */
interface StepInBatch {
  /** The build whose log receives its log (a member's own, or looked up for an input Nix built along). */
  logBuildId: Promise<string | undefined>;
  writer: Promise<BuildLogWriter | undefined> | undefined;
  /** Its records and log, written in the order Nix reported them. */
  chain: Promise<void>;
  logBytes: number;
  failure?: { failure: NixBuildFailure; message: string };
  /** Its build started in this batch: when a build ends, whether its outputs are valid says if it was this one. */
  started?: boolean;
  outputs?: Promise<string[]>;
}

/** Why the batch's process was stopped before it ended by itself. */
type Stop = { status: 'cancelled' } | { status: 'log_limit_exceeded'; drvPath: string; limit: number };

export function createBatchActivities(deps: ActivityDeps) {
  const { db } = deps;

  return {
    /**
     * Realises a batch of queued derivations with one `nix-store --realise` on the worker's own Nix
     * (issue 6), writing each one's step rows and log as Nix reports it, and telling each one's
     * DerivationWorkflow its result (`stepRealised`) as soon as it ends, members and inputs that Nix
     * built along alike. A cancel (a member was cancelled) or a member over the log limit stops the
     * process; the members it interrupted are told so, and queue again. A retry (the worker died) runs
     * the batch again: what was built is valid and reported at once.
     */
    async realiseBatch(input: RealiseBatchInput): Promise<{ realised: number }> {
      const ctx = Context.current();
      const ticker = setInterval(() => ctx.heartbeat(), 1_000);
      try {
        return await realiseMembers();
      } finally {
        clearInterval(ticker);
      }

      async function realiseMembers(): Promise<{ realised: number }> {
        const members = new Map(input.members.map((m) => [m.drvPath, m]));
        const logLimitBytes = (await liveConfigFile(deps.config.configFile).current()).builds?.log_limit_bytes ?? deps.config.logLimitBytes;
        const first = input.members[0];
        const steps = new Map<string, StepInBatch>();
        const reported = new Set<string>();
        const errors: unknown[] = [];
        const otherLines: string[] = [];
        let stop: Stop | undefined;

        const stepOf = (drvPath: string): StepInBatch => {
          let s = steps.get(drvPath);
          if (!s) {
            const member = members.get(drvPath);
            s = { logBuildId: member ? Promise.resolve(member.logBuildId) : logBuildOfStep(db, drvPath, first.logBuildId).catch(() => undefined), writer: undefined, chain: Promise.resolve(), logBytes: 0 };
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
          const outputs = status === 'succeeded' ? (await readDerivation(drvPath)).outputs : {};
          const writer = await s.writer;
          if (writer) {
            if (status === 'interrupted') await writer.append(`ringmaster: ${drvPath} was interrupted (its batch stopped for another derivation); it is queued again\n`);
            await writer.close();
          }
          const final = status === 'succeeded' || status === 'failed' || status === 'timeout' || status === 'log_limit_exceeded';
          if (final || status === 'interrupted' || status === 'builder_failure') {
            await whileDatabaseUnavailable(() =>
              markStepsOfDerivation(db, drvPath, final
                ? { status, phase: null, builderId: null, completedAt: new Date(), errorMessage }
                : { status: 'running', phase: 'queued', builderId: null }),
            );
          }
          const result: StepRealisation = { drvPath, status, outputs, errorMessage, builderId: input.builderId, logPath: logBuildId ? liveLogPath(deps.config.dataDir, logBuildId) : null, ...(members.has(drvPath) ? {} : { alongInput: true }) };
          await deps.workflows.tellStepRealised(drvPath, result);
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
        const checkStartedBuilds = () => {
          if (checkPending) return;
          checkPending = true;
          checks = checks.then(async () => {
            checkPending = false;
            const open = [...steps.entries()].filter(([d, s]) => s.started && !s.failure && !reported.has(d));
            const outputs = await Promise.all(open.map(([d, s]) => (s.outputs ??= readDerivation(d).then((drv) => Object.values(drv.outputs)))));
            const invalid = await locallyInvalidPaths(outputs.flat());
            open.forEach(([d, s], i) => {
              if (outputs[i].every((o) => !invalid.has(o))) then(s, () => finish(d, 'succeeded', null));
            });
          }).catch((err) => {
            errors.push(err);
          });
        };

        const onEvent = (event: NixBuildEvent) => {
          switch (event.kind) {
            case 'build_started': {
              const s = stepOf(event.drvPath);
              s.started = true;
              then(s, async () => {
                const logBuildId = await s.logBuildId;
                await whileDatabaseUnavailable(async () => {
                  await markStepsOfDerivation(db, event.drvPath, { status: 'running', phase: 'building', builderId: null, startedAt: new Date() });
                  if (logBuildId) await assignBuilderToBuildsOfDerivation(db, event.drvPath, { builderId: null, logPath: liveLogPath(deps.config.dataDir, logBuildId) });
                });
                const what = members.has(event.drvPath) ? `in a batch of ${input.members.length}` : 'in a batch, as an input of its members';
                await (await writerOf(s))?.append(`ringmaster: building ${event.drvPath} on the worker's own Nix (no remote builders configured), ${what}\n`);
              });
              return;
            }
            case 'log_line': {
              const s = stepOf(event.drvPath);
              if (stop) return;
              s.logBytes += Buffer.byteLength(event.line) + 1;
              if (logLimitBytes > 0 && s.logBytes > logLimitBytes) {
                stop = { status: 'log_limit_exceeded', drvPath: event.drvPath, limit: logLimitBytes };
                run.stop();
                return;
              }
              then(s, async () => (await writerOf(s))?.append(`${event.line}\n`));
              return;
            }
            case 'build_failed': {
              const s = stepOf(event.drvPath);
              s.failure = { failure: event.failure, message: event.message };
              if (!stop) then(s, () => finish(event.drvPath, event.failure, event.message));
              return;
            }
            case 'build_ended':
              if (!stop) checkStartedBuilds();
              return;
            case 'other':
              otherLines.push(event.line);
              if (otherLines.length > 20) otherLines.shift();
              return;
          }
        };

        const run = realiseBatchLocally([...members.keys()], { slots: input.slots, timeoutSeconds: first.timeoutSeconds, maxSilentSeconds: first.maxSilentSeconds, onEvent });
        const onAbort = () => {
          stop ??= { status: 'cancelled' };
          run.stop();
        };
        ctx.cancellationSignal.addEventListener('abort', onAbort, { once: true });
        let exit: Awaited<typeof run.finished>;
        try {
          exit = await run.finished;
        } finally {
          ctx.cancellationSignal.removeEventListener('abort', onAbort);
        }
        await checks;
        await Promise.all([...steps.values()].map((s) => s.chain));

        // Derivations Nix did not report ending: built before (or by another batch), failed, or cut short.
        const open = [...steps.keys(), ...members.keys()].filter((d, i, all) => !reported.has(d) && all.indexOf(d) === i);
        const outputsOf = new Map(await Promise.all(open.map(async (d) => [d, (await readDerivation(d)).outputs] as const)));
        const invalid = exit.spawnError ? new Set<string>() : await locallyInvalidPaths([...outputsOf.values()].flatMap((o) => Object.values(o)));
        const why = lastErrorLines(otherLines.join('\n')) ?? `nix-store exited with code ${exit.exitCode}`;
        for (const drvPath of open) {
          const s = stepOf(drvPath);
          const valid = Object.values(outputsOf.get(drvPath) ?? {}).every((o) => !invalid.has(o));
          let settled: [StepRealisationStatus, string | null];
          if (exit.spawnError) settled = ['builder_failure', exit.spawnError];
          else if (valid) settled = ['succeeded', null];
          else if (stop?.status === 'log_limit_exceeded' && stop.drvPath === drvPath) settled = ['log_limit_exceeded', `build log exceeded the limit of ${stop.limit} bytes`];
          else if (s.failure) settled = [s.failure.failure, s.failure.message];
          else if (stop) settled = ['interrupted', 'its batch was stopped'];
          else settled = ['failed', why];
          then(s, () => finish(drvPath, ...settled));
        }
        await Promise.all([...steps.values()].map((s) => s.chain));
        if (errors.length > 0) throw errors[0];
        if (stop?.status === 'cancelled') log.info('batch stopped for a cancelled member', { batchId: input.batchId });
        return { realised: reported.size };
      }
    },
  };
}

export type BatchActivities = ReturnType<typeof createBatchActivities>;
