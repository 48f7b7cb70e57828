import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forgeEventOf } from '../../api/webhooks/forge-event';
import { jobsetsToTrigger, type MatchableJobset } from '../../api/webhooks/jobset-match';
import { signatureIsValid } from '../../api/webhooks/signature';
import { TokenBuckets } from '../../api/webhooks/token-bucket';
import { fixturePayload, githubExamples, githubSignature, hexHmac, tampered } from '../support/forge-payloads';

const json = (relative: string) => JSON.parse(fixturePayload(relative).toString('utf8'));

function jobset(name: string, fields: Partial<MatchableJobset> = {}): MatchableJobset {
  return { id: `id-${name}`, name, enabled: true, state: 'enabled', trigger_mode: 'source_change', branch: null, branch_pattern: null, tag_pattern: null, ...fields };
}

describe('reading forge events', () => {
  it('every GitHub push example: a branch push, a tag, or a deletion that triggers nothing', () => {
    const pushes = githubExamples().filter((e) => e.event === 'push');
    assert.ok(pushes.length >= 5, `only ${pushes.length} push examples`);
    for (const { payload, label } of pushes) {
      const event = forgeEventOf('github', 'push', payload);
      if (payload.deleted) {
        assert.equal(event.kind, 'ignored', label);
        assert.match((event as { reason: string }).reason, /deleted/, label);
      } else if (payload.ref.startsWith('refs/tags/')) {
        assert.deepEqual(event, { kind: 'tag', tag: payload.ref.slice('refs/tags/'.length), commit: payload.after }, label);
      } else {
        assert.deepEqual(event, { kind: 'push', branch: payload.ref.slice('refs/heads/'.length), commit: payload.after, defaultBranch: payload.repository.default_branch }, label);
      }
    }
  });

  it('every GitHub pull_request example: opened, synchronize, reopened and ready_for_review of a non-draft evaluate its head; every other action is ignored', () => {
    const prs = githubExamples().filter((e) => e.event === 'pull_request');
    assert.ok(prs.length >= 20, `only ${prs.length} pull_request examples`);
    let evaluated = 0;
    for (const { payload, label } of prs) {
      const event = forgeEventOf('github', 'pull_request', payload);
      const wanted = ['opened', 'synchronize', 'reopened', 'ready_for_review'].includes(payload.action) && !payload.pull_request.draft && payload.pull_request.state === 'open';
      if (!wanted) {
        assert.equal(event.kind, 'ignored', label);
        continue;
      }
      evaluated++;
      assert.deepEqual(
        event,
        {
          kind: 'pull_request',
          number: payload.pull_request.number,
          action: payload.action,
          headSha: payload.pull_request.head.sha,
          headRef: payload.pull_request.head.ref,
          baseRef: payload.pull_request.base.ref,
          defaultBranch: payload.repository.default_branch,
          gitRef: `refs/pull/${payload.pull_request.number}/head`,
        },
        label,
      );
    }
    assert.ok(evaluated >= 5, `only ${evaluated} examples evaluate`);
  });

  it('GitHub events other than push and pull_request (ping, issues) are ignored', () => {
    assert.deepEqual(forgeEventOf('github', 'ping', { zen: 'Keep it logically awesome.', hook_id: 1 }), { kind: 'ignored', reason: 'ping events trigger nothing' });
    assert.equal(forgeEventOf('github', 'issues', { action: 'opened' }).kind, 'ignored');
  });

  it('GitLab: a push evaluates checkout_sha, a tag push is a tag, a deleted branch (after all zeros) is ignored', () => {
    assert.deepEqual(forgeEventOf('gitlab', 'Push Hook', json('gitlab/push.json')), {
      kind: 'push',
      branch: 'master',
      commit: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
      defaultBranch: 'master',
    });
    assert.deepEqual(forgeEventOf('gitlab', 'Tag Push Hook', json('gitlab/tag-push.json')), { kind: 'tag', tag: 'v1.0.0', commit: '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7' });
    assert.deepEqual(forgeEventOf('gitlab', 'Push Hook', json('gitlab/branch-deleted.json')), { kind: 'ignored', reason: 'refs/heads/master was deleted' });
  });

  it('GitLab merge requests: open, and an update with new commits, evaluate the last commit; a title edit, a draft and a merge are ignored', () => {
    const expected = {
      kind: 'pull_request',
      number: 1,
      headSha: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
      headRef: 'ms-viewport',
      baseRef: 'master',
      defaultBranch: 'master',
      gitRef: 'refs/merge-requests/1/head',
    };
    assert.deepEqual(forgeEventOf('gitlab', 'Merge Request Hook', json('gitlab/merge-request-open.json')), { ...expected, action: 'open' });
    assert.deepEqual(forgeEventOf('gitlab', 'Merge Request Hook', json('gitlab/merge-request-update-commits.json')), { ...expected, action: 'update' });
    assert.deepEqual(forgeEventOf('gitlab', 'Merge Request Hook', json('gitlab/merge-request-update-title.json')), { kind: 'ignored', reason: 'merge request update without new commits' });
    assert.deepEqual(forgeEventOf('gitlab', 'Merge Request Hook', json('gitlab/merge-request-open-draft.json')), { kind: 'ignored', reason: 'draft merge request' });
    assert.equal(forgeEventOf('gitlab', 'Merge Request Hook', json('gitlab/merge-request-merged.json')).kind, 'ignored');
  });

  it('Gitea and Forgejo: pushes as GitHub, pull requests opened or synchronized evaluate refs/pull/<n>/head, a deleted branch is ignored', () => {
    assert.deepEqual(forgeEventOf('gitea', 'push', json('gitea/push.json')), { kind: 'push', branch: 'develop', commit: 'bffeb74224043ba2feb48d137756c8a9331c449a', defaultBranch: 'master' });
    assert.deepEqual(forgeEventOf('gitea', 'pull_request', json('gitea/pull-request-opened.json')), {
      kind: 'pull_request',
      number: 2,
      action: 'opened',
      headSha: 'bffeb74224043ba2feb48d137756c8a9331c449a',
      headRef: 'docs',
      baseRef: 'master',
      defaultBranch: 'master',
      gitRef: 'refs/pull/2/head',
    });
    assert.deepEqual(forgeEventOf('forgejo', 'push', json('forgejo/push.json')), { kind: 'push', branch: 'main', commit: 'bffeb74224043ba2feb48d137756c8a9331c449a', defaultBranch: 'main' });
    assert.equal(forgeEventOf('forgejo', 'pull_request', json('forgejo/pull-request-synchronized.json')).kind, 'pull_request');
    assert.equal(forgeEventOf('forgejo', 'push', json('forgejo/branch-deleted.json')).kind, 'ignored');
  });

  it('Gitea and Forgejo drafts (draft: true, or a WIP: / [WIP] title) are ignored; GitHub titles mean nothing', () => {
    const opened = json('gitea/pull-request-opened.json');
    const titled = (title: string) => ({ ...opened, pull_request: { ...opened.pull_request, title } });
    assert.deepEqual(forgeEventOf('gitea', 'pull_request', { ...opened, pull_request: { ...opened.pull_request, draft: true } }), { kind: 'ignored', reason: 'draft pull request' });
    assert.deepEqual(forgeEventOf('gitea', 'pull_request', titled('WIP: docs')), { kind: 'ignored', reason: 'draft pull request' });
    assert.deepEqual(forgeEventOf('forgejo', 'pull_request', titled('[WIP] docs')), { kind: 'ignored', reason: 'draft pull request' });
    assert.equal(forgeEventOf('github', 'pull_request', titled('WIP: docs')).kind, 'pull_request');
    assert.equal(forgeEventOf('gitea', 'pull_request_sync', { ...opened, action: 'synchronized' }).kind, 'pull_request');
  });

  it('a payload that is not an object, or lacks its fields, is ignored rather than thrown on', () => {
    for (const payload of [null, 42, 'text', [], {}, { ref: 'refs/heads/main' }, { ref: 'refs/heads/main', after: 'not-a-sha' }]) {
      assert.equal(forgeEventOf('github', 'push', payload).kind, 'ignored');
      assert.equal(forgeEventOf('gitlab', 'Merge Request Hook', payload).kind, 'ignored');
    }
  });
});

