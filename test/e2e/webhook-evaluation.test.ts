import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { nonce, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { deliver, githubExamples, githubSignature, WEBHOOK_FIXTURES } from '../support/forge-payloads';
import type { CheckJobsetResult } from '../../workflows/shared';

/**
 * From a signed GitHub delivery to built outputs, on real parts: a git repository, Temporal, PostgreSQL and the
 * worker's own Nix. The payloads are octokit's examples pointed at the fixture repository's real commits.
 */
describe('a webhook delivery evaluates and builds the pushed commit', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let projectId: string;
  let jobsetId: string;
  const secret = `e2e-${nonce()}-${nonce()}`;
  const greeting = `webhook-${nonce()}`;
  const pushExample = githubExamples().find((e) => e.event === 'push' && e.payload.ref === 'refs/heads/master')!.payload;
  const prExample = githubExamples().find((e) => e.event === 'pull_request' && e.payload.action === 'synchronize')!.payload;

  before(async () => {
    stack = await startTestStack({ worker: true });
    repo = await makeGitRepo(`${WEBHOOK_FIXTURES}/jobset`);
    const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: `e2e-${nonce()}`, repository_url: repo.url } });
    projectId = project.body.id;
    const jobset = await stack.request('POST', `/api/v1/projects/${projectId}/jobsets`, { key: stack.adminKey, body: { name: 'main', nix_expression: 'release.nix', branch: 'main' } });
    assert.equal(jobset.status, 200, jobset.text);
    jobsetId = jobset.body.id;
    const input = await stack.request('POST', `/api/v1/projects/${projectId}/jobsets/${jobsetId}/inputs`, { key: stack.adminKey, body: { name: 'greeting', input_type: 'string', value: greeting } });
    assert.equal(input.status, 200, input.text);
    assert.equal((await stack.request('POST', `/api/v1/projects/${projectId}/webhooks`, { key: stack.adminKey, body: { forge_type: 'github', secret } })).status, 200);
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  async function send(event: string, payload: unknown): Promise<CheckJobsetResult> {
    const body = Buffer.from(JSON.stringify(payload));
    const res = await deliver(stack.url, projectId, 'github', body, { 'x-github-event': event, 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': githubSignature(secret, body) });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'triggered', JSON.stringify(res.body));
    assert.equal(res.body.evaluations_started.length, 1);
    return (await stack.temporal.client.workflow.getHandle(res.body.evaluations_started[0].workflow_id).result()) as CheckJobsetResult;
  }

  it('a push to main evaluates the main jobset at the pushed commit, and its builds succeed', async () => {
    const commit = await repo.commitChange('VERSION', '2\n');
    const result = await send('push', { ...pushExample, ref: 'refs/heads/main', before: repo.commit, after: commit, repository: { ...pushExample.repository, default_branch: 'main' } });
    assert.equal(result.created, true);
    const evaluation = await waitForEvaluation(stack, result.evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    assert.equal(evaluation.commit_hash, commit);
    assert.equal(evaluation.branch, 'main');
    const builds = await waitForBuilds(stack, result.evaluationId);
    assert.deepEqual(Object.keys(builds).sort(), ['hello', 'version']);
    for (const b of Object.values(builds)) assert.equal(b.status, 'succeeded', `${b.job_name}: ${b.error_message}`);
    assert.equal(fs.readFileSync(builds.version.build_output_path, 'utf8'), '2\n\n');
  });

  it('a pull request to main evaluates its head commit (from refs/pull/<n>/head) with the number, head and base recorded', async () => {
    // The forge publishes the request's head under refs/pull/<n>/head; the branch itself is not pushed here.
    const git = (...args: string[]) => {
      const r = spawnSync('git', args, { cwd: repo.dir, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    git('checkout', '--quiet', '-b', 'contributor');
    const head = await repo.commitChange('VERSION', '3\n');
    git('update-ref', 'refs/pull/41/head', head);
    git('checkout', '--quiet', 'main');
    git('branch', '--quiet', '-D', 'contributor');
    const pr = prExample.pull_request;
    const result = await send('pull_request', {
      ...prExample,
      number: 41,
      pull_request: { ...pr, number: 41, draft: false, state: 'open', head: { ...pr.head, ref: 'contributor', sha: head }, base: { ...pr.base, ref: 'main' } },
    });
    const evaluation = await waitForEvaluation(stack, result.evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    assert.deepEqual([evaluation.commit_hash, evaluation.branch, evaluation.pr_number, evaluation.pr_head, evaluation.pr_base], [head, 'refs/pull/41/head', 41, 'contributor', 'main']);
    const builds = await waitForBuilds(stack, result.evaluationId);
    assert.equal(builds.version.status, 'succeeded');
    assert.equal(fs.readFileSync(builds.version.build_output_path, 'utf8'), '3\n\n');
    // The pull request's evaluation is its own line: it did not supersede the evaluation of main.
    const mainEvaluation = await stack.db('evaluations').where({ jobset_id: jobsetId, branch: 'main' }).first();
    assert.equal(mainEvaluation.status, 'completed');
  });
});
