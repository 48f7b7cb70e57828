import type { ActivityDeps } from './deps';
import { createSystemActivities } from './system';
import { createDispatchActivities } from './dispatch';
import { createDerivationActivities } from './derivation';
import { createBuildActivities } from './build';
import { createEvaluationActivities } from './evaluation';
import { createBuilderCheckActivities } from './builder-check';
import { createNotificationActivities } from './notifications';
import { createCacheActivities } from './cache';

export type { ActivityDeps } from './deps';

/** Every activity the worker registers, made from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSystemActivities(),
    ...createDispatchActivities(deps),
    ...createDerivationActivities(deps),
    ...createBuildActivities(deps),
    ...createEvaluationActivities(deps),
    ...createBuilderCheckActivities(deps),
    ...createNotificationActivities(deps),
    ...createCacheActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
