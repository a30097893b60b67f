import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { LocalFailureBackoff, type BackoffPolicy, type FailureBackoff } from './failure-backoff.js';

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

  /** Takes `cost` tokens; returns 0 when allowed, else the ms until they are available (nothing is taken then). */
  take(cost = 1): number {
    const wait = this.peek(cost);
    if (wait === 0) this.tokens -= cost;
    return wait;
  }

  /** The ms until `cost` tokens are available (0: now), taking none. */
  peek(cost = 1): number {
    this.refill();
    return this.tokens >= cost ? 0 : Math.ceil(((cost - this.tokens) * 1000) / this.perSecond);
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perSecond) / 1000);
      this.updatedAt = now;
    }
  }

  /** Whether the bucket is full (an idle key that can be forgotten). */
  isFull(): boolean {
    const elapsed = this.clock.now() - this.updatedAt;
    return this.tokens + (elapsed * this.perSecond) / 1000 >= this.capacity;
  }
}

/** A bucket's shape: `capacity` tokens (the burst), refilled at `perSecond`. */
export interface BucketOptions {
  capacity: number;
  perSecond: number;
}

/**
 * The port every keyed limit (per IP, account, refresh family) goes through. Asynchronous because in
 * cluster mode the buckets live in Redis, so all nodes spend one budget (`broker/redis-rate-limit.ts`);
 * on one node it is `LocalRateLimiter`.
 *
 * @example
 *   const wait = await perIp.take(ip);
 *   if (wait > 0) throw new TetherError('RATE_LIMITED', undefined, { retryAfterMs: wait });
 */
export interface RateLimiter {
  /** Takes `cost` tokens from `key`'s bucket: 0 when allowed, else the ms until they are there (none taken). */
  take(key: string, cost?: number): Promise<number>;
  /** The ms until `key` could take `cost` tokens (0: now), taking none. */
  peek(key: string, cost?: number): Promise<number>;
}

/**
 * Builds the limiters of one gateway. `name` keeps limiters apart (in Redis, a key namespace), so
 * two limiters with the same key (an IP for logins and for connects) never share a bucket.
 */
export interface LimiterFactory {
  bucket(name: string, options: BucketOptions): RateLimiter;
  backoff(name: string, policy: BackoffPolicy): FailureBackoff;
}

/** `RateLimiter` on this node's memory (single node, and cluster mode's fallback while Redis is away). */
export class LocalRateLimiter implements RateLimiter {
  private readonly buckets: KeyedRateLimiter;

  constructor(options: BucketOptions, clock: Clock = systemClock) {
    this.buckets = new KeyedRateLimiter(options, clock);
  }

  take(key: string, cost = 1): Promise<number> {
    return Promise.resolve(this.buckets.take(key, cost));
  }

  peek(key: string, cost = 1): Promise<number> {
    return Promise.resolve(this.buckets.peek(key, cost));
  }
}

/** Limiters in this process's memory. */
export function localLimiters(clock: Clock = systemClock): LimiterFactory {
  return {
    bucket: (_name, options) => new LocalRateLimiter(options, clock),
    backoff: (_name, policy) => new LocalFailureBackoff(policy, clock),
  };
}

/** `perMinute` attempts per minute, with a burst of the same size. */
export function perMinuteBucket(perMinute: number): BucketOptions {
  return { capacity: perMinute, perSecond: perMinute / 60 };
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

  /** The ms until `key` could take `cost` tokens (0: now), taking none; an unknown key has a full bucket. */
  peek(key: string, cost = 1): number {
    const bucket = this.buckets.get(key);
    if (bucket !== undefined) return bucket.peek(cost);
    const missing = cost - this.options.capacity;
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.options.perSecond);
  }

  get size(): number {
    return this.buckets.size;
  }

  private sweep(): void {
    this.takesSinceSweep = 0;
    for (const [key, bucket] of this.buckets) if (bucket.isFull()) this.buckets.delete(key);
  }
}
