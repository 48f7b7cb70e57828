// Every workflow the worker registers. The worker bundles this file for the workflow sandbox.
export { SystemProbeWorkflow } from './system-probe';
