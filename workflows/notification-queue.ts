import type { QueuedNotification } from './notification-shared';

export interface NextNotification {
  /** The task to deliver now, if any. */
  next: QueuedNotification | undefined;
  /** Tasks that will never be delivered: older than what was already delivered, or a pending status with a newer task queued. */
  superseded: QueuedNotification[];
  /** What stays queued after `next` (in seq order). */
  rest: QueuedNotification[];
}

/**
 * Which queued notification goes next under one ordering key. Deliveries go oldest first (by seq);
 * a task older than the newest delivered one is superseded (a late `pending` never overwrites a final
 * status), and so is a queued pending task once a newer task waits behind it (only the newest state
 * matters). Duplicates of one task (a re-sent signal) count once.
 */
export function nextNotification(queue: QueuedNotification[], newestDeliveredSeq: number): NextNotification {
  const unique = new Map<string, QueuedNotification>();
  for (const q of queue) if (!unique.has(q.taskId)) unique.set(q.taskId, q);
  const sorted = [...unique.values()].sort((a, b) => a.seq - b.seq);
  const newestQueued = sorted.length > 0 ? sorted[sorted.length - 1].seq : -Infinity;
  const superseded: QueuedNotification[] = [];
  const live: QueuedNotification[] = [];
  for (const q of sorted) {
    if (q.seq < newestDeliveredSeq || (!q.final && q.seq < newestQueued)) superseded.push(q);
    else live.push(q);
  }
  return { next: live[0], superseded, rest: live.slice(1) };
}
