import { Context, log } from '@temporalio/activity';
import type { Db } from '../../lib/db';
import { syncGcRoots } from '../../lib/gc-roots';
import { publishBuildOutputs } from './publish-build-outputs';

/** Attempts of finishBuild that retry a failed publication; after them the build finishes without it. */
const PUBLISH_ATTEMPTS = 3;

/**
 * After a build succeeded: publishes its outputs with their closures to the binary cache and brings
 * the GC roots up to date. A failure is retried with the activity a few times; after that it is
 * logged and the build still finishes (a missing cache entry must not fail a good build).
 */
export async function serveBuildOutputs(deps: { db: Db; dataDir: string; gcRootsDir: string }, buildId: string, outputs: string[]): Promise<void> {
  try {
    await publishBuildOutputs(deps, { buildId, outputs });
    await syncGcRoots(deps.db, deps.gcRootsDir);
  } catch (err) {
    const attempt = currentAttempt();
    if (attempt < PUBLISH_ATTEMPTS) throw err;
    log.error('could not publish the build outputs to the binary cache or update the GC roots', { buildId, attempt, error: (err as Error).message });
  }
}

function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1; // called outside an activity: let the caller see the error
  }
}
