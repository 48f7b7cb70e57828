import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * The typed search attributes every Ringmaster workflow carries, so an operator can filter in the
 * Temporal UI (for example: RingmasterJobset = "proj/main" AND RingmasterStatus = "running").
 * Seven Keyword attributes: the dev server's SQLite visibility allows ten per namespace.
 */
export const RingmasterProject = defineSearchAttributeKey('RingmasterProject', SearchAttributeType.KEYWORD);
export const RingmasterJobset = defineSearchAttributeKey('RingmasterJobset', SearchAttributeType.KEYWORD);
export const RingmasterJob = defineSearchAttributeKey('RingmasterJob', SearchAttributeType.KEYWORD);
export const RingmasterSystem = defineSearchAttributeKey('RingmasterSystem', SearchAttributeType.KEYWORD);
export const RingmasterBuildId = defineSearchAttributeKey('RingmasterBuildId', SearchAttributeType.KEYWORD);
export const RingmasterEvaluationId = defineSearchAttributeKey('RingmasterEvaluationId', SearchAttributeType.KEYWORD);
export const RingmasterStatus = defineSearchAttributeKey('RingmasterStatus', SearchAttributeType.KEYWORD);

/** Name → type, as `temporal server start-dev --search-attribute` and the operator service want them. */
export const searchAttributeDefinitions: Record<string, 'Keyword'> = {
  RingmasterProject: 'Keyword',
  RingmasterJobset: 'Keyword',
  RingmasterJob: 'Keyword',
  RingmasterSystem: 'Keyword',
  RingmasterBuildId: 'Keyword',
  RingmasterEvaluationId: 'Keyword',
  RingmasterStatus: 'Keyword',
};
