import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation, type CreatedJobset } from '../support/pipeline';
import { makeNixChannelClient, type NixChannelClient } from '../support/nix-channel-client';

const CHANNEL_FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'channel');

/**
 * Channels end to end on real parts: a git repository, Temporal, PostgreSQL, the worker building on the
 * local Nix, and Debian's Nix 2.8 `nix-channel` subscribing over HTTP.
 */
describe('a channel that nix-channel follows', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let jobset: CreatedJobset;
  let client: NixChannelClient;
  let tested: Record<string, any>;
  let allGreen: Record<string, any>;
  let firstEvaluation: string;
  let builds: Record<string, Record<string, any>>;
  const channelName = `demo-${nonce()}`;

  before(async () => {
    stack = await startTestStack({ worker: true });
    repo = await makeGitRepo(CHANNEL_FIXTURE);
    jobset = await createJobset(stack, repo.url, { inputs: { greeting: `hi-${nonce()}` } });
    client = await makeNixChannelClient();
  });
  after(async () => {
    await stack?.stop();
    await client?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  const channel = async (id: string) => (await stack.request('GET', `/api/v1/channels/${id}`)).body;

  it('channels on a jobset with no evaluation yet start empty', async () => {
    const a = await stack.request('POST', '/api/v1/channels', { key: stack.adminKey, body: { project_id: jobset.projectId, name: channelName, jobset_id: jobset.jobsetId, aggregate_job: 'tested' } });
    assert.equal(a.status, 200, a.text);
    tested = a.body;
    const b = await stack.request('POST', '/api/v1/channels', { key: stack.adminKey, body: { project_id: jobset.projectId, name: `${channelName}-all-green`, jobset_id: jobset.jobsetId } });
    assert.equal(b.status, 200, b.text);
    allGreen = b.body;
    assert.equal(tested.current_evaluation_id, null);
    assert.equal(allGreen.current_evaluation_id, null);
  });

  it('when the evaluation is built, the channel gated on the aggregate `tested` moves to it by itself; the all-builds channel does not (broken failed)', async () => {
    firstEvaluation = (await trigger(stack, jobset.jobsetId)).id;
    assert.equal((await waitForEvaluation(stack, firstEvaluation)).status, 'completed');
    builds = await waitForBuilds(stack, firstEvaluation);
    assert.equal(builds.tested.status, 'succeeded');
    assert.equal(builds.broken.status, 'failed');
    await eventually('the tested channel to be promoted', async () => ((await channel(tested.id)).current_evaluation_id === firstEvaluation ? true : undefined), 60_000);
    assert.equal((await channel(allGreen.id)).current_evaluation_id, null);
    const audit = await stack.db('audit_log').where({ action: 'channel.promote', target_id: tested.id }).first();
    assert.equal(audit.actor_kind, 'system');
    assert.equal(audit.details.evaluation_id, firstEvaluation);
    assert.equal(audit.details.automatic, true);
  });

  it('nix-channel --add and --update subscribe to it; nix-instantiate reads each job\'s built output through <NAME>', async () => {
    await client.run('nix-channel', ['--add', `${stack.url}/channel/${channelName}`, channelName]);
    await client.run('nix-channel', ['--update']);
    const { stdout: list } = await client.run('nix-channel', ['--list']);
    assert.equal(list.trim(), `${channelName} ${stack.url}/channel/${channelName}`);

    const outputs = await client.evalJson(`let c = import <${channelName}> {}; in { hello = c.hello.outPath; greet = c.tools.greet.outPath; doc = c.docs.doc.outPath; tested = c.tested.outPath; }`);
    assert.deepEqual(outputs, {
      hello: builds.hello.outputs.out,
      greet: builds['tools.greet'].outputs.out,
      doc: builds.docs.outputs.doc,
      tested: builds.tested.outputs.out,
    });
    // A failed job is not in the channel.
    assert.equal(await client.evalJson(`(import <${channelName}> {}) ? broken`), false);
    assert.equal(await client.evalJson(`builtins.readFile <${channelName}/.git-revision>`), repo.commit);
  });

  it('a subscriber with an empty store substitutes a job of the channel from the binary cache the channel names', async () => {
    // The channel names its cache; the admin system route shows the key a subscriber trusts.
    const cacheUrl = (await stack.request('GET', `/channel/${channelName}/binary-cache-url`)).text.trim();
    assert.equal(cacheUrl, `${stack.url}/nix-cache`);
    const publicKey = (await stack.request('GET', '/api/v1/admin/system', { key: stack.adminKey })).body.binary_cache.public_key as string;
    const helloOut = (await client.evalJson(`(import <${channelName}> {}).hello.outPath`)) as string;
    assert.equal(helloOut, builds.hello.outputs.out);
    // Publishing runs beside the build: wait until the cache has the path's narinfo.
    const narinfo = `/nix-cache/${path.basename(helloOut).slice(0, 32)}.narinfo`;
    await eventually('the hello output to be in the binary cache', async () => ((await stack.request('GET', narinfo)).status === 200 ? true : undefined), 120_000);

    const store = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-subscriber-store-'));
    try {
      await client.run('nix-store', ['--store', store, '-r', helloOut, '--option', 'substituters', cacheUrl, '--option', 'trusted-public-keys', publicKey, '--max-jobs', '0']);
      const copied = path.join(store, helloOut);
      assert.equal(fs.readFileSync(copied, 'utf8'), fs.readFileSync(helloOut, 'utf8'));
      assert.ok(fs.readFileSync(copied, 'utf8').trim().startsWith('hi-'));
    } finally {
      fs.rmSync(store, { recursive: true, force: true });
    }
  });

  it('nix-env -qa lists the channel\'s jobs by their derivation names', async () => {
    const { stdout } = await client.run('nix-env', ['-qaP', '-f', `<${channelName}>`]);
    const listed = stdout.trim().split('\n').map((line) => line.split(/\s+/)).sort((a, b) => a[0].localeCompare(b[0]));
    assert.deepEqual(listed, [['docs', 'docs-1.0'], ['hello', 'hello-1.0'], ['tested', 'tested'], ['tools.greet', 'greet-0.1']]);
  });

  it('a newer commit\'s evaluation moves the channel forward, and nix-channel --update follows it', async () => {
    const commit = await repo.commitChange('NEWS', 'second release\n');
    const second = (await trigger(stack, jobset.jobsetId)).id;
    assert.equal((await waitForEvaluation(stack, second)).status, 'completed');
    await waitForBuilds(stack, second);
    await eventually('the channel to move to the second evaluation', async () => ((await channel(tested.id)).current_evaluation_id === second ? true : undefined), 60_000);
    const rev = await stack.request('GET', `/channel/${channelName}/git-revision`);
    assert.equal(rev.text, commit);
    await client.run('nix-channel', ['--update']);
    assert.equal(await client.evalJson(`builtins.readFile <${channelName}/.git-revision>`), commit);

    // And it never goes back: the first evaluation is refused now.
    const back = await stack.request('POST', `/api/v1/channels/${tested.id}/promote/${firstEvaluation}`, { key: stack.adminKey });
    assert.equal(back.status, 409, back.text);
  });

  it('the badge of a built job reads passing, of the broken one failing, and latest redirects to the build', async () => {
    const project = (await stack.request('GET', `/api/v1/projects/${jobset.projectId}`)).body.name;
    const hello = await stack.request('GET', `/job/${project}/main/hello/badge`);
    assert.equal(hello.status, 200);
    assert.match(hello.text, /build: passing/);
    assert.match((await stack.request('GET', `/job/${project}/main/broken/badge`)).text, /build: failing/);
    const latest = await stack.request('GET', `/job/${project}/main/tools.greet/latest`);
    assert.equal(latest.status, 302);
    const build = await stack.request('GET', new URL(latest.headers.get('location')!).pathname);
    assert.equal(build.body.job_name, 'tools.greet');
    assert.equal(build.body.status, 'succeeded');
  });
});
