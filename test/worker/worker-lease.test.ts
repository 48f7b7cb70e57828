import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { thisProcessIdentity, type ProcessIdentity } from '../../lib/process-identity';
import { loadConfig, DEFAULT_WORKER_LEASE_SECONDS } from '../../lib/config';
import { dropLapsedLeases, recordRunningActivity, renewWorkerLease, runningActivities } from '../../activities/records/running-activities';
import { keepWorkerLease, leaseKeyOf } from '../../worker/ended-workers';
import { rootLogger } from '../../lib/logger';

/**
 * Worker leases (issue 6, worker/ended-workers.ts), against a real PostgreSQL: what its clock says of a
 * recorded attempt's process. The e2e test `durability-other-namespace.test.ts` kills a worker in a PID
 * namespace of its own and sees its batch failed by lease.
 */
describe('worker leases: a process in another container is judged by the lease it renews', () => {
  let stack: TestStack;
  const self = thisProcessIdentity()!;
  /** Another container's worker: its own PID namespace, so no PID of it can be looked up here. */
  const elsewhere = (pid: number): ProcessIdentity => ({ ...self, pidNamespace: 'pid:[1]', pid, startTicks: '42' });
  let token = 0;
  const attempt = async (owner: ProcessIdentity, leaseKey: string | null) => {
    const taskToken = new Uint8Array([++token, 7, 7]);
    await recordRunningActivity(stack.db, { taskToken, activityType: 'realiseBatch', activityId: String(token), workflowId: 'dispatcher-test', attempt: 1, owner, leaseKey });
    return taskToken;
  };
  const lapsed = async (taskToken: Uint8Array, leaseMs = 10_000) => {
    const row = (await runningActivities(stack.db, leaseMs)).find((a) => Buffer.from(a.taskToken).equals(Buffer.from(taskToken)));
    assert.ok(row, 'the attempt is recorded');
    return row.leaseLapsed;
  };
  const log = rootLogger().child({ component: 'test' });

  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => stack?.stop());
  beforeEach(async () => {
    await stack.db('running_activities').delete();
    await stack.db('worker_leases').delete();
  });

  it('an attempt of a process whose lease is current has not lapsed; once the lease expires (by the database clock) it has', async () => {
    const owner = elsewhere(101);
    const key = leaseKeyOf(owner);
    await renewWorkerLease(stack.db, key, owner, 10_000);
    const taskToken = await attempt(owner, key);
    assert.equal(await lapsed(taskToken), false);
    const [lease] = await stack.db('worker_leases').where({ owner_key: key }).select(stack.db.raw('expires_at - renewed_at as length'));
    assert.equal(lease.length.seconds, 10, 'the lease lasts leaseMs from its renewal');
    await stack.db('worker_leases').where({ owner_key: key }).update({ expires_at: stack.db.raw("now() - interval '1 second'") });
    assert.equal(await lapsed(taskToken), true, 'expired');
    await renewWorkerLease(stack.db, key, owner, 10_000);
    assert.equal(await lapsed(taskToken), false, 'renewed again');
  });

  it('an attempt whose process never wrote its lease lapses only once it was recorded longer ago than a lease lasts', async () => {
    const owner = elsewhere(102);
    const taskToken = await attempt(owner, leaseKeyOf(owner));
    assert.equal(await lapsed(taskToken), false, 'just recorded: its lease may still be on its way');
    await stack.db('running_activities').update({ started_at: stack.db.raw("now() - interval '11 seconds'") });
    assert.equal(await lapsed(taskToken, 10_000), true, 'recorded 11 s ago, with a 10 s lease');
    assert.equal(await lapsed(taskToken, 20_000), false, 'with a 20 s lease, not yet');
  });

  it('an attempt recorded without a lease (a worker of older code) is never judged by lease', async () => {
    const taskToken = await attempt(elsewhere(103), null);
    await stack.db('running_activities').update({ started_at: stack.db.raw("now() - interval '1 hour'") });
    assert.equal(await lapsed(taskToken), false);
  });

  it('keepWorkerLease writes the lease before it answers, renews it, and gives it up when stopped', async () => {
    const lease = await keepWorkerLease({ db: stack.db, logger: log }, self, 10_000, 100);
    try {
      assert.equal(lease.key, leaseKeyOf(self));
      const read = async () => (await stack.db('worker_leases').where({ owner_key: lease.key }).first()) as { owner: ProcessIdentity; renewed_at: Date; expires_at: Date } | undefined;
      const first = await read();
      assert.ok(first, 'written before keepWorkerLease answered');
      assert.deepEqual(first.owner, self);
      let later = first;
      for (let i = 0; i < 50 && later.renewed_at.getTime() === first.renewed_at.getTime(); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        later = (await read())!;
      }
      assert.ok(later.renewed_at > first.renewed_at, 'renewed');
      assert.ok(later.expires_at > first.expires_at, 'its end moved with it');
    } finally {
      await lease.stop();
    }
    assert.equal((await stack.db('worker_leases')).length, 0, 'given up');
  });

  it('leases that lapsed over the kept time are deleted, unless a recorded attempt still names them', async () => {
    const [old, named, fresh] = [elsewhere(104), elsewhere(105), elsewhere(106)];
    for (const owner of [old, named, fresh]) await renewWorkerLease(stack.db, leaseKeyOf(owner), owner, 10_000);
    await stack.db('worker_leases').whereIn('owner_key', [leaseKeyOf(old), leaseKeyOf(named)]).update({ expires_at: stack.db.raw("now() - interval '2 hours'") });
    await attempt(named, leaseKeyOf(named));
    assert.equal(await dropLapsedLeases(stack.db, 60 * 60 * 1000), 1);
    assert.deepEqual((await stack.db('worker_leases').select('owner_key')).map((r) => r.owner_key).sort(), [leaseKeyOf(named), leaseKeyOf(fresh)].sort());
  });

  it('RINGMASTER_WORKER_LEASE_SECONDS sets the lease (default 15 s) and refuses one shorter than 8 s', () => {
    assert.equal(loadConfig({}).workerLeaseSeconds, DEFAULT_WORKER_LEASE_SECONDS);
    assert.equal(DEFAULT_WORKER_LEASE_SECONDS, 15);
    assert.equal(loadConfig({ RINGMASTER_WORKER_LEASE_SECONDS: '8' }).workerLeaseSeconds, 8);
    assert.throws(() => loadConfig({ RINGMASTER_WORKER_LEASE_SECONDS: '5' }), /RINGMASTER_WORKER_LEASE_SECONDS must be at least 8, got 5/);
    assert.throws(() => loadConfig({ RINGMASTER_WORKER_LEASE_SECONDS: 'soon' }), /RINGMASTER_WORKER_LEASE_SECONDS must be a non-negative integer/);
  });
});
