import os from 'node:os';
import { log } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import type { DispatchBuilder } from '../workflows/dispatch-policy';
import { backoffMs } from '../workflows/dispatch-policy';
import { LOCAL_BUILDER } from '../workflows/shared';
import { localSystem } from './nix-system';
import { findRemoteBuilder, listRemoteBuilders, recordBuilderFailure, recordBuilderSuccess } from './records/builders';
import { logBuilderBackoff } from './operator-lines';

let announcedLocalFallback = false;

export function createDispatchActivities(deps: ActivityDeps) {
  return {
    /**
     * The builders the dispatcher may use: the enabled remote builders, or, when none is configured at
     * all, the worker's own Nix (Hydra's localhost fallback).
     */
    async loadDispatchBuilders(): Promise<DispatchBuilder[]> {
      const rows = await listRemoteBuilders(deps.db);
      if (rows.length === 0) {
        if (!announcedLocalFallback) {
          announcedLocalFallback = true;
          log.info('no remote builders configured: building on the worker\'s own Nix (local fallback)');
        }
        return [
          {
            id: LOCAL_BUILDER,
            systems: [await localSystem()],
            supportedFeatures: ['nixos-test', 'benchmark', 'big-parallel', 'kvm'],
            mandatoryFeatures: [],
            maxJobs: deps.config.localMaxJobs ?? Math.max(1, os.cpus().length),
            speedFactor: 1,
            enabled: true,
            disabledUntil: null,
            consecutiveFailures: 0,
          },
        ];
      }
      return rows.map((r) => ({
        id: r.id,
        systems: r.systems,
        supportedFeatures: r.supported_features,
        mandatoryFeatures: r.mandatory_features,
        maxJobs: r.max_jobs,
        speedFactor: Number(r.speed_factor),
        enabled: r.enabled,
        disabledUntil: r.disabled_until ? new Date(r.disabled_until).getTime() : null,
        consecutiveFailures: r.consecutive_failures,
      }));
    },

    /** Records a builder's success or failure; failures back it off (disabled_until) for a growing while. */
    async recordBuilderOutcome(input: { builderId: string; failed: boolean; message: string | null }): Promise<{ consecutiveFailures: number; disabledUntil: number | null }> {
      if (input.builderId === LOCAL_BUILDER) return { consecutiveFailures: 0, disabledUntil: null };
      const row = await findRemoteBuilder(deps.db, input.builderId);
      if (!row) return { consecutiveFailures: 0, disabledUntil: null };
      if (!input.failed) {
        await recordBuilderSuccess(deps.db, input.builderId);
        return { consecutiveFailures: 0, disabledUntil: null };
      }
      const failures = row.consecutive_failures + 1;
      const until = Date.now() + backoffMs(failures);
      await recordBuilderFailure(deps.db, input.builderId, { consecutiveFailures: failures, disabledUntil: new Date(until), message: input.message ?? 'builder failure' });
      logBuilderBackoff(deps.logger, { id: input.builderId, name: row.name as string }, failures, new Date(until), input.message);
      return { consecutiveFailures: failures, disabledUntil: until };
    },
  };
}

export type DispatchActivities = ReturnType<typeof createDispatchActivities>;
