import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import { makeGitRepo, type GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, JOBSET_FIXTURE, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { RecordingServer, type RecordedRequest } from '../support/recording-server';
import { configureNotifications, PUBLIC_URL, waitForTasks } from './support';

/**
 * The events come from the real pipeline: a git repository with the fixture jobset is evaluated and
 * built with Nix by the worker, and its evaluation and builds notify a forge and a webhook receiver.
 */
describe('an evaluated and built jobset notifies its forge and its webhook', () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let forge: RecordingServer;
  let hooks: RecordingServer;
  let evaluationId: string;
  let builds: Record<string, Record<string, any>>;
  const project = `notify-${nonce()}`;

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_PUBLIC_URL: PUBLIC_URL } });
    forge = await new RecordingServer().start();
    hooks = await new RecordingServer().start();
    await configureNotifications(stack, {
      retry_backoff_seconds: 1,
      targets: [
        { type: 'github_status', name: 'forge', api_url: forge.url, token: 'ghp_pipeline', repositories: { [project]: 'acme/fixture' } },
        { type: 'webhook', name: 'evaluations', url: `${hooks.url}/hook`, events: ['evaluation_started', 'evaluation_finished'] },
      ],
    });
    repo = await makeGitRepo(JOBSET_FIXTURE);
    const jobset = await createJobset(stack, repo.url, { name: project, inputs: { greeting: `hi-${nonce()}` } });
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
    const evaluation = await waitForEvaluation(stack, evaluationId);
    assert.equal(evaluation.status, 'completed', evaluation.error_message);
    // The fixture's slow job sleeps for five minutes: cancelled at once, it ends as an `error` status.
    const slow = (await buildsOf(stack, evaluationId)).slow;
    const cancel = await stack.request('POST', `/api/v1/builds/${slow.id}/cancel`, { key: stack.adminKey, body: {} });
    assert.equal(cancel.status, 200, cancel.text);
    builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 600_000 });
    // A build's row reads finished before its workflow queues the finished notification (the result is
    // recorded first), so wait until every build's final state has reached the forge, then for every task.
    await eventually('a final status at the forge for every build', async () => {
      const finals = new Set(forge.delivered().filter((r) => r.json.state !== 'pending').map((r) => r.json.context));
      return Object.keys(builds).every((job) => finals.has(`ringmaster/main/${job}`)) || undefined;
    }, 120_000);
    await waitForTasks(stack, {}, ['completed', 'superseded'], 120_000);
  });
  after(async () => {
    await stack?.stop();
    await forge?.stop();
    await hooks?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  it('the webhook hears the evaluation start and then its end, at the evaluated commit', async () => {
    const received = hooks.delivered();
    assert.deepEqual(received.map((r) => r.json.event), ['evaluation_started', 'evaluation_finished']);
    assert.deepEqual(received.map((r) => r.json.state), ['pending', 'success']);
    assert.ok(received.every((r) => r.json.commit === repo.commit && r.json.evaluation_id === evaluationId));
    assert.equal(received[1].json.context, 'ringmaster/main');
    assert.equal(received[1].json.target_url, `${PUBLIC_URL}/api/v1/evaluations/${evaluationId}`);
  });

  it("every build's last status at the forge is its final state, and no pending came after a final one", async () => {
    const byContext = new Map<string, RecordedRequest[]>();
    for (const r of forge.delivered()) {
      assert.equal(r.path, `/repos/acme/fixture/statuses/${repo.commit}`);
      byContext.set(r.json.context, [...(byContext.get(r.json.context) ?? []), r]);
    }
    const expectedState = (status: string) => (status === 'succeeded' ? 'success' : status === 'cancelled' || status === 'aborted' ? 'error' : 'failure');
    for (const [job, build] of Object.entries(builds)) {
      const statuses = byContext.get(`ringmaster/main/${job}`) ?? [];
      assert.ok(statuses.length >= 1, `${job} got a status`);
      const states = statuses.map((s) => s.json.state);
      assert.equal(states[states.length - 1], expectedState(build.status), `${job} (${build.status}): ${states.join(' → ')}`);
      assert.ok(states.slice(0, -1).every((s) => s === 'pending'), `${job}: only pending before the final state (${states.join(' → ')})`);
      assert.equal(statuses[statuses.length - 1].json.target_url, `${PUBLIC_URL}/api/v1/builds/${build.id}`);
    }
    // `broken` fails; whether its own build or another build of the evaluation that needs the same derivation
    // attaches first decides whether it reads failed or cached_failure (a shared derivation's failure is decided once).
    assert.ok(['failed', 'cached_failure'].includes(builds.broken.status), builds.broken.status);
    assert.equal(byContext.get('ringmaster/main/broken')!.at(-1)!.json.state, 'failure');
    assert.equal(byContext.get('ringmaster/main/a')!.at(-1)!.json.state, 'success');
    assert.equal(builds.slow.status, 'cancelled');
    assert.equal(byContext.get('ringmaster/main/slow')!.at(-1)!.json.state, 'error');
    // The evaluation's own status too: pending, then success.
    assert.deepEqual(byContext.get('ringmaster/main')!.map((s) => s.json.state).at(-1), 'success');
  });
});
