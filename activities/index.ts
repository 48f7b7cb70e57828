import type { ActivityDeps } from './deps';
import { createSystemActivities } from './system';
import { createDispatchActivities } from './dispatch';
import { createDerivationActivities } from './derivation';
import { createBatchActivities } from './realise-batch';
import { createBuildActivities } from './build';
import { createEvaluationActivities } from './evaluation';
import { createBuilderCheckActivities } from './builder-check';
import { createNotificationActivities } from './notifications';
import { createCacheActivities } from './cache';
import { outlivingDatabaseRestarts } from './database-retry';

export type { ActivityDeps } from './deps';

/** Every activity the worker registers, made from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  // The long ones (a build, an evaluation) are not run again whole on a database error: they wait
  // for the database around their own writes instead.
  const { realiseStep, ...derivation } = createDerivationActivities(deps);
  const { evaluateAndRecord, startBuildWorkflowsOfEvaluation, ...evaluation } = createEvaluationActivities(deps);
  return {
    ...createSystemActivities(),
    ...outlivingDatabaseRestarts(createDispatchActivities(deps)),
    ...outlivingDatabaseRestarts(derivation),
    realiseStep,
    ...createBatchActivities(deps),
    ...outlivingDatabaseRestarts(createBuildActivities(deps)),
    ...outlivingDatabaseRestarts(evaluation),
    evaluateAndRecord,
    startBuildWorkflowsOfEvaluation,
    ...createBuilderCheckActivities(deps),
    ...createNotificationActivities(deps),
    ...createCacheActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