describe('which jobsets a forge event evaluates', () => {
  const commit = 'a'.repeat(40);
  const jobsets = [
    jobset('main', { branch: 'main' }),
    jobset('default'),
    jobset('releases', { branch: 'main', branch_pattern: 'release/*' }),
    jobset('tags', { tag_pattern: 'v*' }),
    jobset('disabled', { branch: 'main', enabled: false }),
    jobset('state-disabled', { branch: 'main', state: 'disabled' }),
    jobset('on-interval', { branch: 'main', trigger_mode: 'interval' }),
  ];
  const names = (event: Parameters<typeof jobsetsToTrigger>[1]) => jobsetsToTrigger(jobsets, event).map((t) => t.jobsetName);

  it('a push to a branch evaluates the enabled source_change jobsets on it: by branch, or the default branch for a jobset without one', () => {
    assert.deepEqual(names({ kind: 'push', branch: 'main', commit, defaultBranch: 'main' }), ['main', 'default']);
    assert.deepEqual(names({ kind: 'push', branch: 'main', commit, defaultBranch: 'trunk' }), ['main']);
    const [trigger] = jobsetsToTrigger(jobsets, { kind: 'push', branch: 'main', commit, defaultBranch: null });
    assert.deepEqual(trigger, { jobsetId: 'id-main', jobsetName: 'main', ref: 'main', commit, pullRequest: null });
  });

  it('a branch_pattern glob wins over branch, and the evaluation is of the pushed branch', () => {
    const triggers = jobsetsToTrigger(jobsets, { kind: 'push', branch: 'release/2.0', commit, defaultBranch: 'main' });
    assert.deepEqual(triggers.map((t) => [t.jobsetName, t.ref]), [['releases', 'release/2.0']]);
    assert.deepEqual(names({ kind: 'push', branch: 'release/2.0/hotfix', commit, defaultBranch: 'main' }), []);
  });

  it('a tag evaluates the jobsets whose tag_pattern matches it, at refs/tags/<tag>; a tag-only jobset ignores branches', () => {
    const triggers = jobsetsToTrigger(jobsets, { kind: 'tag', tag: 'v1.2', commit });
    assert.deepEqual(triggers.map((t) => [t.jobsetName, t.ref]), [['tags', 'refs/tags/v1.2']]);
    assert.deepEqual(names({ kind: 'tag', tag: 'nightly', commit }), []);
    assert.ok(!names({ kind: 'push', branch: 'v1.2', commit, defaultBranch: 'main' }).includes('tags'));
  });

  it('a pull request evaluates the jobsets on its base branch at its head commit, recording number, head and base', () => {
    const triggers = jobsetsToTrigger(jobsets, {
      kind: 'pull_request',
      number: 7,
      action: 'opened',
      headSha: commit,
      headRef: 'feature',
      baseRef: 'main',
      defaultBranch: 'main',
      gitRef: 'refs/pull/7/head',
    });
    assert.deepEqual(
      triggers.map((t) => [t.jobsetName, t.ref, t.commit, t.pullRequest]),
      [
        ['main', 'refs/pull/7/head', commit, { number: 7, head: 'feature', base: 'main' }],
        ['default', 'refs/pull/7/head', commit, { number: 7, head: 'feature', base: 'main' }],
      ],
    );
  });

  it('an ignored event evaluates nothing', () => {
    assert.deepEqual(names({ kind: 'ignored', reason: 'ping' }), []);
  });
});

