import client from 'prom-client';
import type { Db } from '../lib/db';
import { deliveryLagBuckets, notificationCounts, type NotificationMetricsRow } from '../lib/notifications/task-records';

/** Lag buckets (seconds from the event to its delivery). */
export const NOTIFICATION_LAG_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400];

/**
 * Notification metrics for /prometheus. Deliveries happen in the workers, which may be other
 * processes than the API, so the figures are read from notification_tasks on each scrape (one
 * grouped query each) rather than counted in memory: every API process reports the same truth.
 */
export function registerNotificationMetrics(registry: client.Registry, db: Db): void {
  const lagName = 'ringmaster_notification_delivery_lag_seconds';
  const lagHelp = 'Time from an event (evaluation or build started or finished) to the delivery of its notification, by type';
  // A histogram built from the database's bucket counts: prom-client's Histogram can only observe one value at a time.
  const lag = {
    name: lagName,
    help: lagHelp,
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    async get() {
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      for (const row of await deliveryLagBuckets(db, NOTIFICATION_LAG_BUCKETS).catch(() => [])) {
        const labels = { type: row.notification_type };
        NOTIFICATION_LAG_BUCKETS.forEach((le, i) => values.push({ metricName: `${lagName}_bucket`, labels: { ...labels, le }, value: row.buckets[i] }));
        values.push({ metricName: `${lagName}_bucket`, labels: { ...labels, le: '+Inf' }, value: row.count });
        values.push({ metricName: `${lagName}_sum`, labels, value: row.sum });
        values.push({ metricName: `${lagName}_count`, labels, value: row.count });
      }
      return { name: lagName, help: lagHelp, type: 'histogram' as const, aggregator: 'sum' as const, values };
    },
  };
  registry.registerMetric(lag as unknown as client.Metric);

  // One query per scrape for both metrics below (a scrape collects them concurrently).
  let counted: { at: number; rows: Promise<NotificationMetricsRow[]> } | undefined;
  const counts = () => {
    if (!counted || Date.now() - counted.at > 1000) counted = { at: Date.now(), rows: notificationCounts(db).catch(() => []) };
    return counted.rows;
  };
  const failures = new client.Counter({
    name: 'ringmaster_notification_failures_total',
    help: 'Notification tasks that exhausted their attempts (max_attempts), by type; a task retried by the API and failing again counts again',
    labelNames: ['type'] as const,
    registers: [registry],
    async collect() {
      failures.reset();
      const givenUp = new Map<string, number>();
      for (const r of await counts()) givenUp.set(r.notification_type, (givenUp.get(r.notification_type) ?? 0) + r.give_ups);
      for (const [type, n] of givenUp) failures.inc({ type }, n);
    },
  });
  const tasks = new client.Gauge({
    name: 'ringmaster_notification_tasks',
    help: 'Notification tasks by type and status (pending and running ones are the backlog)',
    labelNames: ['type', 'status'] as const,
    registers: [registry],
    async collect() {
      tasks.reset();
      for (const r of await counts()) tasks.set({ type: r.notification_type, status: r.status }, r.tasks);
    },
  });
}
