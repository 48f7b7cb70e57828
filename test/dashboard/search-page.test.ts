import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { seedJobset, seedProject } from '../support/seed';

/** The search page's count of matching builds: exact up to 1,000, "about" the planner's estimate past it. */
describe('dashboard search page: how many builds match', () => {
  let stack: TestStack;

  const buildsHeading = async (q: string): Promise<string> => {
    const res = await fetch(`${stack.url}/search?q=${encodeURIComponent(q)}`);
    assert.equal(res.status, 200);
    const heading = /<h2 id="builds-h">([^<]*)<\/h2>/.exec(await res.text());
    assert.ok(heading, 'the builds section');
    return heading[1];
  };

  before(async () => {
    stack = await startTestStack({ worker: false });
    const jobset = await seedJobset(stack.db, (await seedProject(stack.db, { name: 'counted' })).id, { name: 'main' });
    // 1,200 evaluations; a build of many-job in each, and of few-job in 30 of them.
    await stack.db.raw(`INSERT INTO evaluations (jobset_id, status, commit_hash, trigger_kind) SELECT ?, 'completed', md5(n::text), 'manual' FROM generate_series(1, 1200) n`, [jobset.id]);
    for (const [job, evaluations] of [['few-job', 30], ['many-job', 1200]] as const) {
      await stack.db.raw(
        `INSERT INTO builds (evaluation_id, jobset_id, project_id, job_name, drv_path, system, status)
         SELECT e.id, e.jobset_id, ?, ?, '/nix/store/' || md5(e.id::text || ?) || '-' || ? || '.drv', 'x86_64-linux', 'succeeded'
         FROM (SELECT id, jobset_id FROM evaluations WHERE jobset_id = ? ORDER BY id LIMIT ?) e`,
        [jobset.project_id, job, job, job, jobset.id, evaluations],
      );
    }
  });
  after(async () => stack?.stop());

  it('up to 1,000 matches the page counts them exactly', async () => {
    assert.equal(await buildsHeading('few-job'), 'Builds (30)');
  });

  it('past 1,000 matches it says about how many, never fewer than it counted', async () => {
    const heading = await buildsHeading('many-job');
    const about = /^Builds \(about ([\d,]+)\)$/.exec(heading);
    assert.ok(about, heading);
    assert.ok(Number(about[1].replace(/,/g, '')) > 1000, heading);
  });
});
