import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assignSlots, backoffMs, batchBuilderOrder, batchShare, builderMatches, builtAlongElsewhere, formBatch, unsupportedRequests, type DispatchBuilder, type QueuedRequest } from '../../workflows/dispatch-policy';

const builder = (id: string, over: Partial<DispatchBuilder> = {}): DispatchBuilder => ({
  id,
  systems: ['x86_64-linux'],
  supportedFeatures: [],
  mandatoryFeatures: [],
  maxJobs: 1,
  speedFactor: 1,
  enabled: true,
  disabledUntil: null,
  consecutiveFailures: 0,
  ...over,
});
let seq = 0;
const request = (id: string, over: Partial<QueuedRequest> = {}): QueuedRequest => ({
  requestId: id,
  system: 'x86_64-linux',
  requiredFeatures: [],
  priority: 100,
  jobsetId: 'js',
  shares: 100,
  seq: seq++,
  ...over,
});

describe('dispatch policy', () => {
  it('a builder matches when required ⊆ supported and mandatory ⊆ required', () => {
    const b = builder('b', { supportedFeatures: ['kvm'], mandatoryFeatures: ['big-parallel'] });
    assert.equal(builderMatches(b, 'x86_64-linux', ['big-parallel']), true);
    assert.equal(builderMatches(b, 'x86_64-linux', ['kvm', 'big-parallel']), true);
    assert.equal(builderMatches(b, 'x86_64-linux', ['kvm']), false, 'mandatory feature missing from the step');
    assert.equal(builderMatches(b, 'x86_64-linux', ['big-parallel', 'nixos-test']), false, 'unsupported feature');
    assert.equal(builderMatches(b, 'aarch64-linux', ['big-parallel']), false, 'other system');
    assert.equal(builderMatches({ ...b, enabled: false }, 'x86_64-linux', ['big-parallel']), false, 'disabled');
  });

  it("a builder's max_jobs is never exceeded", () => {
    const queue = [request('a'), request('b'), request('c')];
    const out = assignSlots([builder('one', { maxJobs: 2 })], queue, {}, {}, 0);
    assert.deepEqual(out.map((a) => a.requestId), ['a', 'b']);
    assert.deepEqual(assignSlots([builder('one', { maxJobs: 2 })], queue, { one: 2 }, {}, 0), []);
  });

  it('higher priority goes first, then the jobset with the smaller share used, then the oldest', () => {
    const queue = [request('old'), request('young'), request('urgent', { priority: 200 })];
    assert.equal(assignSlots([builder('one')], queue, {}, {}, 0)[0].requestId, 'urgent');
    const fair = [request('busy', { jobsetId: 'busy' }), request('idle', { jobsetId: 'idle' })];
    assert.equal(assignSlots([builder('one')], fair, {}, { busy: 10, idle: 1 }, 0)[0].requestId, 'idle');
    const shares = [request('big', { jobsetId: 'big', shares: 1000 }), request('small', { jobsetId: 'small', shares: 10 })];
    assert.equal(assignSlots([builder('one')], shares, {}, { big: 50, small: 5 }, 0)[0].requestId, 'big', '50/1000 < 5/10');
    assert.deepEqual(assignSlots([builder('one', { maxJobs: 3 })], [request('x'), request('y')], {}, {}, 0).map((a) => a.requestId), ['x', 'y']);
  });

  it('the fastest free builder wins, and a backed-off builder is skipped until its time', () => {
    const slow = builder('slow', { speedFactor: 1 });
    const fast = builder('fast', { speedFactor: 4 });
    assert.equal(assignSlots([slow, fast], [request('a')], {}, {}, 0)[0].builderId, 'fast');
    const backedOff = { ...fast, disabledUntil: 1000 };
    assert.equal(assignSlots([slow, backedOff], [request('a')], {}, {}, 500)[0].builderId, 'slow');
    assert.equal(assignSlots([slow, backedOff], [request('a')], {}, {}, 1500)[0].builderId, 'fast');
  });

  it('a builder that failed a request is tried last for it', () => {
    const out = assignSlots([builder('a', { speedFactor: 9 }), builder('b')], [request('r', { avoidBuilders: ['a'] })], {}, {}, 0);
    assert.equal(out[0].builderId, 'b');
  });

  it('a system no enabled builder supports is unsupported; a busy one is not', () => {
    const builders = [builder('one', { maxJobs: 1 })];
    const queue = [request('arm', { system: 'aarch64-linux' }), request('x86')];
    assert.deepEqual(unsupportedRequests(builders, queue).map((r) => r.requestId), ['arm']);
    assert.deepEqual(unsupportedRequests(builders.map((b) => ({ ...b, disabledUntil: 9e15 })), [request('x86')]), [], 'backed off is not unsupported');
  });

  it('back-off grows with consecutive failures and is capped at an hour', () => {
    assert.equal(backoffMs(0), 0);
    assert.equal(backoffMs(1), 10_000);
    assert.equal(backoffMs(2), 20_000);
    assert.equal(backoffMs(30), 3600_000);
  });

  describe('batches (issue 6)', () => {
    const step = (drv: string, over: Partial<NonNullable<QueuedRequest['batch']>> = {}) => ({ drvPath: drv, logBuildId: 'b', timeoutSeconds: 3600, maxSilentSeconds: 600, ...over });

    it("a batch takes every queued batchable step the builder can build and holds its free slots, at most one per member", () => {
      const b = builder('local', { maxJobs: 4 });
      const queue = [request('a', { batch: step('a') }), request('b', { batch: step('b') }), request('granted', {}), request('arm', { system: 'aarch64-linux', batch: step('arm') })];
      assert.deepEqual(formBatch(b, queue, { local: 1 }, {}, 0), { builderId: 'local', slots: 2, requestIds: ['a', 'b'] });
      assert.deepEqual(formBatch(b, queue.slice(0, 1), {}, {}, 0), { builderId: 'local', slots: 1, requestIds: ['a'] });
    });

    it('with several builders free, members whose inputs are built are split in proportion to free slots × speed; members queued ahead of their inputs stay together', () => {
      const fast = builder('fast', { maxJobs: 2, speedFactor: 2 });
      const slow = builder('slow', { maxJobs: 2 });
      const ready = Array.from({ length: 9 }, (_, i) => request(`r${i}`, { batch: step(`r${i}`, { pendingInputs: [] }) }));
      const ahead = [request('top1', { batch: step('top1', { pendingInputs: ['in1', 'in2'] }) }), request('top2', { batch: step('top2', { pendingInputs: ['in2'] }) })];
      const queue = [...ready, ...ahead];
      // fast weighs 2 × 2 against slow's 2 × 1: two thirds of the nine ready ones (the oldest), and both run-ahead members.
      const share = batchShare(fast, [slow], queue, {}, {}, 0)!;
      assert.deepEqual([...share].sort(), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'top1', 'top2']);
      // The last builder, or one with no free builder after it, takes all it can.
      assert.equal(batchShare(slow, [], queue, {}, {}, 0), undefined);
      assert.equal(batchShare(fast, [slow], queue, { slow: 2 }, {}, 0), undefined, 'slow has no free slot');
      assert.equal(batchShare(fast, [{ ...slow, disabledUntil: 1000 }], queue, {}, {}, 0), undefined, 'slow is backed off');
      assert.equal(batchShare(fast, [builder('arm', { systems: ['aarch64-linux'], maxJobs: 4 })], queue, {}, {}, 0), undefined, 'arm builds none of them');
      // The inputs the run-ahead members wait for stay with them too (their shared inputs built by one Nix).
      const inputs = [request('in1', { batch: step('in1') }), request('in2', { batch: step('in2') })];
      const withInputs = batchShare(fast, [slow], [...inputs, ...queue], {}, {}, 0)!;
      assert.ok(withInputs.has('in1') && withInputs.has('in2') && withInputs.has('top1'));
      assert.ok(!batchShare(slow, [], [...inputs, ...queue], {}, {}, 0), 'the last builder is not restricted');
      // At least one member per free slot of its own.
      const two = ready.slice(0, 2);
      assert.deepEqual([...batchShare(builder('one', { maxJobs: 2 }), [builder('big', { maxJobs: 8 })], two, {}, {}, 0)!].sort(), ['r0', 'r1']);
    });

    it('a derivation that a running batch on another builder builds along waits for that batch; on the same builder it may go', () => {
      const queue = [request('in1', { batch: step('in1') }), request('other', { batch: step('other') }), request('plain')];
      const running = [{ builderId: 'a', inputs: ['in1', 'in9'] }];
      assert.deepEqual([...builtAlongElsewhere('b', queue, running)], ['in1']);
      assert.deepEqual([...builtAlongElsewhere('a', queue, running)], []);
      assert.deepEqual([...builtAlongElsewhere('b', queue, [])], []);
    });

    it('a member queued ahead of its unbuilt inputs gets a slot for each of them too, as far as the free slots go', () => {
      const b = builder('local', { maxJobs: 4 });
      const ahead = request('top', { batch: step('top', { pendingInputs: ['in1', 'in2'] }) });
      assert.deepEqual(formBatch(b, [ahead], {}, {}, 0), { builderId: 'local', slots: 3, requestIds: ['top'] });
      assert.deepEqual(formBatch(b, [ahead, request('leaf', { batch: step('leaf', { pendingInputs: [] }) })], {}, {}, 0), { builderId: 'local', slots: 4, requestIds: ['top', 'leaf'] });
      assert.deepEqual(formBatch(b, [ahead], { local: 3 }, {}, 0), { builderId: 'local', slots: 1, requestIds: ['top'] });
    });

    it('no batch without a free slot, on a builder backed off, or without a batchable step', () => {
      const b = builder('local', { maxJobs: 2 });
      const queue = [request('a', { batch: step('a') })];
      assert.equal(formBatch(b, queue, { local: 2 }, {}, 0), undefined);
      assert.equal(formBatch({ ...b, disabledUntil: 1000 }, queue, {}, {}, 0), undefined);
      assert.equal(formBatch(b, [request('plain')], {}, {}, 0), undefined);
    });

    it('a batch holds one priority (a bumped step goes alone, ahead) and one set of time limits, in queue order', () => {
      const b = builder('local', { maxJobs: 2 });
      const queue = [
        request('old', { batch: step('old') }),
        request('bumped', { priority: 200, batch: step('bumped') }),
        request('slow', { batch: step('slow', { timeoutSeconds: 60 }) }),
        request('new', { batch: step('new') }),
      ];
      assert.deepEqual(formBatch(b, queue, {}, {}, 0)?.requestIds, ['bumped']);
      assert.deepEqual(formBatch(b, queue.filter((r) => r.requestId !== 'bumped'), {}, {}, 0)?.requestIds, ['old', 'new']);
    });

    it('SSH builders take batches too, the fastest first, then the least loaded; before that patch only the local builder did', () => {
      const builders = [builder('slow', { speedFactor: 1 }), builder('busy-fast', { speedFactor: 4, maxJobs: 2 }), builder('idle-fast', { speedFactor: 4, maxJobs: 2 }), builder('local')];
      assert.deepEqual(batchBuilderOrder(builders, { 'busy-fast': 1 }, true, 'local').map((b) => b.id), ['idle-fast', 'busy-fast', 'local', 'slow']);
      assert.deepEqual(batchBuilderOrder(builders, {}, false, 'local').map((b) => b.id), ['local']);
    });

    it('a batch for an SSH builder takes only the steps whose system and features it supports', () => {
      const arm = builder('arm', { systems: ['aarch64-linux'], supportedFeatures: ['kvm'], maxJobs: 3 });
      const queue = [
        request('x86', { batch: step('x86') }),
        request('arm', { system: 'aarch64-linux', batch: step('arm') }),
        request('arm-kvm', { system: 'aarch64-linux', requiredFeatures: ['kvm'], batch: step('arm-kvm') }),
        request('arm-gpu', { system: 'aarch64-linux', requiredFeatures: ['gpu'], batch: step('arm-gpu') }),
      ];
      assert.deepEqual(formBatch(arm, queue, { arm: 1 }, {}, 0), { builderId: 'arm', slots: 2, requestIds: ['arm', 'arm-kvm'] });
    });

    it('a batch has at most the given number of members', () => {
      const queue = Array.from({ length: 5 }, (_, i) => request(`r${i}`, { batch: step(`r${i}`) }));
      assert.deepEqual(formBatch(builder('local', { maxJobs: 8 }), queue, {}, {}, 0, { maxMembers: 3 }), { builderId: 'local', slots: 3, requestIds: ['r0', 'r1', 'r2'] });
    });
  });
});
