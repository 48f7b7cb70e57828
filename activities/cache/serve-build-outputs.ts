import { Context, log } from '@temporalio/activity';
import type { RingmasterWorkflows } from '../../lib/workflow-client';
import type { Db } from '../../lib/db';
import { syncGcRoots } from '../../lib/gc-roots';

/** Attempts of finishBuild that retry a failure here; after them the build finishes without it. */
const ATTEMPTS = 3;

/**
 * After a build succeeded: brings the GC roots up to date at once (its outputs may need a root before the
 * next garbage collection), and starts `PublishBuildOutputsWorkflow` (`publish-<build id>`), which
 * compresses the outputs' closures into the binary cache. A failure is retried with the activity a few
 * times; after that it is logged and the build still finishes: the cache must not fail a good build.
 */
export async function serveBuildOutputs(
  deps: { db: Db; gcRootsDir: string; workflows: RingmasterWorkflows },
  buildId: string,
  outputs: string[],
): Promise<void> {
  try {
    await syncGcRoots(deps.db, deps.gcRootsDir);
    await deps.workflows.publishBuildOutputs(buildId, outputs);
  } catch (err) {
    const attempt = currentAttempt();
    if (attempt < ATTEMPTS) throw err;
    log.error('could not update the GC roots or start publishing the build outputs to the binary cache', { buildId, attempt, error: (err as Error).message });
  }
}

function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1; // called outside an activity: let the caller see the error
  }
}
