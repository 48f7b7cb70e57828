import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { nonce } from '../support/pipeline';
import { deliver, githubExamples, githubSignature, tampered, WEBHOOK_FIXTURES, type GithubExample } from '../support/forge-payloads';
import type { CheckJobsetResult } from '../../workflows/shared';

/**
 * Every `push` and `pull_request` example of @octokit/webhooks-examples, delivered to a project of its own
 * (jobsets on master, on develop, and one following every tag): first forged three ways under the delivery
 * ID the real one will carry (one byte changed, signed with another secret, no signature), then signed, then
 * replayed. Only the signed delivery may start anything, and only what its event asks for.
 */

interface Expected {
  jobset: 'on-master' | 'tags';
  ref: string;
  commit: string;
  pr: { number: number; head: string; base: string } | null;
}

/** What an example should evaluate, read from the payload independently of the code under test. */
function expectedOf(example: GithubExample): Expected | null {
  const p = example.payload;
  if (example.event === 'push') {
    if (p.deleted) return null;
    if (p.ref === 'refs/heads/master') return { jobset: 'on-master', ref: 'master', commit: p.after, pr: null };
    if (p.ref.startsWith('refs/tags/')) return { jobset: 'tags', ref: p.ref, commit: p.after, pr: null };
    return null;
  }
  const pr = p.pull_request;
  if (!['opened', 'synchronize', 'reopened', 'ready_for_review'].includes(p.action) || pr.draft || pr.state !== 'open' || pr.base.ref !== 'master') return null;
  return { jobset: 'on-master', ref: `refs/pull/${pr.number}/head`, commit: pr.head.sha, pr: { number: pr.number, head: pr.head.ref, base: pr.base.ref } };
}