describe('forge signatures', () => {
  const body = Buffer.from('Hello, World!');
  const secret = "It's a Secret to Everybody";

  it("GitHub: the documentation's test vector verifies; a changed byte, another secret or a missing header does not", async () => {
    const documented = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    assert.equal(githubSignature(secret, body), documented);
    assert.equal(await signatureIsValid('github', secret, body, documented), true);
    assert.equal(await signatureIsValid('github', secret, tampered(body), documented), false);
    assert.equal(await signatureIsValid('github', 'another secret', body, documented), false);
    assert.equal(await signatureIsValid('github', secret, body, undefined), false);
    assert.equal(await signatureIsValid('github', secret, body, documented.slice('sha256='.length)), false);
    assert.equal(await signatureIsValid('github', secret, Buffer.alloc(0), githubSignature(secret, '')), false);
  });

  it('Gitea and Forgejo: a bare hex HMAC-SHA256 of the body', async () => {
    for (const forge of ['gitea', 'forgejo'] as const) {
      assert.equal(await signatureIsValid(forge, secret, body, hexHmac(secret, body)), true);
      assert.equal(await signatureIsValid(forge, secret, body, `sha256=${hexHmac(secret, body)}`), false);
      assert.equal(await signatureIsValid(forge, secret, tampered(body), hexHmac(secret, body)), false);
      assert.equal(await signatureIsValid(forge, secret, body, 'zz'.repeat(32)), false);
      assert.equal(await signatureIsValid(forge, secret, body, ''), false);
    }
  });

  it('GitLab: the token is the secret itself, compared whatever its length', async () => {
    assert.equal(await signatureIsValid('gitlab', secret, body, secret), true);
    assert.equal(await signatureIsValid('gitlab', secret, body, `${secret} `), false);
    assert.equal(await signatureIsValid('gitlab', secret, body, 'x'), false);
    assert.equal(await signatureIsValid('gitlab', secret, body, undefined), false);
  });
});

describe('token buckets', () => {
  it('a key gets `capacity` tokens at once, then one per 1/refill seconds; other keys are unaffected', () => {
    let now = 0;
    const buckets = new TokenBuckets(3, 0.5, () => now);
    assert.deepEqual([1, 2, 3, 4].map(() => buckets.take('p')), [true, true, true, false]);
    assert.equal(buckets.secondsUntilToken('p'), 2);
    assert.equal(buckets.take('q'), true);
    now += 1000;
    assert.equal(buckets.take('p'), false);
    now += 1000;
    assert.equal(buckets.take('p'), true);
    now += 60_000;
    assert.deepEqual([1, 2, 3, 4].map(() => buckets.take('p')), [true, true, true, false]);
  });
});
