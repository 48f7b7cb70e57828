import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nextNotification } from '../../workflows/notification-queue';
import type { QueuedNotification } from '../../workflows/notification-shared';

const task = (seq: number, final: boolean): QueuedNotification => ({ taskId: `t${seq}`, seq, final, maxAttempts: 3, backoffSeconds: 1 });
const ids = (qs: QueuedNotification[]) => qs.map((q) => q.taskId);

describe('the order of notifications under one (target, commit, context) key', () => {
  it('delivers the oldest queued task first, whatever order the signals came in', () => {
    const { next, rest } = nextNotification([task(7, true), task(5, true)], 0);
    assert.equal(next?.taskId, 't5');
    assert.deepEqual(ids(rest), ['t7']);
  });

  it('a late pending that arrives after a final status was delivered is dropped, never delivered', () => {
    const { next, superseded } = nextNotification([task(3, false)], 4);
    assert.equal(next, undefined);
    assert.deepEqual(ids(superseded), ['t3']);
  });

  it('a queued pending gives way to a newer task waiting behind it', () => {
    const { next, superseded, rest } = nextNotification([task(1, false), task(2, true)], 0);
    assert.equal(next?.taskId, 't2');
    assert.deepEqual(ids(superseded), ['t1']);
    assert.deepEqual(rest, []);
  });

  it('final statuses are all delivered in order, none dropped', () => {
    const { next, superseded, rest } = nextNotification([task(2, true), task(1, true), task(3, false)], 0);
    assert.equal(next?.taskId, 't1');
    assert.deepEqual(superseded, []);
    assert.deepEqual(ids(rest), ['t2', 't3']);
  });

  it('a pending newer than everything delivered (a restarted build) is delivered', () => {
    assert.equal(nextNotification([task(9, false)], 8).next?.taskId, 't9');
  });

  it('a task signalled twice is queued once', () => {
    const { next, rest } = nextNotification([task(4, true), task(4, true)], 0);
    assert.equal(next?.taskId, 't4');
    assert.deepEqual(rest, []);
  });
});
