import client from 'prom-client';
import type { Db } from '../lib/db';
import { buildCountsBySystemAndStatus, type BuildCount } from './queries/build-counts';
import { builderSlots, recentEvaluationDurations } from './queries/metrics';

/** Evaluation durations are summarised over the evaluations that ended within this window. */
export const EVALUATION_WINDOW_SECONDS = 24 * 3600;

/**
 * Gauges of the read model, read from PostgreSQL at each scrape at a bounded cost: builds by status and the
 * queue by system from the maintained summary (build_count_deltas), builders' slots from the builders, and
 * evaluation durations from an index range of the last day's evaluations.
 */
export function registerReadModelMetrics(registry: client.Registry, db: Db): void {
  let counts: { at: number; value: Promise<BuildCount[]> } | undefined;
  // The gauges of one scrape share one read of the summary.
  const buildCounts = () => {
    if (!counts || Date.now() - counts.at > 1000) counts = { at: Date.now(), value: buildCountsBySystemAndStatus(db) };
    return counts.value;
  };
  new client.Gauge({
    name: 'ringmaster_builds',
    help: 'Builds by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const byStatus = new Map<string, number>();
      for (const c of await buildCounts()) byStatus.set(c.status, (byStatus.get(c.status) ?? 0) + c.builds);
      this.reset();
      for (const [status, n] of byStatus) this.set({ status }, n);
    },
  });
  new client.Gauge({
    name: 'ringmaster_queue_depth',
    help: 'Pending builds by system',
    labelNames: ['system'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const c of await buildCounts()) if (c.status === 'pending') this.set({ system: c.system }, c.builds);
    },
  });
  let slots: { at: number; value: ReturnType<typeof builderSlots> } | undefined;
  const readSlots = () => {
    if (!slots || Date.now() - slots.at > 1000) slots = { at: Date.now(), value: builderSlots(db) };
    return slots.value;
  };
  new client.Gauge({
    name: 'ringmaster_builder_slots',
    help: 'Slots (max_jobs) of each enabled remote builder and connected agent',
    labelNames: ['builder', 'kind'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const b of await readSlots()) this.set({ builder: b.builder, kind: b.kind }, b.slots);
    },
  });
  new client.Gauge({
    name: 'ringmaster_builder_slots_in_use',
    help: 'Busy slots of each enabled remote builder (running derivations) and connected agent (its current jobs)',
    labelNames: ['builder', 'kind'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const b of await readSlots()) this.set({ builder: b.builder, kind: b.kind }, b.in_use);
    },
  });
  new client.Gauge({
    name: 'ringmaster_evaluation_duration_seconds',
    help: `Durations of the evaluations that ended in the last ${EVALUATION_WINDOW_SECONDS / 3600} h: quantiles, count and sum`,
    labelNames: ['quantile', 'stat'] as const,
    registers: [registry],
    async collect() {
      const d = await recentEvaluationDurations(db, EVALUATION_WINDOW_SECONDS);
      this.reset();
      this.set({ stat: 'count' }, d.count);
      this.set({ stat: 'sum' }, d.sum_seconds);
      for (const [quantile, value] of [['0.5', d.p50], ['0.9', d.p90], ['0.99', d.p99]] as const) {
        if (value !== null) this.set({ quantile, stat: 'quantile' }, value);
      }
    },
  });
}
