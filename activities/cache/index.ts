import { Context } from '@temporalio/activity';
import type { ActivityDeps } from '../index';
import { publishBuildOutputs } from './publish-build-outputs';
import { serveQueuedBuildOutputs } from './serve-build-outputs';

/** The binary cache's activities: publication runs in its own workflow, with a long timeout and heartbeats. */
export function createCacheActivities(deps: ActivityDeps) {
  return {
    /** Dumps and compresses every unpublished path of the outputs' closures into the cache (see publishBuildOutputs). */
    async publishBuildOutputsActivity(input: { buildId: string; outputs: string[] }): Promise<{ published: number }> {
      const context = Context.current();
      const beat = setInterval(() => context.heartbeat(), 10_000);
      try {
        const { published } = await publishBuildOutputs({ db: deps.db, dataDir: deps.config.dataDir }, input);
        return { published: published.length };
      } finally {
        clearInterval(beat);
      }
    },

    /**
     * Serves the outputs of every queued succeeded build, in rounds (see serveQueuedBuildOutputs):
     * closure sizes, GC roots, binary cache. Run by ServeBuildOutputsWorkflow.
     */
    async serveQueuedBuildOutputsActivity(): Promise<{ served: number; retryLater: boolean }> {
      const context = Context.current();
      const beat = setInterval(() => context.heartbeat(), 10_000);
      try {
        return await serveQueuedBuildOutputs({ db: deps.db, dataDir: deps.config.dataDir, gcRootsDir: deps.config.gcRootsDir }, () => context.heartbeat());
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export type CacheActivities = ReturnType<typeof createCacheActivities>;
