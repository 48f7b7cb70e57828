import type { TelemetryOptions } from '@temporalio/worker';
import type { RingmasterConfig } from '../lib/config';

/**
 * The Temporal SDK runtime's telemetry: its worker metrics (task slots, poll and schedule latencies, sticky cache,
 * activity and workflow task counts, all prefixed `temporal_`) served by the SDK's own Prometheus exporter on
 * RINGMASTER_WORKER_METRICS_ADDRESS at `/metrics`; the API's /prometheus appends them. Nothing when unset.
 * Pass to the one `Runtime.install` of the process.
 */
export function telemetryOptions(config: Pick<RingmasterConfig, 'workerMetricsAddress'>): TelemetryOptions | undefined {
  if (!config.workerMetricsAddress) return undefined;
  return { metrics: { prometheus: { bindAddress: config.workerMetricsAddress } } };
}
