import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { eventually, nonce } from '../support/pipeline';
import { deliver, fixturePayload, githubExamples, githubSignature, hexHmac, tampered, WEBHOOK_FIXTURES } from '../support/forge-payloads';
import { WEBHOOK_BURST } from '../../api/routes/webhooks';
import { receiveDelivery } from '../../api/webhooks/receive-delivery';
import { TokenBuckets } from '../../api/webhooks/token-bucket';
import { secretBoxFor } from '../../lib/secret-box';
import { freePort } from '../../lib/processes';
import { RingmasterWorkflows } from '../../lib/workflow-client';
import type { CheckJobsetResult } from '../../workflows/shared';

/**
 * GitLab, Gitea and Forgejo deliveries (payloads written from their documentation), and the answers that do not
 * depend on the forge: 404 when the project has no webhook for it, 429 for a flood, and an answer that does not
 * wait for the evaluation.
 */
describe('GitLab, Gitea and Forgejo deliveries', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  const secret = `forge-${nonce()}-${nonce()}`;

  before(async () => {
    stack = await startTestStack({ worker: true });
    repo = await makeGitRepo(`${WEBHOOK_FIXTURES}/jobset`);
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  /** A project on the fixture repository with the given jobsets and a webhook for `forge`. */
  async function projectWith(forge: string, jobsets: Array<[string, Record<string, unknown>]>): Promise<{ projectId: string; jobsets: Record<string, string> }> {
    const project = await stack.request('POST', '/api/v1/projects', { key: stack.adminKey, body: { name: `${forge}-${nonce()}`, repository_url: repo.url } });
    assert.equal(project.status, 200, project.text);
    const ids: Record<string, string> = {};
    for (const [name, fields] of jobsets) {
      const res = await stack.request('POST', `/api/v1/projects/${project.body.id}/jobsets`, { key: stack.adminKey, body: { name, nix_expression: 'release.nix', ...fields } });
      assert.equal(res.status, 200, res.text);
      ids[name] = res.body.id;
    }
    const hook = await stack.request('POST', `/api/v1/projects/${project.body.id}/webhooks`, { key: stack.adminKey, body: { forge_type: forge, secret } });
    assert.equal(hook.status, 200, hook.text);
    return { projectId: project.body.id, jobsets: ids };
  }

  /** Waits for the checks a delivery started, then answers the project's evaluations (jobset name, ref, commit, PR). */
  async function evaluationsAfter(projectId: string, started: Array<{ workflow_id: string }>): Promise<Array<Record<string, any>>> {
    for (const s of started) await stack.temporal.client.workflow.getHandle(s.workflow_id).result() as CheckJobsetResult;
    return stack.db('evaluations as e').join('jobsets as j', 'j.id', 'e.jobset_id').where('j.project_id', projectId).orderBy('j.name').select('e.*', 'j.name as jobset_name');
  }

  const gitlabHeaders = (event: string, token: string | undefined, uuid = crypto.randomUUID()) => ({
    'x-gitlab-event': event,
    'x-gitlab-event-uuid': uuid,
    'x-gitlab-instance': 'https://gitlab.example.com',
    'user-agent': 'GitLab/17.5.0',
    ...(token === undefined ? {} : { 'x-gitlab-token': token }),
  });

  it('GitLab: a push to master evaluates the jobsets on master at checkout_sha; a wrong or missing token is a 401 and starts nothing', async () => {
    const { projectId, jobsets } = await projectWith('gitlab', [['master', { branch: 'master' }], ['develop', { branch: 'develop' }]]);
    const body = fixturePayload('gitlab/push.json');
    for (const token of ['wrong token', undefined, `${secret}x`]) {
      const res = await deliver(stack.url, projectId, 'gitlab', body, gitlabHeaders('Push Hook', token));
      assert.equal(res.status, 401);
      assert.equal(res.body.error_code, 'UNAUTHORIZED');
    }
    const res = await deliver(stack.url, projectId, 'gitlab', body, gitlabHeaders('Push Hook', secret));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'triggered');
    const evaluations = await evaluationsAfter(projectId, res.body.evaluations_started);
    assert.deepEqual(evaluations.map((e) => [e.jobset_id, e.branch, e.commit_hash]), [[jobsets.master, 'master', 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7']]);
  });

  it('GitLab: a tag push evaluates the jobsets following v* tags; a deleted branch starts nothing', async () => {
    const { projectId, jobsets } = await projectWith('gitlab', [['master', { branch: 'master' }], ['releases', { tag_pattern: 'v*' }], ['nightlies', { tag_pattern: 'nightly-*' }]]);
    const deleted = await deliver(stack.url, projectId, 'gitlab', fixturePayload('gitlab/branch-deleted.json'), gitlabHeaders('Push Hook', secret));
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.status, 'ignored');
    assert.match(deleted.body.message, /deleted/);
    const res = await deliver(stack.url, projectId, 'gitlab', fixturePayload('gitlab/tag-push.json'), gitlabHeaders('Tag Push Hook', secret));
    assert.equal(res.body.status, 'triggered', JSON.stringify(res.body));
    const evaluations = await evaluationsAfter(projectId, res.body.evaluations_started);
    assert.deepEqual(evaluations.map((e) => [e.jobset_id, e.branch, e.commit_hash]), [[jobsets.releases, 'refs/tags/v1.0.0', '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7']]);
  });

  it('GitLab merge requests: open and an update with commits evaluate the last commit with the MR recorded; a title edit, a draft and a merge start nothing', async () => {
    const { projectId, jobsets } = await projectWith('gitlab', [['master', { branch: 'master' }]]);
    for (const file of ['merge-request-update-title', 'merge-request-open-draft', 'merge-request-merged']) {
      const res = await deliver(stack.url, projectId, 'gitlab', fixturePayload(`gitlab/${file}.json`), gitlabHeaders('Merge Request Hook', secret));
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'ignored', file);
    }
    const started = [];
    for (const file of ['merge-request-open', 'merge-request-update-commits']) {
      const res = await deliver(stack.url, projectId, 'gitlab', fixturePayload(`gitlab/${file}.json`), gitlabHeaders('Merge Request Hook', secret));
      assert.equal(res.body.status, 'triggered', `${file}: ${JSON.stringify(res.body)}`);
      started.push(...res.body.evaluations_started);
    }
    const evaluations = await evaluationsAfter(projectId, started);
    // The update carries the same head commit as the open, whose fetch failed: a failed evaluation does not
    // count as the inputs' evaluation, so each started its own.
    assert.equal(evaluations.length, 2);
    for (const e of evaluations) {
      assert.deepEqual([e.jobset_id, e.branch, e.commit_hash, e.pr_number, e.pr_head, e.pr_base], [jobsets.master, 'refs/merge-requests/1/head', 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7', 1, 'ms-viewport', 'master']);
    }
  });

  it('GitLab without an event UUID: a byte-identical redelivery is recognised by its body', async () => {
    const { projectId } = await projectWith('gitlab', [['master', { branch: 'develop' }]]);
    const headers = { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': secret };
    const first = await deliver(stack.url, projectId, 'gitlab', fixturePayload('gitlab/push.json'), headers);
    assert.equal(first.body.status, 'ignored');
    assert.match(first.body.delivery_id, /^sha256:[0-9a-f]{64}$/);
    const again = await deliver(stack.url, projectId, 'gitlab', fixturePayload('gitlab/push.json'), headers);
    assert.equal(again.body.status, 'duplicate');
  });

  it('a delivery ID is remembered for 30 days: one seen longer ago is taken as new', async () => {
    const { projectId } = await projectWith('gitlab', [['master', { branch: 'develop' }]]);
    const uuid = crypto.randomUUID();
    await stack.db('webhook_deliveries').insert({ project_id: projectId, forge_type: 'gitlab', delivery_id: uuid, outcome: 'ignored', received_at: stack.db.raw("now() - interval '31 days'") });
    const res = await deliver(stack.url, projectId, 'gitlab', fixturePayload('gitlab/push.json'), gitlabHeaders('Push Hook', secret, uuid));
    assert.equal(res.body.status, 'ignored');
    assert.equal((await stack.db('webhook_deliveries').where({ project_id: projectId, delivery_id: uuid })).length, 1);
    assert.equal((await deliver(stack.url, projectId, 'gitlab', fixturePayload('gitlab/push.json'), gitlabHeaders('Push Hook', secret, uuid))).body.status, 'duplicate');
  });

  it('Gitea: X-Gitea-Signature over the raw body; a push to develop and a pull request to master each evaluate their jobsets', async () => {
    const { projectId, jobsets } = await projectWith('gitea', [['master', { branch: 'master' }], ['develop', { branch_pattern: 'dev*' }]]);
    const giteaHeaders = (event: string, body: Buffer, signature = hexHmac(secret, body)) => ({
      'x-gitea-event': event,
      'x-gitea-event-type': event,
      'x-gitea-delivery': crypto.randomUUID(),
      'x-gitea-signature': signature,
      'x-gogs-event': event,
      'x-github-event': event,
    });
    const push = fixturePayload('gitea/push.json');
    assert.equal((await deliver(stack.url, projectId, 'gitea', tampered(push), giteaHeaders('push', push))).status, 401);
    assert.equal((await deliver(stack.url, projectId, 'gitea', push, giteaHeaders('push', push, hexHmac('other secret', push)))).status, 401);
    const pushed = await deliver(stack.url, projectId, 'gitea', push, giteaHeaders('push', push));
    assert.equal(pushed.body.status, 'triggered', JSON.stringify(pushed.body));
    const pr = fixturePayload('gitea/pull-request-opened.json');
    const opened = await deliver(stack.url, projectId, 'gitea', pr, giteaHeaders('pull_request', pr));
    assert.equal(opened.body.status, 'triggered', JSON.stringify(opened.body));
    const evaluations = await evaluationsAfter(projectId, [...pushed.body.evaluations_started, ...opened.body.evaluations_started]);
    assert.deepEqual(
      evaluations.map((e) => [e.jobset_id, e.branch, e.commit_hash, e.pr_number]),
      [
        [jobsets.develop, 'develop', 'bffeb74224043ba2feb48d137756c8a9331c449a', null],
        [jobsets.master, 'refs/pull/2/head', 'bffeb74224043ba2feb48d137756c8a9331c449a', 2],
      ],
    );
  });

  it('Forgejo: X-Forgejo-Signature and X-Forgejo-Delivery; a replay is a duplicate, a deleted branch starts nothing', async () => {
    const { projectId, jobsets } = await projectWith('forgejo', [['main', { branch: 'main' }]]);
    const forgejoHeaders = (event: string, body: Buffer, delivery = crypto.randomUUID()) => {
      const signature = hexHmac(secret, body);
      return { 'x-forgejo-event': event, 'x-forgejo-delivery': delivery, 'x-forgejo-signature': signature, 'x-gitea-event': event, 'x-gitea-delivery': delivery, 'x-gitea-signature': signature };
    };
    const push = fixturePayload('forgejo/push.json');
    const unsigned = await deliver(stack.url, projectId, 'forgejo', push, { 'x-forgejo-event': 'push', 'x-forgejo-delivery': crypto.randomUUID() });
    assert.equal(unsigned.status, 401);
    const headers = forgejoHeaders('push', push);
    const first = await deliver(stack.url, projectId, 'forgejo', push, headers);
    assert.equal(first.body.status, 'triggered', JSON.stringify(first.body));
    const replay = await deliver(stack.url, projectId, 'forgejo', push, headers);
    assert.equal(replay.body.status, 'duplicate');
    const deleted = fixturePayload('forgejo/branch-deleted.json');
    assert.equal((await deliver(stack.url, projectId, 'forgejo', deleted, forgejoHeaders('push', deleted))).body.status, 'ignored');
    const evaluations = await evaluationsAfter(projectId, first.body.evaluations_started);
    assert.deepEqual(evaluations.map((e) => [e.jobset_id, e.branch, e.commit_hash]), [[jobsets.main, 'main', 'bffeb74224043ba2feb48d137756c8a9331c449a']]);
  });

  it("GitHub's form-encoded deliveries (payload=<json>) are read like JSON ones, signed over the form body", async () => {
    const { projectId, jobsets } = await projectWith('github', [['main', { branch: 'main' }]]);
    const example = githubExamples().find((e) => e.event === 'push' && e.payload.ref === 'refs/heads/master')!;
    const payload = { ...example.payload, ref: 'refs/heads/main', after: repo.commit };
    const body = Buffer.from(new URLSearchParams({ payload: JSON.stringify(payload) }).toString());
    const res = await deliver(stack.url, projectId, 'github', body, {
      'content-type': 'application/x-www-form-urlencoded',
      'x-github-event': 'push',
      'x-github-delivery': crypto.randomUUID(),
      'x-hub-signature-256': githubSignature(secret, body),
    });
    assert.equal(res.body.status, 'triggered', JSON.stringify(res.body));
    const evaluations = await evaluationsAfter(projectId, res.body.evaluations_started);
    assert.deepEqual(evaluations.map((e) => [e.jobset_id, e.commit_hash]), [[jobsets.main, repo.commit]]);
  });

  it('a forge without a webhook on the project is a 404, an unknown project too, a malformed project id a 400; none is recorded', async () => {
    const { projectId } = await projectWith('gitea', [['master', { branch: 'master' }]]);
    const push = fixturePayload('gitlab/push.json');
    const res = await deliver(stack.url, projectId, 'gitlab', push, gitlabHeaders('Push Hook', secret));
    assert.equal(res.status, 404);
    assert.equal(res.body.error_code, 'NOT_FOUND');
    assert.equal((await deliver(stack.url, crypto.randomUUID(), 'gitea', push, { 'x-gitea-event': 'push' })).status, 404);
    const malformed = await deliver(stack.url, 'nope', 'gitea', push, { 'x-gitea-event': 'push' });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.details[0].field, 'params.project_id');
    assert.equal((await stack.db('webhook_deliveries').where({ project_id: projectId })).length, 0);
  });

  it('a signed body that is not JSON is a 400 naming the body, and is not recorded', async () => {
    const { projectId } = await projectWith('gitea', [['master', { branch: 'master' }]]);
    const body = Buffer.from('{"ref": "refs/heads/master", ');
    const res = await deliver(stack.url, projectId, 'gitea', body, { 'x-gitea-event': 'push', 'x-gitea-delivery': crypto.randomUUID(), 'x-gitea-signature': hexHmac(secret, body) });
    assert.equal(res.status, 400);
    assert.equal(res.body.details[0].field, 'body');
    assert.equal((await stack.db('webhook_deliveries').where({ project_id: projectId })).length, 0);
  });

  it(`a flood from one project is cut at ${WEBHOOK_BURST} deliveries with 429 and Retry-After; refused ones are not recorded, other projects are unaffected`, async () => {
    const flooded = await projectWith('github', [['develop', { branch: 'develop' }]]);
    const calm = await projectWith('github', [['develop', { branch: 'develop' }]]);
    const example = githubExamples().find((e) => e.event === 'push' && e.payload.ref === 'refs/heads/master')!;
    const body = Buffer.from(JSON.stringify(example.payload));
    const signed = () => ({ 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': githubSignature(secret, body) });
    const answers = await Promise.all(Array.from({ length: WEBHOOK_BURST * 2 }, () => deliver(stack.url, flooded.projectId, 'github', body, signed())));
    const accepted = answers.filter((a) => a.status === 200);
    const limited = answers.filter((a) => a.status === 429);
    assert.equal(accepted.length + limited.length, answers.length);
    assert.ok(accepted.length >= WEBHOOK_BURST, `${accepted.length} accepted`);
    assert.ok(limited.length > 0, 'none was refused');
    assert.equal(limited[0].body.error_code, 'RATE_LIMITED');
    assert.match(limited[0].headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    assert.equal((await stack.db('webhook_deliveries').where({ project_id: flooded.projectId })).length, accepted.length);
    assert.equal((await deliver(stack.url, calm.projectId, 'github', body, signed())).status, 200);
  });

  it('forged requests do not count against the bucket: after a forged flood the forge’s real delivery is accepted', async () => {
    const { projectId } = await projectWith('github', [['develop', { branch: 'develop' }]]);
    const example = githubExamples().find((e) => e.event === 'push' && e.payload.ref === 'refs/heads/master')!;
    const body = Buffer.from(JSON.stringify(example.payload));
    const forged = await Promise.all(
      Array.from({ length: WEBHOOK_BURST * 2 }, () =>
        deliver(stack.url, projectId, 'github', body, { 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': githubSignature('guessed', body) }),
      ),
    );
    assert.deepEqual([...new Set(forged.map((f) => f.status))], [401]);
    const real = await deliver(stack.url, projectId, 'github', body, { 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': githubSignature(secret, body) });
    assert.equal(real.status, 200);
  });

  it('when Temporal cannot start the checks the delivery is forgotten (the route answers 503 for this outcome), so the forge’s retry triggers them', async () => {
    const { projectId, jobsets } = await projectWith('gitea', [['develop', { branch: 'develop' }]]);
    const push = fixturePayload('gitea/push.json');
    const headers = { 'x-gitea-event': 'push', 'x-gitea-delivery': crypto.randomUUID(), 'x-gitea-signature': hexHmac(secret, push) };
    // The same route logic, with a Temporal client whose server is gone (nothing listens on a free port).
    const connection = Connection.lazy({ address: `127.0.0.1:${await freePort()}`, connectTimeout: '1s' });
    try {
      const outcome = await receiveDelivery(
        {
          db: stack.db,
          temporal: (() => {
            const client = new Client({ connection });
            return { connection, client, workflows: new RingmasterWorkflows(client, stack.taskQueue), namespace: 'default', taskQueue: stack.taskQueue };
          })(),
          secretBox: () => secretBoxFor(path.join(stack.dataDir, 'secret.key')),
          buckets: new TokenBuckets(10, 1),
        },
        { projectId, forge: 'gitea', headers, rawBody: push },
      );
      assert.deepEqual(outcome, { kind: 'temporal_unavailable' });
    } finally {
      await connection.close().catch(() => undefined);
    }
    assert.equal((await stack.db('webhook_deliveries').where({ project_id: projectId })).length, 0);
    const retried = await deliver(stack.url, projectId, 'gitea', push, headers);
    assert.equal(retried.body.status, 'triggered', JSON.stringify(retried.body));
    const evaluations = await evaluationsAfter(projectId, retried.body.evaluations_started);
    assert.deepEqual(evaluations.map((e) => e.jobset_id), [jobsets.develop]);
  });

  it('the answer does not wait for the evaluation: with no worker running a push is answered, and evaluated once a worker is back', async () => {
    const { projectId, jobsets } = await projectWith('github', [['main', { branch: 'main' }]]);
    const example = githubExamples().find((e) => e.event === 'push' && e.payload.ref === 'refs/heads/master')!;
    const body = Buffer.from(JSON.stringify({ ...example.payload, ref: 'refs/heads/main', after: repo.commit, repository: { ...example.payload.repository, default_branch: 'main' } }));
    await stack.stopWorker();
    try {
      const res = await deliver(stack.url, projectId, 'github', body, { 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': githubSignature(secret, body) });
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'triggered');
      assert.equal((await stack.db('evaluations').where({ jobset_id: jobsets.main })).length, 0);
    } finally {
      await stack.startWorker();
    }
    const evaluation = await eventually('the evaluation of the push', async () => stack.db('evaluations').where({ jobset_id: jobsets.main }).first());
    assert.equal(evaluation.commit_hash, repo.commit);
  });
});
