import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

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

/** What names a build in the Temporal UI's filters. */
export interface BuildSearchContext {
  projectName: string;
  jobsetName: string;
  jobName: string;
  system: string;
  buildId: string;
  evaluationId: string;
}

/** The attributes a BuildWorkflow starts with, on its first run and on every restart; the workflow updates the status. */
export function buildSearchAttributes(b: BuildSearchContext, status = 'pending'): SearchAttributePair[] {
  return [
    { key: RingmasterProject, value: b.projectName },
    { key: RingmasterJobset, value: `${b.projectName}/${b.jobsetName}` },
    { key: RingmasterJob, value: b.jobName },
    { key: RingmasterSystem, value: b.system },
    { key: RingmasterBuildId, value: b.buildId },
    { key: RingmasterEvaluationId, value: b.evaluationId },
    { key: RingmasterStatus, value: status },
  ];
}

/** The attributes of an EvaluationWorkflow. */
export function evaluationSearchAttributes(e: { projectName: string; jobsetName: string; evaluationId: string }): SearchAttributePair[] {
  return [
    { key: RingmasterProject, value: e.projectName },
    { key: RingmasterJobset, value: `${e.projectName}/${e.jobsetName}` },
    { key: RingmasterEvaluationId, value: e.evaluationId },
  ];
}

/** The attributes of a shared DerivationWorkflow. */
export function derivationSearchAttributes(system: string): SearchAttributePair[] {
  return [
    { key: RingmasterSystem, value: system },
    { key: RingmasterStatus, value: 'running' },
  ];
}
