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

  it(`a username gets ${LOGIN_LIMITS.perUser} refused attempts a minute; then even the right password is a 429 with Retry-After, audited once`, async () => {
    const login = (password: string) => stack.request('POST', '/api/v1/auth/login', { body: { username: 'alice', password }, headers: { 'x-forwarded-for': '203.0.113.1' } });
    const run = await attemptsUntilLimited(() => login('wrong-password'), LOGIN_LIMITS.perUser);
    const limitedAt = performance.now();
    assertAllowedWithinLimit(run.allowed, LOGIN_LIMITS.perUser, run.seconds);
    assert.ok(run.statuses.slice(0, -1).every((s) => s === 401), 'the attempts before the limit were refused');
    assert.equal(run.limited.body.error_code, 'RATE_LIMITED');
    assert.match(run.limited.body.error, /for this username/);
    const retryAfter = Number(run.limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 1);

    const right = await login('alice-password-1');
    if (right.status !== 429) {
      // Only a token refilled in the meantime lets it through.
      assert.ok(performance.now() - limitedAt >= (retryAfter - 1) * 1000, `answered ${right.status} before Retry-After`);
    } else {
      assert.equal(right.headers.get('set-cookie'), null, 'no session for a limited attempt');
    }
    const audits = await rateLimitAudits(stack, 'alice');
    assert.equal(audits.length, 1, 'one audit row per run of 429s');
    assert.equal(audits[0].remote_addr, '203.0.113.1');
    assert.deepEqual(
      { provider: audits[0].details.provider, username: audits[0].details.username, limited_by: audits[0].details.limited_by, limit_per_minute: audits[0].details.limit_per_minute },
      { provider: 'password', username: 'alice', limited_by: 'user', limit_per_minute: LOGIN_LIMITS.perUser },
    );
    assert.ok(!JSON.stringify(audits).includes('alice-password-1'), 'the audit row has no password');
  });

  it('successful sign-ins cost nothing', async () => {
    await stack.request('POST', '/api/v1/users', { key: stack.adminKey, body: { username: 'dave', email: 'dave@example.org', password: 'dave-password-1' } });
    for (let i = 0; i < LOGIN_LIMITS.perUser * 2; i++) {
      const res = await stack.request('POST', '/api/v1/auth/login', { body: { username: 'dave', password: 'dave-password-1' }, headers: { 'x-forwarded-for': '203.0.113.5' } });
      assert.equal(res.status, 200, `sign-in ${i + 1}: ${res.text}`);
    }
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

  it('LDAP sign-ins are held by the same per-username limit', async () => {
    const run = await attemptsUntilLimited(
      () => stack.request('POST', '/api/v1/auth/login', { body: { username: 'carol', password: 'wrong-password' }, headers: { 'x-forwarded-for': '203.0.113.4' } }),
      LOGIN_LIMITS.perUser,
    );
    const limitedAt = performance.now();
    const retryAfter = Number(run.limited.headers.get('retry-after'));
    const ldap = await stack.request('POST', '/auth/ldap', { body: { username: 'Carol', password: 'wrong-password' }, headers: { 'x-forwarded-for': '203.0.113.6' } });
    if (ldap.status !== 429) assert.ok(performance.now() - limitedAt >= (retryAfter - 1) * 1000, `answered ${ldap.status} before Retry-After`);
    else assert.equal(ldap.body.error_code, 'RATE_LIMITED');
  });
});
