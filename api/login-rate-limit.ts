import { ApiError } from './errors';
import { writeAuditEntry } from './queries/audit-log';
import type { AppDeps, RequestContext } from './route';
import { TokenBuckets } from './webhooks/token-bucket';

/**
 * Sign-in attempts (password and LDAP alike) are limited per username and per client address, so that
 * nobody can guess passwords at speed: LIMITS.perUser attempts a minute for one username, and
 * LIMITS.perAddress a minute from one address (each a token bucket: that many at once, refilled evenly
 * over the minute). Every attempt counts, successful or not. Over the limit the answer is 429
 * RATE_LIMITED with Retry-After, without checking the password; the first refused attempt of each run
 * of refusals is written to the audit log (`login_rate_limited`), not every one, so a flood does not
 * flood the log. The buckets live in memory, one set per API process (a deployment with several API
 * processes multiplies the limits by their number).
 */
export const LOGIN_LIMITS = { perUser: 10, perAddress: 60 } as const;

interface Limiter {
  users: TokenBuckets;
  addresses: TokenBuckets;
  /** Keys refused since their last allowed attempt: their refusal is already audited. */
  refusing: Set<string>;
}

const limiters = new WeakMap<AppDeps, Limiter>();

function limiterOf(deps: AppDeps): Limiter {
  let limiter = limiters.get(deps);
  if (!limiter) {
    limiter = {
      users: new TokenBuckets(LOGIN_LIMITS.perUser, LOGIN_LIMITS.perUser / 60),
      addresses: new TokenBuckets(LOGIN_LIMITS.perAddress, LOGIN_LIMITS.perAddress / 60),
      refusing: new Set(),
    };
    limiters.set(deps, limiter);
  }
  return limiter;
}

/** Takes one attempt for this username and address, or answers 429 (audited) when either is used up. */
export async function limitLoginAttempt(rc: RequestContext, provider: 'password' | 'ldap', username: string): Promise<void> {
  const limiter = limiterOf(rc.deps);
  const address = rc.remoteAddr || 'unknown';
  const checks = [
    { by: 'address' as const, key: `address:${address}`, buckets: limiter.addresses },
    { by: 'user' as const, key: `user:${username.toLowerCase()}`, buckets: limiter.users },
  ];
  for (const { by, key, buckets } of checks) {
    if (buckets.take(key)) {
      limiter.refusing.delete(key);
      continue;
    }
    const retryAfter = Math.max(1, buckets.secondsUntilToken(key));
    if (!limiter.refusing.has(key)) {
      limiter.refusing.add(key);
      await writeAuditEntry(rc.db, {
        actorKind: 'anonymous',
        actorId: null,
        actorName: username,
        action: 'login_rate_limited',
        targetKind: 'user',
        targetId: null,
        details: { provider, username, limited_by: by, limit_per_minute: by === 'user' ? LOGIN_LIMITS.perUser : LOGIN_LIMITS.perAddress, retry_after_seconds: retryAfter },
        remoteAddr: rc.remoteAddr || null,
      });
    }
    rc.koa.set('retry-after', String(retryAfter));
    throw new ApiError('RATE_LIMITED', `too many sign-in attempts ${by === 'user' ? 'for this username' : 'from this address'}; retry in ${retryAfter} s`);
  }
}
