import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { fakeStorePath, seedBuild, seedEvaluation, seedJobset, seedProject, type Row } from '../support/seed';
import { addGcRoots, syncGcRoots } from '../../lib/gc-roots';

/** A succeeded build with one output recorded, as finishBuild leaves it. */
async function succeededBuild(stack: TestStack, evaluation: Row, name: string, fields: Row = {}): Promise<{ build: Row; out: string }> {
  const out = fakeStorePath(name);
  const build = await seedBuild(stack.db, { evaluation, job_name: name, status: 'succeeded', outputs: { out }, build_output_path: out, ...fields });
  await stack.db('build_outputs').insert({ build_id: build.id, name: 'out', path: out });
  return { build, out };
}

describe('GC roots: which outputs Ringmaster keeps', () => {
  let stack: TestStack;
  let rootsDir: string;
  const rootNames = () => fs.readdirSync(rootsDir).sort();
  const namesOf = (...paths: string[]) => paths.map((p) => path.basename(p)).sort();

  before(async () => {
    stack = await startTestStack({ worker: false });
    rootsDir = stack.config.gcRootsDir;
  });
  after(async () => stack?.stop());

  it('roots the outputs of each jobset\'s latest keep_nr evaluations that have builds, not older ones', async () => {
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id, { keep_nr: 2 });
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
    const oldest = await succeededBuild(stack, await seedEvaluation(stack.db, jobset.id, { created_at: at(30) }), 'oldest');
    const middle = await succeededBuild(stack, await seedEvaluation(stack.db, jobset.id, { created_at: at(20) }), 'middle');
    await seedEvaluation(stack.db, jobset.id, { created_at: at(15) }); // no builds: does not count
    const newest = await succeededBuild(stack, await seedEvaluation(stack.db, jobset.id, { created_at: at(10) }), 'newest');
    const sync = await syncGcRoots(stack.db, rootsDir);
    assert.deepEqual(rootNames(), namesOf(middle.out, newest.out));
    assert.deepEqual([...sync.added].sort(), [middle.out, newest.out].sort());
    for (const name of rootNames()) assert.equal(fs.readlinkSync(path.join(rootsDir, name)), `/nix/store/${name}`);
    assert.ok(!rootNames().includes(path.basename(oldest.out)));

    // keep_nr 0 keeps nothing of the jobset; a kept build stays rooted whatever its age.
    await stack.db('jobsets').where({ id: jobset.id }).update({ keep_nr: 0 });
    await stack.db('builds').where({ id: oldest.build.id }).update({ keep: true });
    const again = await syncGcRoots(stack.db, rootsDir);
    assert.deepEqual(rootNames(), namesOf(oldest.out));
    assert.deepEqual([...again.removed].sort(), [middle.out, newest.out].sort());
    await stack.db('builds').where({ id: oldest.build.id }).update({ keep: false });
    await syncGcRoots(stack.db, rootsDir);
    assert.deepEqual(rootNames(), []);
  });

  it('roots the outputs of every channel\'s current evaluation, even beyond keep_nr', async () => {
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id, { keep_nr: 0 });
    const evaluation = await seedEvaluation(stack.db, jobset.id);
    const { out } = await succeededBuild(stack, evaluation, 'released');
    await syncGcRoots(stack.db, rootsDir);
    assert.ok(!rootNames().includes(path.basename(out)));
    await stack.db('channels').insert({ project_id: project.id, name: `stable-${path.basename(out).slice(0, 6)}`, jobset_id: jobset.id, current_evaluation_id: evaluation.id });
    await syncGcRoots(stack.db, rootsDir);
    assert.ok(rootNames().includes(path.basename(out)));
  });

  it('leaves alone files in the roots folder that are not its own, and replaces a link that points elsewhere', async () => {
    fs.writeFileSync(path.join(rootsDir, 'README'), 'an operator\'s note');
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id, { keep_nr: 1 });
    const { out } = await succeededBuild(stack, await seedEvaluation(stack.db, jobset.id), 'relinked');
    fs.symlinkSync('/nix/store/somewhere-else', path.join(rootsDir, path.basename(out)));
    await syncGcRoots(stack.db, rootsDir);
    assert.equal(fs.readlinkSync(path.join(rootsDir, path.basename(out))), out);
    assert.equal(fs.readFileSync(path.join(rootsDir, 'README'), 'utf8'), 'an operator\'s note');
  });

  it('records on each product of a rooted output which root protects it', async () => {
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id, { keep_nr: 0 });
    const { build, out } = await succeededBuild(stack, await seedEvaluation(stack.db, jobset.id), 'with-products');
    const [product] = await stack.db('build_products').insert({ build_id: build.id, name: 'hello.txt', path: `${out}/hello.txt`, product_type: 'file', subtype: 'binary-dist' }).returning('*');
    await stack.db('builds').where({ id: build.id }).update({ keep: true });
    await syncGcRoots(stack.db, rootsDir);
    const listed = await stack.request('GET', '/api/v1/admin/pinned-build-products?limit=10', { key: stack.adminKey });
    assert.equal(listed.status, 200, listed.text);
    const item = listed.body.items.find((p: Row) => p.id === product.id);
    assert.equal(item.gc_root_path, path.join(rootsDir, path.basename(out)));
    assert.equal(item.build_id, build.id);
    const bad = await stack.request('GET', '/api/v1/admin/pinned-build-products?limit=0', { key: stack.adminKey });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'query.limit');
  });
  it('a serving round adds only the wanted roots of its own outputs, records their products, and removes nothing', async () => {
    const project = await seedProject(stack.db);
    const jobset = await seedJobset(stack.db, project.id, { keep_nr: 1 });
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
    const older = await succeededBuild(stack, await seedEvaluation(stack.db, jobset.id, { created_at: at(20) }), 'round-older');
    const newest = await succeededBuild(stack, await seedEvaluation(stack.db, jobset.id, { created_at: at(10) }), 'round-newest');
    const [product] = await stack.db('build_products').insert({ build_id: newest.build.id, name: 'f', path: `${newest.out}/f`, product_type: 'file', subtype: 'binary-dist' }).returning('*');
    // A root no longer wanted, and another product's root: a round leaves both as they are.
    const stale = fakeStorePath('round-stale');
    fs.symlinkSync(stale, path.join(rootsDir, path.basename(stale)));
    const other = await succeededBuild(stack, await seedEvaluation(stack.db, (await seedJobset(stack.db, project.id, { keep_nr: 1 })).id), 'round-other');
    const [otherProduct] = await stack.db('build_products').insert({ build_id: other.build.id, name: 'g', path: other.out, product_type: 'file', subtype: 'binary-dist', gc_root_path: '/somewhere/recorded-before' }).returning('*');

    // Only the newest evaluation of the jobset is kept: of the round's two outputs, one is rooted.
    const added = await addGcRoots(stack.db, rootsDir, [older.out, newest.out]);
    assert.deepEqual(added, [newest.out]);
    assert.equal(fs.readlinkSync(path.join(rootsDir, path.basename(newest.out))), newest.out);
    assert.ok(!rootNames().includes(path.basename(older.out)));
    assert.ok(!rootNames().includes(path.basename(other.out)), 'an output outside the round is not rooted by it');
    assert.equal(fs.readlinkSync(path.join(rootsDir, path.basename(stale))), stale, 'nothing is removed');
    assert.equal((await stack.db('build_products').where({ id: product.id }).first()).gc_root_path, path.join(rootsDir, path.basename(newest.out)));
    assert.equal((await stack.db('build_products').where({ id: otherProduct.id }).first()).gc_root_path, '/somewhere/recorded-before');
    // Again: the link is there already.
    assert.deepEqual(await addGcRoots(stack.db, rootsDir, [newest.out]), []);

    // The full sync then removes what is not wanted.
    await syncGcRoots(stack.db, rootsDir);
    assert.ok(!rootNames().includes(path.basename(stale)));
    assert.ok(rootNames().includes(path.basename(newest.out)) && rootNames().includes(path.basename(other.out)));
  });
});
