import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { whyBuildWaits, type CandidateBuilder, type WaitFacts } from '../../api/dashboard/why-build-waits';

const builder = (fields: Partial<CandidateBuilder> = {}): CandidateBuilder => ({
  name: 'b1',
  systems: ['x86_64-linux'],
  supported_features: [],
  mandatory_features: [],
  max_jobs: 2,
  enabled: true,
  backing_off_until: null,
  busy: 0,
  ...fields,
});

const facts = (fields: Partial<WaitFacts> = {}): WaitFacts => ({
  build: { status: 'pending', system: 'x86_64-linux', required_features: [], priority: 100 },
  unfinishedDependencies: [],
  builders: [builder()],
  queuedAhead: 0,
  ...fields,
});

const kinds = (f: WaitFacts, now?: Date) => whyBuildWaits(f, now).map((r) => r.kind);

describe('why a queued build waits', () => {
  it('a running or finished build does not wait', () => {
    assert.deepEqual(whyBuildWaits(facts({ build: { ...facts().build, status: 'running' } })), []);
  });

  it('a build whose dependencies have not finished waits for them, and names them', () => {
    const reasons = whyBuildWaits(facts({ unfinishedDependencies: [{ id: 'd1', job_name: 'lib', status: 'running' }] }));
    assert.equal(reasons[0].kind, 'dependencies');
    assert.match(reasons[0].text, /1 dependency/);
  });

  it('no builder for its system, or for its required features, is said before anything about slots', () => {
    assert.deepEqual(kinds(facts({ build: { ...facts().build, system: 'aarch64-darwin' } })), ['no_builder']);
    assert.deepEqual(kinds(facts({ build: { ...facts().build, required_features: ['kvm'] } })), ['no_builder']);
    assert.deepEqual(kinds(facts({ builders: [builder({ enabled: false })] })), ['no_builder']);
  });

  it('a builder whose mandatory features the build lacks does not count', () => {
    assert.deepEqual(kinds(facts({ builders: [builder({ mandatory_features: ['big-parallel'] })] })), ['no_builder']);
    assert.deepEqual(kinds(facts({ build: { ...facts().build, required_features: ['big-parallel'] }, builders: [builder({ mandatory_features: ['big-parallel'] })] })), ['dispatching']);
  });

  it('builders that back off after failures are named with the time they come back', () => {
    const now = new Date('2026-11-30T00:00:00Z');
    const reasons = whyBuildWaits(facts({ builders: [builder({ backing_off_until: new Date('2026-11-30T00:05:00Z') })] }), now);
    assert.deepEqual(reasons.map((r) => r.kind), ['backing_off']);
    assert.match(reasons[0].text, /2026-11-30T00:05:00/);
    assert.deepEqual(kinds(facts({ builders: [builder({ backing_off_until: new Date('2026-11-29T23:00:00Z') })] }), now), ['dispatching']);
  });

  it('full slots and builds of higher priority are both told', () => {
    assert.deepEqual(kinds(facts({ builders: [builder({ busy: 2 })], queuedAhead: 3 })), ['slots_full', 'priority']);
    const [priority] = whyBuildWaits(facts({ queuedAhead: 1 }));
    assert.match(priority.text, /1 queued build goes first/);
  });

  it("the worker's own Nix builds only its own system, with its slots", () => {
    const local = { system: 'x86_64-linux', slots: 1, busy: 1 };
    assert.deepEqual(kinds(facts({ builders: [], local })), ['slots_full']);
    assert.deepEqual(kinds(facts({ builders: [], local: { ...local, system: 'aarch64-linux' } })), ['no_builder']);
    assert.deepEqual(kinds(facts({ builders: [], local: { ...local, busy: 0 } })), ['dispatching']);
  });
});
