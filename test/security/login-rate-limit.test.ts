import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack, type ApiResponse } from '../support/stack';
import { LOGIN_LIMITS } from '../../api/login-rate-limit';

/**
 * Sign-ins are limited per username and per address with token buckets refilled over a minute. A slow
 * machine may refill a token while the test runs, so the number of attempts let through is checked
 * against the capacity plus what could have been refilled in the time the attempts took.
 */
async function attemptsUntilLimited(send: (i: number) => Promise<ApiResponse>, perMinute: number): Promise<{ allowed: number; limited: ApiResponse; seconds: number; statuses: number[] }> {
  const started = performance.now();
  const statuses: number[] = [];
  for (let i = 0; i < perMinute * 3; i++) {
    const res = await send(i);
    statuses.push(res.status);
    if (res.status === 429) return { allowed: i, limited: res, seconds: (performance.now() - started) / 1000, statuses };
  }
  throw new Error(`no 429 after ${perMinute * 3} attempts: ${statuses.join(' ')}`);
}

function assertAllowedWithinLimit(allowed: number, perMinute: number, seconds: number): void {
  assert.ok(allowed >= perMinute, `only ${allowed} attempts before the limit of ${perMinute}`);
  assert.ok(allowed <= perMinute + Math.ceil((seconds * perMinute) / 60), `${allowed} attempts in ${seconds.toFixed(1)} s passed a limit of ${perMinute}/min`);
}

async function rateLimitAudits(stack: TestStack, username: string) {
  return stack.db('audit_log').where({ action: 'login_rate_limited', actor_name: username }).orderBy('occurred_at');
}

describe('sign-in rate limits', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ worker: false });
    const res = await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'alice', email: 'alice@example.org', password: 'alice-password-1' } });
    assert.equal(res.status, 200, res.text);
  });
  after(async () => stack?.stop());

  it(`a username gets ${LOGIN_LIMITS.perUser} attempts a minute; then even the right password is a 429 with Retry-After, audited once`, async () => {
    const run = await attemptsUntilLimited(
      () => stack.request('POST', '/api/v1/auth/login', { body: { username: 'alice', password: 'alice-password-1' }, headers: { 'x-forwarded-for': '203.0.113.1' } }),
      LOGIN_LIMITS.perUser,
    );
    assertAllowedWithinLimit(run.allowed, LOGIN_LIMITS.perUser, run.seconds);
    assert.ok(run.statuses.slice(0, -1).every((s) => s === 200), 'the attempts before the limit signed in');
    assert.equal(run.limited.body.error_code, 'RATE_LIMITED');
    assert.match(run.limited.body.error, /for this username/);
    assert.ok(Number(run.limited.headers.get('retry-after')) >= 1);
    assert.equal(run.limited.headers.get('set-cookie'), null, 'no session for a limited attempt');

    const again = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'alice', password: 'alice-password-1' }, headers: { 'x-forwarded-for': '203.0.113.1' } });
    // Still refused (or, on a slow machine, let through by a refilled token): either way not audited again.
    assert.ok([429, 200].includes(again.status), `answered ${again.status}`);
    const audits = await rateLimitAudits(stack, 'alice');
    assert.equal(audits.length, 1, 'one audit row per run of refusals');
    assert.equal(audits[0].remote_addr, '203.0.113.1');
    assert.deepEqual(
      { provider: audits[0].details.provider, username: audits[0].details.username, limited_by: audits[0].details.limited_by, limit_per_minute: audits[0].details.limit_per_minute },
      { provider: 'password', username: 'alice', limited_by: 'user', limit_per_minute: LOGIN_LIMITS.perUser },
    );
    assert.ok(!JSON.stringify(audits).includes('alice-password-1'), 'the audit row has no password');
  });

  it(`an address gets ${LOGIN_LIMITS.perAddress} attempts a minute, whatever usernames it tries`, async () => {
    const run = await attemptsUntilLimited(
      (i) => stack.request('POST', '/api/v1/auth/login', { body: { username: `guess-${i}`, password: 'wrong-password' }, headers: { 'x-forwarded-for': '203.0.113.2' } }),
      LOGIN_LIMITS.perAddress,
    );
    assertAllowedWithinLimit(run.allowed, LOGIN_LIMITS.perAddress, run.seconds);
    assert.ok(run.statuses.slice(0, -1).every((s) => s === 401));
    assert.match(run.limited.body.error, /from this address/);
    const [audit] = await rateLimitAudits(stack, `guess-${run.allowed}`);
    assert.equal(audit.details.limited_by, 'address');
    assert.equal(audit.remote_addr, '203.0.113.2');

    const elsewhere = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'guess-other', password: 'wrong-password' }, headers: { 'x-forwarded-for': '203.0.113.3' } });
    assert.equal(elsewhere.status, 401, 'another address is not limited');
  });

  it('LDAP sign-ins count against the same per-username limit', async () => {
    const run = await attemptsUntilLimited(
      () => stack.request('POST', '/auth/ldap', { body: { username: 'carol', password: 'wrong-password' }, headers: { 'x-forwarded-for': '203.0.113.4' } }),
      LOGIN_LIMITS.perUser,
    );
    assertAllowedWithinLimit(run.allowed, LOGIN_LIMITS.perUser, run.seconds);
    assert.equal(run.limited.body.error_code, 'RATE_LIMITED');
    const [audit] = await rateLimitAudits(stack, 'carol');
    assert.equal(audit.details.provider, 'ldap');
  });
});
