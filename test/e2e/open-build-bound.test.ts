import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../support/stack';
import type { GitFixtureRepo } from '../support/git-fixture';
import { buildsOf, createJobset, eventually, nonce, trigger, waitForBuilds, waitForEvaluation } from '../support/pipeline';
import { makeReleaseRepo } from '../support/worker-process';
import { buildWorkflowId } from '../../workflows/shared';

/**
 * Issue 6: the start activity keeps at most RINGMASTER_MAX_OPEN_BUILDS build workflows open (started and
 * not finished); the other builds wait `pending`, without a workflow, and a bumped one starts first.
 */
const LIMIT = 4;
const JOBS = 24;
// Each job has a priority of its own, so the evaluation's batch cannot take the others along as extras
// (extras share the lead's priority) and hold them back without a workflow: they start as workflows,
// under the bound.
const RELEASE_NIX = `{ nonce ? "x", system ? builtins.currentSystem }:
builtins.listToAttrs (builtins.genList (i: { name = "j\${toString i}"; value = derivation {
  name = "j\${toString i}"; inherit nonce system; PATH = "/bin:/usr/bin"; builder = "/bin/sh";
  args = [ "-c" "sleep 1; echo \${toString i} $nonce > $out" ]; } // { meta = { schedulingPriority = 100 + i; }; }; }) ${JOBS})
`;

describe(`an evaluation of ${JOBS} builds with at most ${LIMIT} build workflows open`, () => {
  let stack: TestStack;
  let repo: GitFixtureRepo;
  let evaluationId: string;

  /**
   * The most build workflows open at one moment: each build is open from its workflow's start (Temporal's
   * start time) until its row is final (`completed_at`), as the bound counts them (a build whose row is
   * final no longer counts, though its workflow may close a moment later). Measured after the fact, from
   * every build's interval: sampling while they run asks build after build, and a build that finished
   * early in one sample's pass and another that started late in it would both be seen open.
   */
  const mostOpenAtOnce = async (): Promise<{ most: number; intervals: number }> => {
    const events: Array<{ at: number; delta: number }> = [];
    for (const build of Object.values(await buildsOf(stack, evaluationId))) {
      const description = await stack.temporal.client.workflow.getHandle(buildWorkflowId(build.id)).describe();
      const row = await stack.db('builds').where({ id: build.id }).first('completed_at');
      const from = description.startTime.getTime();
      const to = new Date(row.completed_at).getTime();
      // Found built before its workflow started (held back for a batch that built it): never open.
      if (to <= from) continue;
      events.push({ at: from, delta: 1 }, { at: to, delta: -1 });
    }
    // At the same instant an end goes first: the build that ended made the room.
    events.sort((a, b) => a.at - b.at || a.delta - b.delta);
    let open = 0;
    let most = 0;
    for (const e of events) most = Math.max(most, (open += e.delta));
    return { most, intervals: events.length / 2 };
  };

  before(async () => {
    stack = await startTestStack({ worker: true, env: { RINGMASTER_MAX_OPEN_BUILDS: String(LIMIT), RINGMASTER_LOCAL_MAX_JOBS: '2' } });
    repo = await makeReleaseRepo(RELEASE_NIX);
    const jobset = await createJobset(stack, repo.url, { inputs: { nonce: nonce() } });
    evaluationId = (await trigger(stack, jobset.jobsetId)).id;
  });
  after(async () => {
    await stack?.stop();
    if (repo) fs.rmSync(repo.dir, { recursive: true, force: true });
  });

  let bumped: { id: string; startedBefore: string[] };

  it('the evaluation completes with every build recorded; builds beyond the bound wait pending, without a workflow', async () => {
    assert.equal((await waitForEvaluation(stack, evaluationId)).status, 'completed');
    const waiting = await stack.db('build_workflow_starts as s').join('builds as b', 'b.id', 's.build_id').where('s.evaluation_id', evaluationId).select('b.id', 'b.status', 'b.priority');
    assert.ok(waiting.length >= JOBS - LIMIT - 6, `${waiting.length} of ${JOBS} builds still to start once the evaluation completed`);
    // Pending, but for the build whose derivation the evaluation's own batch realises (its first waiting build,
    // held back without a workflow): that one shows `running` from the moment the batch's Nix builds it, and
    // `succeeded` once it has (its workflow starts later and finds it built). Its priority is the highest.
    const byPriority = [...waiting].sort((a, b) => b.priority - a.priority);
    const notPending = waiting.filter((b) => b.status !== 'pending');
    assert.ok(notPending.length <= 1, `${notPending.map((b) => `${b.id}: ${b.status}`).join(', ')} not pending`);
    for (const b of notPending) {
      assert.ok(b.status === 'running' || b.status === 'succeeded', `${b.id} is ${b.status}`);
      assert.equal(b.id, byPriority[0].id, 'only the first waiting build is realised by the evaluation\'s batch');
    }
    const pendingOne = waiting.find((b) => b.status === 'pending')!;
    const shown = await stack.request('GET', `/api/v1/builds/${pendingOne.id}`);
    assert.equal(shown.body.status, 'pending');

    // The build that would start last (builds start highest priority first), bumped: it starts next.
    const last = [...waiting].sort((a, b) => a.priority - b.priority || (a.id < b.id ? 1 : -1))[0].id;
    const bump = await stack.request('POST', `/api/v1/builds/${last}/bump`, { key: stack.adminKey, body: {} });
    assert.equal(bump.status, 200, bump.text);
    const stillWaiting = await stack.db('build_workflow_starts').where({ evaluation_id: evaluationId }).whereNot({ build_id: last }).pluck('build_id');
    bumped = { id: last, startedBefore: stillWaiting };
    assert.ok(stillWaiting.length > LIMIT + 2, `${stillWaiting.length} builds waited beside the bumped one`);
  });

  it(`every build succeeds, and never were more than ${LIMIT} build workflows open at once`, async () => {
    const builds = await waitForBuilds(stack, evaluationId, { timeoutMs: 300_000 });
    assert.deepEqual(Object.values(builds).filter((b) => b.status !== 'succeeded').map((b) => `${b.job_name}: ${b.status}`), []);
    const { most, intervals } = await mostOpenAtOnce();
    console.error(`[open-build-bound] ${intervals} builds were open for a while; at most ${most} at once`);
    assert.ok(intervals >= JOBS - 6, `${intervals} of ${JOBS} builds had a workflow open before their row was final`);
    assert.ok(most <= LIMIT, `${most} open at once, over the bound of ${LIMIT}`);
    assert.equal(most, LIMIT, 'the bound was reached');
    await eventually('every start row to be gone', async () => ((await stack.db('build_workflow_starts').where({ evaluation_id: evaluationId }).first()) ? undefined : true), 60_000);
  });

  it('the bumped build started before the builds waiting beside it, but for at most one round already under way', async () => {
    const startOf = async (id: string) => (await stack.temporal.client.workflow.getHandle(buildWorkflowId(id)).describe()).startTime.getTime();
    const bumpedStart = await startOf(bumped.id);
    const earlier: string[] = [];
    for (const id of bumped.startedBefore) if ((await startOf(id)) < bumpedStart) earlier.push(id);
    console.error(`[open-build-bound] ${earlier.length} of the ${bumped.startedBefore.length} builds waiting beside the bumped one started before it`);
    // A round takes at most the room it counted, which is at most the bound.
    assert.ok(earlier.length <= LIMIT, `${earlier.length} of ${bumped.startedBefore.length} started before the bumped build`);
  });
});
