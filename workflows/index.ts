// Every workflow the worker registers. The worker bundles this file for the workflow sandbox.
export { SystemProbeWorkflow } from './system-probe';
export { CheckJobsetWorkflow, EvaluationWorkflow } from './evaluation';
export { BuildWorkflow } from './build';
export { DerivationWorkflow } from './derivation';
export { DispatcherWorkflow } from './dispatcher';
export { BuilderCheckWorkflow } from './builder-check';
export { NotificationWorkflow } from './notification';
export { PublishBuildOutputsWorkflow } from './publish-build-outputs';
export { ServeBuildOutputsWorkflow } from './serve-build-outputs';
