import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { channelVerdict } from '../../api/channel-verdict';
import type { EvaluationOutcome } from '../../api/queries/channels';

const outcome = (fields: Partial<EvaluationOutcome> = {}): EvaluationOutcome => ({
  status: 'completed',
  builds: 3,
  unfinished: 0,
  succeeded: 3,
  evaluationErrors: 0,
  ...fields,
});

describe('whether an evaluation is good for a channel', () => {
  it('a completed evaluation whose every build succeeded is good', () => {
    assert.deepEqual(channelVerdict(outcome(), null), { good: true });
  });

  it('an evaluation that has not completed is not good, whatever its builds', () => {
    for (const status of ['pending', 'running', 'failed', 'cancelled', 'timed_out']) {
      const v = channelVerdict(outcome({ status }), null);
      assert.equal(v.good, false, status);
      assert.match(!v.good ? v.reason : '', new RegExp(status));
    }
  });

  it('an evaluation with an unfinished build is not good yet, even when its aggregate succeeded', () => {
    assert.equal(channelVerdict(outcome({ unfinished: 1, succeeded: 2 }), null).good, false);
    assert.equal(channelVerdict(outcome({ unfinished: 1, succeeded: 2, jobStatus: 'succeeded' }), 'tested').good, false);
  });

  it('without an aggregate job, one failed build or one job that failed to evaluate holds the channel back', () => {
    const failed = channelVerdict(outcome({ succeeded: 2 }), null);
    assert.equal(failed.good, false);
    assert.match(!failed.good ? failed.reason : '', /1 of its 3 builds did not succeed/);
    assert.equal(channelVerdict(outcome({ evaluationErrors: 1 }), null).good, false);
  });

  it('an evaluation with no builds is not good', () => {
    assert.equal(channelVerdict(outcome({ builds: 0, succeeded: 0 }), null).good, false);
  });

  it('with an aggregate job, its success alone decides: other jobs may fail (as Hydra channels do)', () => {
    assert.deepEqual(channelVerdict(outcome({ succeeded: 1, evaluationErrors: 2, jobStatus: 'succeeded' }), 'tested'), { good: true });
    const failed = channelVerdict(outcome({ jobStatus: 'dependency_failed' }), 'tested');
    assert.equal(failed.good, false);
    assert.match(!failed.good ? failed.reason : '', /tested ended dependency_failed/);
  });

  it('an evaluation without the aggregate job is not good', () => {
    const v = channelVerdict(outcome({ jobStatus: null }), 'tested');
    assert.equal(v.good, false);
    assert.match(!v.good ? v.reason : '', /no job tested/);
  });
});
