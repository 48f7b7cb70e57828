import { log } from '@temporalio/activity';
import type { Db } from '../../lib/db';
import { addGcRoots } from '../../lib/gc-roots';
import { closureSizes } from '../realise/closure';
import { countFailedServing, dropServedBuildOutputs, queuedBuildOutputs, recordClosureSizes, type BuildOutputsToServe } from '../records/outputs-to-serve';
import { publishOutputsOfBuilds } from './publish-build-outputs';

/** Builds taken from the queue per round. */
const ROUND = 200;
/**
 * A round starts at least this long after the previous one began (issue 6): while a batch finishes builds
 * one after another, a round per build or two (each with its GC-root update) took CPU from the builds
 * themselves; now the builds that finish meanwhile wait and go together.
 */
export const ROUND_INTERVAL_MS = 1_000;
/** Rounds whose publication of a build failed before it is given up (logged; the build stays succeeded). */
export const MAX_SERVING_ATTEMPTS = 5;

export interface ServeDeps {
  db: Db;
  dataDir: string;
  gcRootsDir: string;
}

/**
 * Serves the outputs of the queued succeeded builds (`build_outputs_to_serve`, filled by finishBuild), a
 * round of up to 200 builds at a time until the queue is empty: their closure sizes, the GC roots their
 * outputs need, added once per round (before the next garbage collection; `addGcRoots`), and their
 * closures published to the binary cache, each unpublished path compressed once. Store metadata comes
 * from two questions to the local store's `nix-store --serve` per use (closure, then path infos), not
 * from processes spawned per round.
 * A build whose publication fails stays queued for a later call (`retryLater`), up to 5 rounds; then it
 * is logged and dropped: the cache must not fail a good build. `beat` is called between steps.
 */
export async function serveQueuedBuildOutputs(deps: ServeDeps, beat: () => void = () => undefined): Promise<{ served: number; retryLater: boolean }> {
  let served = 0;
  const failedNow = new Set<string>();
  let roundStarted: number | undefined;
  for (;;) {
    const wait = roundStarted === undefined ? 0 : roundStarted + ROUND_INTERVAL_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    roundStarted = Date.now();
    const round = (await queuedBuildOutputs(deps.db, ROUND + failedNow.size)).filter((b) => !failedNow.has(b.buildId));
    if (round.length === 0) return { served, retryLater: failedNow.size > 0 };
    // A size that cannot be had (an output collected meanwhile) stays unknown, as it did when finishBuild measured it.
    const sizes = await closureSizes(round.map((b) => b.outputs)).catch(() => undefined);
    if (sizes) await recordClosureSizes(deps.db, round.map((b, i) => ({ buildId: b.buildId, closureSize: sizes[i] })));
    beat();
    await addGcRoots(deps.db, deps.gcRootsDir, round.flatMap((b) => b.outputs)).catch((err) => {
      // A keep, a promotion or `ringmaster gc` brings them up to date.
      log.error('could not update the GC roots', { error: (err as Error).message });
    });
    beat();
    const failed = await publishRound(deps, round, beat);
    const given = failed.filter((b) => b.attempts + 1 >= MAX_SERVING_ATTEMPTS);
    for (const b of given) log.error('could not publish the build outputs to the binary cache; giving up', { buildId: b.buildId, attempts: b.attempts + 1 });
    await countFailedServing(deps.db, failed.filter((b) => !given.includes(b)).map((b) => b.buildId));
    for (const b of failed) if (!given.includes(b)) failedNow.add(b.buildId);
    await dropServedBuildOutputs(deps.db, round.filter((b) => !failed.includes(b) || given.includes(b)).map((b) => b.buildId));
    served += round.length - failed.length;
  }
}

/** Publishes a round's outputs together; when that fails, each build alone, to find the ones that fail. Answers those. */
async function publishRound(deps: ServeDeps, round: BuildOutputsToServe[], beat: () => void): Promise<BuildOutputsToServe[]> {
  try {
    await publishOutputsOfBuilds(deps, round);
    return [];
  } catch (err) {
    log.warn('publishing a round of build outputs failed; publishing them one build at a time', { builds: round.length, error: (err as Error).message });
  }
  const failed: BuildOutputsToServe[] = [];
  for (const b of round) {
    beat();
    try {
      await publishOutputsOfBuilds(deps, [b]);
    } catch (err) {
      log.warn('could not publish the build outputs to the binary cache', { buildId: b.buildId, attempt: b.attempts + 1, error: (err as Error).message });
      failed.push(b);
    }
  }
  return failed;
}
