import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';

/** Every plan node of an EXPLAIN (FORMAT JSON) plan. */
function planNodes(plan: Record<string, unknown>): Array<Record<string, unknown>> {
  const children = (plan.Plans as Array<Record<string, unknown>> | undefined) ?? [];
  return [plan, ...children.flatMap(planNodes)];
}

describe('search', () => {
  let stack: TestStack;
  const tag = crypto.randomBytes(3).toString('hex');
  const names = (r: { body: { items: Row[] } }) => r.body.items.map((b) => b.job_name).sort();
  let alpha: Row;
  let beta: Row;
  let alphaMain: Row;
  let helloAlpha: Row;
  let helloOutput: string;

  before(async () => {
    stack = await startTestStack({ worker: false });
    const db = stack.db;
    alpha = await seedProject(db, { name: `alpha-${tag}` });
    beta = await seedProject(db, { name: `beta-${tag}` });
    alphaMain = await seedJobset(db, alpha.id, { name: `main-${tag}` });
    const betaRelease = await seedJobset(db, beta.id, { name: `release-${tag}` });
    const alphaEval = await seedEvaluation(db, alphaMain.id);
    const betaEval = await seedEvaluation(db, betaRelease.id);
    helloAlpha = await seedBuild(db, { evaluation: alphaEval, job_name: `hello-${tag}`, status: 'succeeded', created_at: '2026-01-10T12:00:00Z' });
    helloOutput = fakeStorePath(`hello-${tag}`);
    await db('build_outputs').insert({ build_id: helloAlpha.id, name: 'out', path: helloOutput });
    await seedBuild(db, { evaluation: alphaEval, job_name: `hello_test-${tag}`, system: 'aarch64-linux', status: 'failed', created_at: '2026-02-10T12:00:00Z' });
    await seedBuild(db, { evaluation: betaEval, job_name: `hello-${tag}`, status: 'failed', created_at: '2026-03-10T12:00:00Z' });
    await seedBuild(db, { evaluation: betaEval, job_name: `goodbye-${tag}`, status: 'pending', created_at: '2026-03-11T12:00:00Z' });
  });
  after(async () => stack?.stop());

  it('finds builds whose job name contains the query, newest first, as a page', async () => {
    const r = await stack.request('GET', `/api/v1/search?q=${encodeURIComponent(`ello-${tag}`)}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.items.map((b: Row) => b.project_id), [beta.id, alpha.id]);
    assert.equal(r.body.total, 2);
    assert.equal(r.body.total_exact, true);
    assert.equal(r.body.limit, 50);
    assert.equal(r.body.offset, 0);
    assert.equal(r.body.items[1].outputs.out, helloOutput);
  });

  it('narrows by project, jobset, status, system and creation time', async () => {
    const q = `q=${encodeURIComponent(tag)}`;
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?${q}&project=${alpha.name}`)), [`hello-${tag}`, `hello_test-${tag}`]);
    const unknownProject = await stack.request('GET', `/api/v1/search?${q}&project=no-such-project-${tag}`);
    assert.equal(unknownProject.status, 200);
    assert.deepEqual(unknownProject.body.items, [], 'an unknown project name matches no build');
    assert.equal(unknownProject.body.total, 0);
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?${q}&project_id=${beta.id}`)), [`goodbye-${tag}`, `hello-${tag}`]);
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?${q}&jobset=${alphaMain.name}&status=failed`)), [`hello_test-${tag}`]);
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?${q}&jobset_id=${alphaMain.id}&system=aarch64-linux`)), [`hello_test-${tag}`]);
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?${q}&status=failed`)), [`hello-${tag}`, `hello_test-${tag}`]);
    const range = `from=${encodeURIComponent('2026-02-01T00:00:00Z')}&to=${encodeURIComponent('2026-03-11T00:00:00Z')}`;
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?${q}&${range}`)), [`hello-${tag}`, `hello_test-${tag}`]);
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?job_name=goodbye-${tag}`)), [`goodbye-${tag}`]);
  });

  it('pages: limit and offset over the same order', async () => {
    const q = `q=${encodeURIComponent(tag)}`;
    const all = (await stack.request('GET', `/api/v1/search?${q}`)).body.items.map((b: Row) => b.id);
    assert.equal(all.length, 4);
    const second = await stack.request('GET', `/api/v1/search?${q}&limit=2&offset=2`);
    assert.deepEqual(second.body.items.map((b: Row) => b.id), all.slice(2));
    assert.equal(second.body.total, 4);
  });

  it('finds the build of a store path: its output or its .drv, whole, by hash prefix, or by hash alone', async () => {
    const hash = helloOutput.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    for (const storePath of [helloOutput, `/nix/store/${hash}`, hash.slice(0, 12), helloAlpha.drv_path]) {
      const r = await stack.request('GET', `/api/v1/search?store_path=${encodeURIComponent(storePath)}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.items.map((b: Row) => b.id), [helloAlpha.id], storePath);
    }
    const none = await stack.request('GET', `/api/v1/search?store_path=${encodeURIComponent('/nix/store/00000000000000000000000000000000')}`);
    assert.deepEqual(none.body.items, []);
    assert.equal(none.body.total, 0);
  });

  it('takes LIKE wildcards in the query literally', async () => {
    // "hello_test" contains an underscore: as a wildcard it would also match "hello-test"-like names.
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?q=${encodeURIComponent(`o_test-${tag}`)}`)), [`hello_test-${tag}`]);
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?q=${encodeURIComponent(`lo%${tag}`)}`)), []);
    assert.deepEqual(names(await stack.request('GET', `/api/v1/search?q=${encodeURIComponent(`o\\_test-${tag}`)}`)), []);
    assert.equal((await stack.request('GET', `/api/v1/search?q=${encodeURIComponent("'; drop table builds; --")}`)).status, 200);
    assert.ok((await stack.db('builds').count<{ count: string }[]>('* as count'))[0].count !== '0');
  });

  it('refuses bad input with a 400 naming the field', async () => {
    for (const [query, field] of [
      ['q=ab', 'q'],
      ['status=exploded', 'status'],
      ['from=yesterday', 'from'],
      [`from=${encodeURIComponent('2026-03-01T00:00:00Z')}&to=${encodeURIComponent('2026-02-01T00:00:00Z')}`, 'from'],
      ['project_id=not-a-uuid', 'project_id'],
      ['store_path=%00%00%00', 'store_path'],
      ['limit=0', 'limit'],
      ['colour=blue', 'colour'],
    ]) {
      const r = await stack.request('GET', `/api/v1/search?${query}`);
      assert.equal(r.status, 400, `${query}: ${r.text}`);
      assert.equal(r.body.error_code, 'VALIDATION_ERROR');
      assert.ok(JSON.stringify(r.body.details).includes(field), `${query}: ${JSON.stringify(r.body)}`);
    }
  });

  it('quick search lists projects, jobsets and jobs whose names contain the query', async () => {
    const r = await stack.request('GET', `/api/v1/search/quick?q=${encodeURIComponent(tag)}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.projects.map((p: Row) => p.name), [alpha.name, beta.name]);
    assert.deepEqual(r.body.jobsets.map((j: Row) => `${j.project_name}/${j.name}`), [`${alpha.name}/main-${tag}`, `${beta.name}/release-${tag}`]);
    assert.deepEqual(
      r.body.jobs.map((j: Row) => `${j.project_name}/${j.jobset_name}/${j.name}`),
      [`${beta.name}/release-${tag}/goodbye-${tag}`, `${alpha.name}/main-${tag}/hello-${tag}`, `${beta.name}/release-${tag}/hello-${tag}`, `${alpha.name}/main-${tag}/hello_test-${tag}`],
    );
    const limited = await stack.request('GET', `/api/v1/search/quick?q=${encodeURIComponent(tag)}&limit=1`);
    assert.equal(limited.body.jobs.length, 1);
    const missing = await stack.request('GET', '/api/v1/search/quick');
    assert.equal(missing.status, 400);
    assert.ok(JSON.stringify(missing.body.details).includes('q'));
  });

  describe('on a table of 50,000 builds', () => {
    let bulkProject: Row;
    let bulkJobset: Row;
    let sampleOutput: string;

    before(async () => {
      const db = stack.db;
      bulkProject = await seedProject(db, { name: `bulk-${tag}` });
      // 10 jobsets × 5 evaluations × 1,000 jobs.
      const jobsets = [];
      for (let i = 0; i < 10; i++) jobsets.push(await seedJobset(db, bulkProject.id, { name: `nightly-${i}-${tag}` }));
      bulkJobset = jobsets[3];
      await db.raw(
        `INSERT INTO evaluations (jobset_id, status, trigger_kind, created_at)
         SELECT js.id, 'completed', 'interval', now() - make_interval(days => e, mins => js.n::int)
         FROM unnest(?::uuid[]) WITH ORDINALITY AS js(id, n) CROSS JOIN generate_series(1, 5) e`,
        [jobsets.map((j) => j.id)],
      );
      await db.raw(
        `INSERT INTO builds (evaluation_id, jobset_id, project_id, job_name, drv_path, system, status, created_at, started_at, completed_at)
         SELECT e.id, e.jobset_id, ?, 'bulk-job-' || j, '/nix/store/' || substr(md5(e.id::text || j), 1, 32) || '-bulk-job-' || j || '.drv',
                (ARRAY['x86_64-linux', 'aarch64-linux', 'x86_64-darwin'])[1 + j % 3],
                (ARRAY['succeeded', 'succeeded', 'succeeded', 'failed', 'pending'])[1 + (j * 7 + extract(day FROM e.created_at)::int) % 5],
                e.created_at + make_interval(secs => j), e.created_at + make_interval(secs => j + 5), e.created_at + make_interval(secs => j + 65)
         FROM evaluations e CROSS JOIN generate_series(0, 999) j WHERE e.jobset_id = ANY(?::uuid[])`,
        [bulkProject.id, jobsets.map((j) => j.id)],
      );
      await db.raw(
        `INSERT INTO build_outputs (build_id, name, path)
         SELECT id, 'out', '/nix/store/' || substr(md5(id::text), 1, 32) || '-' || job_name FROM builds WHERE project_id = ?`,
        [bulkProject.id],
      );
      sampleOutput = (await db('build_outputs').join('builds', 'builds.id', 'build_outputs.build_id').where('builds.jobset_id', bulkJobset.id).first('build_outputs.path')).path;
      await db.raw('ANALYZE builds, build_outputs, jobs, projects, jobsets, evaluations');
    });

    /** The SQL the API runs for a request, each statement's plan, and whether any reads builds or build_outputs whole. */
    async function plansOf(path: string, relations = ['builds', 'build_outputs']): Promise<Array<{ sql: string; seqScans: string[] }>> {
      const ran: Array<{ sql: string; bindings: Knex.RawBinding[] }> = [];
      const listener = (q: { sql: string; bindings?: Knex.RawBinding[] }) => ran.push({ sql: q.sql, bindings: q.bindings ?? [] });
      stack.db.on('query', listener);
      try {
        const r = await stack.request('GET', path);
        assert.equal(r.status, 200, `${path}: ${r.text}`);
      } finally {
        stack.db.removeListener('query', listener);
      }
      const reads = ran.filter((q) => /^\s*select/i.test(q.sql) && relations.some((r) => new RegExp(`"${r}"|\\b${r}\\b`).test(q.sql)));
      assert.ok(reads.length > 0, `no query of ${relations.join(' or ')} ran for ${path}`);
      const plans = [];
      for (const q of reads) {
        const explained = await stack.db.raw(`EXPLAIN (FORMAT JSON) ${q.sql.replace(/\$\d+/g, '?')}`, q.bindings);
        const root = (explained.rows[0]['QUERY PLAN'] as Array<{ Plan: Record<string, unknown> }>)[0].Plan;
        const seqScans = planNodes(root)
          .filter((n) => n['Node Type'] === 'Seq Scan' && relations.includes(n['Relation Name'] as string))
          .map((n) => n['Relation Name'] as string);
        plans.push({ sql: q.sql, seqScans });
      }
      return plans;
    }

    it('answers every kind of search from indexes, never a sequential scan of builds (EXPLAIN, statistics from ANALYZE)', async () => {
      const hash = sampleOutput.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const searches = [
        '/api/v1/search?q=bulk-job-42',
        `/api/v1/search?q=bulk-job-42&project=${bulkProject.name}&status=failed`,
        '/api/v1/search?job_name=bulk-job-7',
        `/api/v1/search?jobset_id=${bulkJobset.id}&system=aarch64-linux&limit=20&offset=1600`,
        `/api/v1/search?store_path=${encodeURIComponent(sampleOutput)}`,
        `/api/v1/search?store_path=${hash.slice(0, 10)}`,
        `/api/v1/search?from=${encodeURIComponent(new Date(Date.now() - 2.5 * 86400_000).toISOString())}&to=${encodeURIComponent(new Date(Date.now() - 1.5 * 86400_000).toISOString())}`,
        '/api/v1/search?status=failed',
        '/api/v1/search',
      ];
      for (const path of searches) {
        for (const plan of await plansOf(path)) assert.deepEqual(plan.seqScans, [], `${path}\n${plan.sql}`);
      }
      // Autocomplete reads the small jobs table (one row per job of a jobset), never builds.
      for (const plan of await plansOf('/api/v1/search/quick?q=bulk-job-42', ['jobs', 'builds'])) assert.doesNotMatch(plan.sql, /"builds"/);
    });

    it('answers build lists, filtered and deep, from indexes; a cursor page reads one page of keys however deep (EXPLAIN)', async () => {
      // The visibility map as autovacuum keeps it: without it a count of 10,001 keys of a third of this small table
      // costs more heap reads than a sequential scan, and the planner rightly scans.
      await stack.db.raw('VACUUM (ANALYZE) builds');
      const failed = (await stack.request('GET', `/api/v1/builds?project_id=${bulkProject.id}&status=failed&limit=1`)).body;
      const lastOffset = Math.floor((failed.total - 1) / 50) * 50;
      const lists = [
        '/api/v1/builds?limit=50',
        '/api/v1/builds?status=failed&limit=50',
        `/api/v1/builds?status=failed&limit=50&offset=${lastOffset}`,
        '/api/v1/builds?job_name=bulk-job-42&limit=50&offset=40',
        `/api/v1/builds?project_id=${bulkProject.id}&limit=50&offset=20000`,
        `/api/v1/builds?jobset_id=${bulkJobset.id}&status=pending&limit=50`,
        '/api/v1/builds?system=aarch64-linux&limit=50&offset=5000',
      ];
      for (const path of lists) {
        for (const plan of await plansOf(path)) assert.deepEqual(plan.seqScans, [], `${path}\n${plan.sql}`);
      }
      // Near the end of the failed builds by cursor: the page's keys come from an index range, not a walk past them.
      const before = (await stack.request('GET', `/api/v1/builds?status=failed&limit=50&offset=${lastOffset - 50}`)).body;
      assert.equal(typeof before.next_cursor, 'string');
      const deepPath = `/api/v1/builds?status=failed&limit=50&cursor=${before.next_cursor}`;
      const byOffset = (await stack.request('GET', `/api/v1/builds?status=failed&limit=50&offset=${lastOffset}`)).body;
      const byCursor = (await stack.request('GET', deepPath)).body;
      assert.deepEqual(byCursor.items.map((b: Row) => b.id), byOffset.items.map((b: Row) => b.id));
      const ran: Array<{ sql: string; bindings: Knex.RawBinding[] }> = [];
      const listener = (q: { sql: string; bindings?: Knex.RawBinding[] }) => ran.push({ sql: q.sql, bindings: q.bindings ?? [] });
      stack.db.on('query', listener);
      await stack.request('GET', deepPath);
      stack.db.removeListener('query', listener);
      const page = ran.find((q) => /json_agg/.test(q.sql))!;
      const explained = await stack.db.raw(`EXPLAIN (ANALYZE, FORMAT JSON) ${page.sql.replace(/\$\d+/g, '?')}`, page.bindings);
      // The page's own nodes: not the bounded count beside it (an InitPlan, at most 10,001 keys) nor per-row lookups.
      const pageNodes = (plan: Record<string, unknown>): Array<Record<string, unknown>> =>
        ['InitPlan', 'SubPlan'].includes(plan['Parent Relationship'] as string)
          ? []
          : [plan, ...((plan.Plans as Array<Record<string, unknown>> | undefined) ?? []).flatMap(pageNodes)];
      const scans = pageNodes((explained.rows[0]['QUERY PLAN'] as Array<{ Plan: Record<string, unknown> }>)[0].Plan).filter(
        (n) => String(n['Node Type']).startsWith('Index') && n['Relation Name'] === 'builds' && n['Parent Relationship'] !== 'Inner',
      );
      assert.ok(scans.length > 0, 'no index scan of builds');
      for (const scan of scans) assert.ok(Number(scan['Actual Rows']) <= 51, `${scan['Index Name']} read ${scan['Actual Rows']} rows for a page of 50`);
    });

    it('counts a large result only up to 10,000 and then gives an estimate; small results stay exact', async () => {
      const wide = await stack.request('GET', `/api/v1/search?project_id=${bulkProject.id}&limit=1`);
      assert.equal(wide.body.total_exact, false);
      assert.ok(wide.body.total > 10_000 && wide.body.total < 100_000, `estimate ${wide.body.total}`);
      const narrow = await stack.request('GET', `/api/v1/search?project_id=${bulkProject.id}&job_name=bulk-job-3`);
      assert.equal(narrow.body.total_exact, true);
      assert.equal(narrow.body.total, 50);
      const list = await stack.request('GET', `/api/v1/builds?jobset_id=${bulkJobset.id}&job_name=bulk-job-3&limit=2&offset=3`);
      assert.equal(list.body.total, 5);
      assert.equal(list.body.items.length, 2);
    });
  });
});
