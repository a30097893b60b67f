import { TetherError } from '@tether/protocol';
import type { Clock } from '../util/clock.js';
import type { FailureBackoff } from '../util/failure-backoff.js';
import type { Logger } from '../util/logger.js';
import { perMinuteBucket, type LimiterFactory, type RateLimiter } from '../util/rate-limit.js';

/** The first backoff step after the free failures; each further failure doubles it. */
export const LOGIN_BACKOFF_BASE_MS = 1000;
/** Longest an address with no failures for an account is held while that account is over its ceiling. */
export const FRESH_ADDRESS_DELAY_MAX_MS = 1000;
/** A (account, address) pair with no failure for this long starts over. */
const FORGET_AFTER_MIN_MS = 3_600_000;

export interface LoginThrottleOptions {
  limiters: LimiterFactory;
  /** `AUTH_RATE_PER_MINUTE`: login attempts per address, and failures per account, per minute. */
  perMinute: number;
  /** `LOGIN_FREE_FAILURES`: wrong passwords per (account, address) answered without a wait. */
  freeFailures: number;
  /** `LOGIN_BACKOFF_MAX_SECONDS`, in ms: the longest backoff step. */
  backoffMaxMs: number;
  clock: Clock;
  logger: Logger;
}

/**
 * Login throttling that slows a guesser without locking the owner out (docs/PROTOCOL.md "Login
 * throttling" gives the reasoning). Three budgets, each in the gateway's limiters (shared through
 * Redis in cluster mode):
 *
 *   attempt(account, address)
 *     ├─ (account, address) in backoff ─────────────────────────────▶ 429, Retry-After = rest of the backoff
 *     ├─ account over its failure ceiling, and this address
 *     │  already failed for it ────────────────────────────────────▶ 429, Retry-After = until the ceiling refills
 *     ├─ address over its attempts per minute (any accounts) ────────▶ 429 (stops spraying many accounts)
 *     ├─ account over its ceiling, address never failed for it ──────▶ held ≤ FRESH_ADDRESS_DELAY_MAX_MS, then checked
 *     └─ checked ── wrong: failure counted for the pair and the account
 *                  └─ right: the pair's failures are forgotten
 *
 * Only failures count against the account, so the owner's own logins never use its budget, and
 * other addresses' failures can only delay (never refuse) an address that has not failed itself.
 *
 * @example
 *   await throttle.admit(account, ip); // throws RATE_LIMITED
 *   try { result = await tokens.login(…); } catch (err) { if (isWrongCredentials(err)) await throttle.failed(account, ip); throw err; }
 *   await throttle.succeeded(account, ip);
 */
export class LoginThrottle {
  private readonly perAddress: RateLimiter;
  private readonly accountFailures: RateLimiter;
  private readonly pairs: FailureBackoff;

  constructor(private readonly options: LoginThrottleOptions) {
    const { limiters, perMinute } = options;
    this.perAddress = limiters.bucket('login-ip', perMinuteBucket(perMinute));
    this.accountFailures = limiters.bucket('login-account', perMinuteBucket(perMinute));
    this.pairs = limiters.backoff('login-pair', {
      freeFailures: options.freeFailures,
      baseMs: LOGIN_BACKOFF_BASE_MS,
      maxMs: options.backoffMaxMs,
      forgetAfterMs: Math.max(FORGET_AFTER_MIN_MS, 2 * options.backoffMaxMs),
    });
  }

  /** Resolves when the attempt may be checked (possibly after a short hold); throws RATE_LIMITED. */
  async admit(account: string, address: string): Promise<void> {
    const [pair, accountWait] = await Promise.all([
      this.pairs.state(pairKey(account, address)),
      this.accountFailures.peek(account),
    ]);
    if (pair.waitMs > 0) throw this.limited(pair.waitMs, address, 'backoff');
    if (accountWait > 0 && pair.failures > 0) throw this.limited(accountWait, address, 'account');
    const addressWait = await this.perAddress.take(address);
    if (addressWait > 0) throw this.limited(addressWait, address, 'address');
    // Maybe the owner: let them in, a little later (a guesser on many addresses pays this per guess).
    if (accountWait > 0) await this.hold(Math.min(accountWait, FRESH_ADDRESS_DELAY_MAX_MS));
  }

  /** A wrong email or password: counts against the pair (its backoff) and the account (its ceiling). */
  async failed(account: string, address: string): Promise<void> {
    await Promise.all([this.pairs.fail(pairKey(account, address)), this.accountFailures.take(account)]);
  }

  /** The right password: this address's failures for the account are forgotten. */
  async succeeded(account: string, address: string): Promise<void> {
    await this.pairs.clear(pairKey(account, address));
  }

  private limited(waitMs: number, ip: string, reason: 'backoff' | 'account' | 'address'): TetherError {
    // The address only: an email is personal data, and the limit's reason is enough to tell attacks apart.
    this.options.logger.debug({ event: 'login_throttled', ip, reason, waitMs }, 'login throttled');
    return new TetherError('RATE_LIMITED', undefined, { retryAfterMs: waitMs });
  }

  private hold(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.options.clock.setTimeout(resolve, ms);
    });
  }
}

/** An address has no spaces, so "address account" never collides for two different pairs. */
function pairKey(account: string, address: string): string {
  return `${address} ${account}`;
}
