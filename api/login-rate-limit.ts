import { ApiError } from './errors';
import { writeAuditEntry } from './queries/audit-log';
import type { AppDeps, RequestContext } from './route';

/**
 * Refused sign-ins (password and LDAP alike) are limited per username and per client address, so that
 * nobody can guess passwords at speed: LOGIN_LIMITS.perUser refusals a minute for one username, and
 * LOGIN_LIMITS.perAddress a minute from one address, each a bucket of that many refilled evenly over
 * the minute. Successful sign-ins cost nothing. Once a bucket is empty every attempt is 429
 * RATE_LIMITED with Retry-After, and the password is not checked, right or wrong; the first 429 of each
 * run of them is written to the audit log (`login_rate_limited`), not every one, so a flood does not
 * flood the log. The buckets live in memory, one set per API process (several API processes multiply
 * the limits by their number).
 */
export const LOGIN_LIMITS = { perUser: 10, perAddress: 30 } as const;

/** Token buckets keyed by string, refilled continuously; tokens are only spent by refusals. */
class RefusalBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(readonly perMinute: number) {}

  private current(key: string): { tokens: number; at: number } {
    const now = performance.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) / 60_000) * this.perMinute);
    bucket.at = now;
    if (bucket.tokens >= this.perMinute) this.buckets.delete(key);
    else this.buckets.set(key, bucket);
    return bucket;
  }

  /** Seconds until `key` may try again; 0 when it may now. */
  secondsUntilAllowed(key: string): number {
    const { tokens } = this.current(key);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil(((1 - tokens) * 60) / this.perMinute));
  }

  spend(key: string): void {
    const bucket = this.current(key);
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    this.buckets.set(key, bucket);
  }
}

interface Limiter {
  users: RefusalBuckets;
  addresses: RefusalBuckets;
  /** Keys answered 429 since they were last allowed: their limit is already audited. */
  limited: Set<string>;
}

const limiters = new WeakMap<AppDeps, Limiter>();

function limiterOf(deps: AppDeps): Limiter {
  let limiter = limiters.get(deps);
  if (!limiter) {
    limiter = { users: new RefusalBuckets(LOGIN_LIMITS.perUser), addresses: new RefusalBuckets(LOGIN_LIMITS.perAddress), limited: new Set() };
    limiters.set(deps, limiter);
  }
  return limiter;
}

export interface LoginAttempt {
  /** Counts this attempt as refused (wrong password, unknown or disabled user) against both limits. */
  refused(): void;
}

/**
 * Lets a sign-in attempt through, or answers 429 (audited) when its username or address has used up its
 * refusals. Call `refused()` on the result when the attempt is then refused.
 */
export async function limitLoginAttempt(rc: RequestContext, provider: 'password' | 'ldap', username: string): Promise<LoginAttempt> {
  const limiter = limiterOf(rc.deps);
  const checks = [
    { by: 'address' as const, key: `address:${rc.remoteAddr || 'unknown'}`, buckets: limiter.addresses },
    { by: 'user' as const, key: `user:${username.toLowerCase()}`, buckets: limiter.users },
  ];
  for (const { by, key, buckets } of checks) {
    const retryAfter = buckets.secondsUntilAllowed(key);
    if (retryAfter === 0) {
      limiter.limited.delete(key);
      continue;
    }
    if (!limiter.limited.has(key)) {
      limiter.limited.add(key);
      await writeAuditEntry(rc.db, {
        actorKind: 'anonymous',
        actorId: null,
        actorName: username,
        action: 'login_rate_limited',
        targetKind: 'user',
        targetId: null,
        details: { provider, username, limited_by: by, limit_per_minute: buckets.perMinute, retry_after_seconds: retryAfter },
        remoteAddr: rc.remoteAddr || null,
      });
    }
    rc.koa.set('retry-after', String(retryAfter));
    throw new ApiError('RATE_LIMITED', `too many refused sign-ins ${by === 'user' ? 'for this username' : 'from this address'}; retry in ${retryAfter} s`);
  }
  return { refused: () => checks.forEach(({ key, buckets }) => buckets.spend(key)) };
}