describe('GitHub deliveries: every push and pull_request example of @octokit/webhooks-examples', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  const secret = `gh-${nonce()}-${nonce()}`;
  const examples = githubExamples();
  const projects = new Map<string, { projectId: string; jobsets: Record<string, string> }>();

  before(async () => {
    stack = await startTestStack({ worker: true });
    repo = await makeGitRepo(`${WEBHOOK_FIXTURES}/jobset`);
    for (const example of examples) {
      const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: `gh-${nonce()}`, repository_url: repo.url } });
      assert.equal(project.status, 200, project.text);
      const jobsets: Record<string, string> = {};
      for (const [name, fields] of [['on-master', { branch: 'master' }], ['on-develop', { branch: 'develop' }], ['tags', { tag_pattern: '*' }]] as const) {
        const res = await stack.request('POST', `/api/v1/projects/${project.body.id}/jobsets`, { key: stack.adminKey, body: { name, nix_expression: 'release.nix', ...fields } });
        assert.equal(res.status, 200, res.text);
        jobsets[name] = res.body.id;
      }
      const hook = await stack.request('POST', `/api/v1/projects/${project.body.id}/webhooks`, { key: stack.adminKey, body: { forge_type: 'github', secret } });
      assert.equal(hook.status, 200, hook.text);
      projects.set(example.label, { projectId: project.body.id, jobsets });
    }
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  const headersFor = (example: GithubExample, deliveryId: string, signature?: string): Record<string, string> => ({
    'user-agent': 'GitHub-Hookshot/044aadd',
    'x-github-event': example.event,
    'x-github-delivery': deliveryId,
    'x-github-hook-id': '292430182',
    ...(signature ? { 'x-hub-signature-256': signature } : {}),
  });
  const deliveriesOf = async (projectId: string) => stack.db('webhook_deliveries').where({ project_id: projectId });
  const evaluationsOf = async (projectId: string) =>
    stack.db('evaluations as e').join('jobsets as j', 'j.id', 'e.jobset_id').where('j.project_id', projectId).select('e.*', 'j.name as jobset_name');

  for (const example of examples) {
    const expected = expectedOf(example);
    const title = expected ? `${example.label}: evaluates ${expected.jobset} at ${expected.ref}${expected.pr ? ` (PR #${expected.pr.number})` : ''}` : `${example.label}: starts nothing`;

    it(title, async () => {
      const { projectId, jobsets } = projects.get(example.label)!;
      const body = Buffer.from(JSON.stringify(example.payload));
      const deliveryId = crypto.randomUUID();
      const signature = githubSignature(secret, body);

      // Forged under the real delivery's ID: nothing is recorded, so the real one is not taken for a replay.
      const forged = [
        await deliver(stack.url, projectId, 'github', tampered(body), headersFor(example, deliveryId, signature)),
        await deliver(stack.url, projectId, 'github', body, headersFor(example, deliveryId, githubSignature('not the secret', body))),
        await deliver(stack.url, projectId, 'github', body, headersFor(example, deliveryId)),
      ];
      for (const res of forged) {
        assert.equal(res.status, 401);
        assert.equal(res.body.error_code, 'UNAUTHORIZED');
        assert.equal(res.body.accepted, false);
      }
      assert.deepEqual(await deliveriesOf(projectId), []);

      const res = await deliver(stack.url, projectId, 'github', body, headersFor(example, deliveryId, signature));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.accepted, true);
      assert.equal(res.body.delivery_id, deliveryId);
      const replay = await deliver(stack.url, projectId, 'github', body, headersFor(example, deliveryId, signature));
      assert.equal(replay.status, 200);
      assert.equal(replay.body.status, 'duplicate');
      assert.equal((await deliveriesOf(projectId)).length, 1);

      if (!expected) {
        assert.equal(res.body.status, 'ignored', JSON.stringify(res.body));
        assert.equal(typeof res.body.message, 'string');
        assert.deepEqual(await evaluationsOf(projectId), []);
        return;
      }
      assert.equal(res.body.status, 'triggered', JSON.stringify(res.body));
      assert.deepEqual(
        res.body.evaluations_started.map((s: Record<string, unknown>) => [s.jobset_id, s.ref, s.commit, s.pr_number]),
        [[jobsets[expected.jobset], expected.ref, expected.commit, expected.pr?.number ?? null]],
      );
      // The check runs to its end (the example's commit is not in the fixture repository, so the evaluation
      // records the failed fetch); then exactly one evaluation exists, of the right jobset, ref, commit and PR.
      const result = (await stack.temporal.client.workflow.getHandle(res.body.evaluations_started[0].workflow_id).result()) as CheckJobsetResult;
      const evaluations = await evaluationsOf(projectId);
      assert.equal(evaluations.length, 1);
      const [evaluation] = evaluations;
      assert.equal(evaluation.id, result.evaluationId);
      assert.equal(evaluation.jobset_name, expected.jobset);
      assert.equal(evaluation.commit_hash, expected.commit);
      assert.equal(evaluation.branch, expected.ref);
      assert.equal(evaluation.trigger_kind, 'source_change');
      assert.deepEqual([evaluation.pr_number, evaluation.pr_head, evaluation.pr_base], expected.pr ? [expected.pr.number, expected.pr.head, expected.pr.base] : [null, null, null]);
      assert.equal(evaluation.status, 'failed');
      assert.match(evaluation.error_message, /not in the repository/);

      const audit = await stack.db('audit_log').where({ action: 'webhook.trigger', target_id: projectId });
      assert.equal(audit.length, 1);
      assert.equal(audit[0].details.forge, 'github');
      assert.equal(audit[0].details.delivery_id, deliveryId);
      assert.equal(audit[0].actor_kind, 'anonymous');
    });
  }

  it('the evaluation list shows the pull request fields', async () => {
    const example = examples.find((e) => expectedOf(e)?.pr);
    assert.ok(example);
    const { projectId } = projects.get(example.label)!;
    const res = await stack.request('GET', `/api/v1/evaluations?project_id=${projectId}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.items.length, 1);
    assert.equal(res.body.items[0].pr_number, example.payload.pull_request.number);
    assert.equal(res.body.items[0].pr_base, 'master');
  });
});
