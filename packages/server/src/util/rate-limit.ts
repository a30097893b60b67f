import type { Clock } from './clock.js';
import { systemClock } from './clock.js';

/**
 * Token bucket: `capacity` tokens, refilled at `perSecond`. Lazily refilled on each take, so an
 * idle bucket costs nothing. Used per connection (inbound frames, reauth) and, keyed, per IP/account.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.tokens = capacity;
    this.updatedAt = clock.now();
  }

  /** Takes one token; returns 0 when allowed, else the ms until one is available. */
  take(cost = 1): number {
    const now = this.clock.now();
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perSecond) / 1000);
      this.updatedAt = now;
    }
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return 0;
    }
    return Math.ceil(((cost - this.tokens) * 1000) / this.perSecond);
  }

  /** Whether the bucket is full (an idle key that can be forgotten). */
  isFull(): boolean {
    const elapsed = this.clock.now() - this.updatedAt;
    return this.tokens + (elapsed * this.perSecond) / 1000 >= this.capacity;
  }
}

/**
 * Many buckets by key (IP, account, connection). Full buckets are swept periodically so memory
 * stays bounded by the keys active in the last window.
 *
 * @example
 *   const perIp = new KeyedRateLimiter({ capacity: 30, perSecond: 0.5 });
 *   const wait = perIp.take(ip); if (wait > 0) throw new TetherError('RATE_LIMITED', undefined, { retryAfterMs: wait });
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private takesSinceSweep = 0;

  constructor(
    private readonly options: { capacity: number; perSecond: number; maxKeys?: number },
    private readonly clock: Clock = systemClock,
  ) {}

  /** Returns 0 when allowed, else the ms until the key may try again. */
  take(key: string, cost = 1): number {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (++this.takesSinceSweep > 1000 || this.buckets.size >= (this.options.maxKeys ?? 100_000)) this.sweep();
      bucket = new TokenBucket(this.options.capacity, this.options.perSecond, this.clock);
      this.buckets.set(key, bucket);
    }
    return bucket.take(cost);
  }

  /** Forgets a key (e.g. after a successful login, the account's failures no longer count). */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }

  private sweep(): void {
    this.takesSinceSweep = 0;
    for (const [key, bucket] of this.buckets) if (bucket.isFull()) this.buckets.delete(key);
  }
}

/** A limiter allowing `perMinute` attempts per minute with a burst of the same size. */
export function perMinute(perMinuteCount: number, clock: Clock = systemClock): KeyedRateLimiter {
  return new KeyedRateLimiter({ capacity: perMinuteCount, perSecond: perMinuteCount / 60 }, clock);
}
