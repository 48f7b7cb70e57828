import type { Db } from '../lib/db';
import type { RingmasterConfig } from '../lib/config';
import { createSystemActivities } from './system';

export interface ActivityDeps {
  db: Db;
  config: RingmasterConfig;
}

/** Every activity the worker registers, made from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  void deps;
  return {
    ...createSystemActivities(),
  };
}

export type Activities = ReturnType<typeof createActivities>;
