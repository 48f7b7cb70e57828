import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';

/** The build page's "why it waits" for a queued build with dependencies, over plain HTTP. */
describe('dashboard build page: why a queued build waits for its dependencies', () => {
  let stack: TestStack;
  let jobset: Row;

  const get = async (path: string) => {
    const res = await fetch(`${stack.url}${path}`);
    return { status: res.status, html: await res.text() };
  };

  before(async () => {
    stack = await startTestStack({ worker: false });
    jobset = await seedJobset(stack.db, (await seedProject(stack.db, { name: 'waits' })).id, { name: 'main' });
  });
  after(async () => stack?.stop());

  it('a queued build that waits for dependencies names the unfinished ones, however many it has', async () => {
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    const waiting = await seedBuild(stack.db, { evaluation, job_name: 'app', status: 'pending' });
    const dependOn = async (names: string[], status: string) => {
      for (const job_name of names) {
        const dependency = await seedBuild(stack.db, { evaluation, job_name, status });
        await stack.db('build_dependencies').insert({ build_id: waiting.id, dependency_build_id: dependency.id });
      }
    };
    await dependOn(['lib-running'], 'running');
    await dependOn(['lib-done'], 'succeeded');
    const few = await get(`/builds/${waiting.id}`);
    assert.match(few.html, /It waits for 1 dependency to finish\./);
    assert.match(few.html, /<li data-wait-reason="dependencies">[^]*>lib-running<\/a>[^]*<\/li>/);
    assert.doesNotMatch(few.html.slice(few.html.indexOf('data-wait-reason="dependencies"'), few.html.indexOf('id="steps"')), /lib-done/, 'a finished dependency is not a reason');
    // More dependencies than the page lists (50): the unfinished ones are counted among all of them, not the 50 shown.
    await dependOn(Array.from({ length: 60 }, (_, i) => `a-lib-${String(i).padStart(2, '0')}`), 'succeeded');
    await dependOn(['z-lib-queued'], 'pending');
    const many = await get(`/builds/${waiting.id}`);
    assert.match(many.html, /Dependencies \(63\)/);
    assert.match(many.html, /It waits for 2 dependencies to finish\./);
    assert.match(many.html, />z-lib-queued<\/a>/, 'an unfinished dependency past the first 50 by name');
  });
});
