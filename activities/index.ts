import type { Client } from '@temporalio/client';
import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import type { BuilderConnectionPool } from './build/ssh-connection';
import { createSystemActivities } from './system';
import { createDispatchActivities } from './dispatch';
import { createDerivationActivities } from './derivation';
import { createBuildActivities } from './build';
import { createEvaluationActivities } from './evaluation';
import { createCacheActivities } from './cache';

export interface ActivityDeps {
  db: Db;
  config: RingmasterConfig;
  /** A Temporal client: activities start build workflows and signal the dispatcher. */
  client: Client;
  taskQueue: string;
  /** One SSH connection per builder, shared by every step on this worker. */
  builderPool: BuilderConnectionPool;
}

/** Every activity the worker registers, made from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSystemActivities(),
    ...createDispatchActivities(deps),
    ...createDerivationActivities(deps),
    ...createBuildActivities(deps),
    ...createEvaluationActivities(deps),
    ...createCacheActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
