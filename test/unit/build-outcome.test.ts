import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideBuildOutcome, type StepPlan } from '../../workflows/build-outcome';
import type { DerivationResult, DerivationStatus } from '../../workflows/shared';

const result = (drvPath: string, status: DerivationStatus): DerivationResult => ({ drvPath, status, outputs: status === 'succeeded' ? { out: '/nix/store/x' } : {}, errorMessage: status === 'succeeded' ? null : 'boom', builderId: null, logPath: null });
const steps: StepPlan[] = [
  { drvPath: 'a.drv', isTop: false, inputs: [], jobName: 'a' },
  { drvPath: 'c.drv', isTop: true, inputs: ['a.drv'] },
];

describe('build outcome', () => {
  it('is undecided while steps run', () => {
    assert.equal(decideBuildOutcome(steps, new Map()), undefined);
    assert.equal(decideBuildOutcome(steps, new Map([['a.drv', result('a.drv', 'succeeded')]])), undefined);
  });
  it("the top step's result decides the build", () => {
    const done = decideBuildOutcome(steps, new Map([['a.drv', result('a.drv', 'succeeded')], ['c.drv', result('c.drv', 'succeeded')]]));
    assert.equal(done?.status, 'succeeded');
    assert.equal(decideBuildOutcome(steps, new Map([['c.drv', result('c.drv', 'timeout')]]))?.status, 'timeout');
    assert.equal(decideBuildOutcome(steps, new Map([['c.drv', result('c.drv', 'cached_failure')]]))?.status, 'cached_failure');
  });
  it('a top derivation that waited on its own inputs and answers dependency_failed makes the build dependency_failed, with its message', () => {
    const failed = { ...result('c.drv', 'dependency_failed'), errorMessage: 'dependency a (a.drv) failed: boom' };
    const r = decideBuildOutcome(steps, new Map([['c.drv', failed]]));
    assert.equal(r?.status, 'dependency_failed');
    assert.equal(r?.errorMessage, 'dependency a (a.drv) failed: boom');
  });
  it('a build whose dependency fails ends as dependency_failed, naming the dependency', () => {
    const r = decideBuildOutcome(steps, new Map([['a.drv', result('a.drv', 'failed')]]));
    assert.equal(r?.status, 'dependency_failed');
    assert.match(r!.errorMessage!, /dependency a/);
  });
  it('an unsupported dependency keeps unsupported_system', () => {
    assert.equal(decideBuildOutcome(steps, new Map([['a.drv', result('a.drv', 'unsupported_system')]]))?.status, 'unsupported_system');
  });
});
