import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject } from '../support/seed';
import type { BuildRow } from '../../lib/db';
import { failingJobsNow, queuedAheadOf, queueBySystem, runningBuildsPerBuilder } from '../../api/queries/build-queue';

/** The home page's bounded reads: the queue counted per system up to a cap, and the failed builds of each jobset's newest evaluation. */
describe('home page queries', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false });
  });
  after(async () => stack?.stop());

  it('queueBySystem counts queued and running builds per system, each up to the cap', async () => {
    const project = await seedProject(stack.db, { name: 'queue-counts' });
    const jobset = await seedJobset(stack.db, project.id, { name: 'main' });
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    for (let i = 0; i < 5; i++) await seedBuild(stack.db, { evaluation, status: 'pending', system: 'aarch64-linux' });
    await seedBuild(stack.db, { evaluation, status: 'running', system: 'aarch64-linux' });
    await seedBuild(stack.db, { evaluation, status: 'running', system: 'x86_64-darwin' });
    await seedBuild(stack.db, { evaluation, status: 'succeeded', system: 'riscv64-linux' });

    assert.deepEqual(await queueBySystem(stack.db), [
      { system: 'aarch64-linux', queued: 5, running: 1 },
      { system: 'x86_64-darwin', queued: 0, running: 1 },
    ]);
    assert.deepEqual(await queueBySystem(stack.db, 3), [
      { system: 'aarch64-linux', queued: 3, running: 1 },
      { system: 'x86_64-darwin', queued: 0, running: 1 },
    ]);
  });

  it('failingJobsNow: the failed builds of each jobset newest evaluation only, newest first, paged', async () => {
    const project = await seedProject(stack.db, { name: 'failing-now' });
    const names: string[] = [];
    for (const jobsetName of ['a', 'b']) {
      const jobset = await seedJobset(stack.db, project.id, { name: jobsetName });
      const old = await seedEvaluation(stack.db, jobset.id, { created_at: new Date(Date.now() - 3_600_000) });
      const newest = await seedEvaluation(stack.db, jobset.id);
      await seedBuild(stack.db, { evaluation: old, job_name: `${jobsetName}-old-failure`, status: 'failed' });
      await seedBuild(stack.db, { evaluation: newest, job_name: `${jobsetName}-ok`, status: 'succeeded' });
      for (let i = 0; i < 3; i++) {
        const name = `${jobsetName}-fails-${i}`;
        await seedBuild(stack.db, { evaluation: newest, job_name: name, status: i === 2 ? 'timeout' : 'failed', created_at: new Date(Date.now() - 60_000 * (10 - i) - (jobsetName === 'b' ? 30_000 : 0)) });
        names.push(name);
      }
    }
    // Newest first across both jobsets: a-fails-2, b-fails-2, a-fails-1, b-fails-1, a-fails-0, b-fails-0.
    const expected = ['a-fails-2', 'b-fails-2', 'a-fails-1', 'b-fails-1', 'a-fails-0', 'b-fails-0'];
    assert.deepEqual(names.slice().sort(), expected.slice().sort());
    assert.deepEqual((await failingJobsNow(stack.db, { limit: 20, offset: 0 })).map((b) => b.job_name), expected);
    assert.deepEqual((await failingJobsNow(stack.db, { limit: 2, offset: 3 })).map((b) => b.job_name), ['b-fails-1', 'a-fails-0']);
    const page = await failingJobsNow(stack.db, { limit: 1, offset: 0 });
    assert.equal(page[0].status, 'timeout');
    assert.deepEqual(Object.keys(page[0]).sort(), ['created_at', 'id', 'job_name', 'priority', 'status', 'system'], 'what a list of builds shows, not whole rows');
  });

  it('queuedAheadOf counts the queued builds of the same system that go first: higher priority, or as high and older', async () => {
    const project = await seedProject(stack.db, { name: 'queued-ahead' });
    const jobset = await seedJobset(stack.db, project.id, { name: 'main' });
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
    const system = 'mips64-linux';
    const build = await seedBuild(stack.db, { evaluation, status: 'pending', system, priority: 5, created_at: at(10) });
    await seedBuild(stack.db, { evaluation, status: 'pending', system, priority: 9, created_at: at(1) }); // ahead: higher priority
    await seedBuild(stack.db, { evaluation, status: 'pending', system, priority: 5, created_at: at(20) }); // ahead: as high, older
    await seedBuild(stack.db, { evaluation, status: 'pending', system, priority: 5, created_at: at(5) }); // behind: newer
    await seedBuild(stack.db, { evaluation, status: 'pending', system, priority: 1, created_at: at(60) }); // behind: lower priority
    await seedBuild(stack.db, { evaluation, status: 'pending', system: 'sparc-linux', priority: 9, created_at: at(60) }); // another system
    await seedBuild(stack.db, { evaluation, status: 'running', system, priority: 9, created_at: at(60) }); // not queued
    assert.equal(await queuedAheadOf(stack.db, build as BuildRow), 2);
    assert.equal(await queuedAheadOf(stack.db, build as BuildRow, 1), 1, 'counted up to the cap');
  });

  it('runningBuildsPerBuilder counts the running builds of each builder and of none, each up to the cap', async () => {
    const project = await seedProject(stack.db, { name: 'running-per-builder' });
    const jobset = await seedJobset(stack.db, project.id, { name: 'main' });
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    const [one, two] = await stack.db('remote_builders')
      .insert([
        { name: 'rpb-one', ssh_uri: 'ssh://one.example', systems: ['x86_64-linux'] },
        { name: 'rpb-two', ssh_uri: 'ssh://two.example', systems: ['x86_64-linux'] },
      ])
      .returning('id');
    await stack.db('builds').where({ status: 'running' }).update({ status: 'succeeded' }); // what earlier tests left running
    for (let i = 0; i < 3; i++) await seedBuild(stack.db, { evaluation, status: 'running', builder_id: one.id });
    await seedBuild(stack.db, { evaluation, status: 'running', builder_id: two.id });
    await seedBuild(stack.db, { evaluation, status: 'succeeded', builder_id: two.id });
    for (let i = 0; i < 2; i++) await seedBuild(stack.db, { evaluation, status: 'running' });
    assert.deepEqual(await runningBuildsPerBuilder(stack.db), new Map<string | null, number>([[one.id, 3], [two.id, 1], [null, 2]]));
    assert.deepEqual(await runningBuildsPerBuilder(stack.db, 2), new Map<string | null, number>([[one.id, 2], [two.id, 1], [null, 2]]));
  });
});
