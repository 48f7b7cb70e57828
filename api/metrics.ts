import client from 'prom-client';

/** The process's own Prometheus registry: default process metrics plus the HTTP request histogram. */
export class ApiMetrics {
  readonly registry = new client.Registry();
  readonly httpDuration = new client.Histogram({
    name: 'ringmaster_http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'ringmaster_' });
  }
}
