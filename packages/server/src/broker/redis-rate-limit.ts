import type { Cluster, Redis } from 'ioredis';
import type { Clock } from '../util/clock.js';
import {
  backoffState,
  LocalFailureBackoff,
  type BackoffPolicy,
  type BackoffState,
  type FailureBackoff,
} from '../util/failure-backoff.js';
import type { Logger } from '../util/logger.js';
import { LocalRateLimiter, type BucketOptions, type LimiterFactory, type RateLimiter } from '../util/rate-limit.js';

/** Longest a limit waits for Redis before deciding on this node's own buckets. */
export const REDIS_LIMIT_TIMEOUT_MS = 100;
/** After a failed or slow call, how long limits stay local before Redis is tried again. */
const RETRY_REDIS_AFTER_MS = 1000;

// Redis's own clock (TIME) is the one clock of a shared bucket: nodes whose clocks disagree still
// refill it alike. Scripts touch one key, so they run on a Redis Cluster as on a single Redis.
const NOW_MS = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// The token bucket of `TokenBucket` (util/rate-limit.ts). KEYS: the bucket. ARGV: capacity,
// tokens per second, cost, "1" to only look. Returns 0 (taken, or takeable) or the ms to wait.
const TAKE_SCRIPT = `${NOW_MS}
local capacity = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2]) / 1000
local cost = tonumber(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(held[1]) or capacity
local updated = tonumber(held[2]) or now
if now > updated then
  tokens = math.min(capacity, tokens + (now - updated) * perMs)
  updated = now
end
if tokens < cost then return math.ceil((cost - tokens) / perMs) end
if ARGV[4] == '1' then return 0 end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(updated))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / perMs) + 1000)
return 0
`;

// KEYS: the failure counter. ARGV: ms to keep it after this failure. Returns {failures, at}.
const FAIL_SCRIPT = `${NOW_MS}
local failures = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {failures, now}
`;

// KEYS: the failure counter. Returns {failures, last failure, now}.
const STATE_SCRIPT = `${NOW_MS}
local held = redis.call('HMGET', KEYS[1], 'n', 'at')
return {tonumber(held[1]) or 0, tonumber(held[2]) or 0, now}
`;

export interface RedisLimitersOptions {
  /** The node's command connection (no offline queue: while Redis is down a call fails at once). */
  redis: Redis | Cluster;
  /** The Redis key of a limiter's key (`ClusterKeys.rateLimit`: under `REDIS_PREFIX`). */
  keyOf: (limiter: string, key: string) => string;
  /** Whether the cluster bus has Redis now; when not, limits go local without trying. */
  isUp: () => boolean;
  logger: Logger;
  clock: Clock;
  /** How long a call waits for Redis before it is decided locally (default `REDIS_LIMIT_TIMEOUT_MS`). */
  timeoutMs?: number;
}

/**
 * Cluster mode's limiters: each bucket and failure counter is one Redis key, changed by one script,
 * so every node spends the same budget (three nodes allow what one allows). While Redis is
 * unreachable, or slower than `timeoutMs`, a call is decided on this node's own buckets instead —
 * limits stay in force, per node — and Redis is tried again a second later:
 *
 *   take ──▶ Redis up? ── yes ─▶ script ── answer within timeoutMs ─────────────▶ shared answer
 *               │                   └── error / timeout ─▶ outage (logged once) ─▶ local answer
 *               └── no, or an outage began < 1 s ago ──────────────────────────▶ local answer
 *
 * The first shared answer after an outage logs its end.
 *
 * @example
 *   const keyOf = (limiter: string, key: string) => bus.keys.rateLimit(limiter, key);
 *   const limiters = createRedisLimiters({ redis: bus.cmd, keyOf, isUp: bus.isUp, logger, clock });
 *   const perIp = limiters.bucket('login-ip', { capacity: 30, perSecond: 0.5 });
 */
export function createRedisLimiters(options: RedisLimitersOptions): LimiterFactory {
  const { redis, keyOf, clock } = options;
  const guard = new OutageGuard(options);

  return {
    bucket(name: string, bucket: BucketOptions): RateLimiter {
      const local = new LocalRateLimiter(bucket, clock);
      const run = async (key: string, cost: number, peek: boolean): Promise<number> => {
        const args = [bucket.capacity, bucket.perSecond, cost, peek ? '1' : '0'];
        return Number(await redis.eval(TAKE_SCRIPT, 1, keyOf(name, key), ...args));
      };
      return {
        take: (key, cost = 1) =>
          guard.run(
            () => run(key, cost, false),
            () => local.take(key, cost),
          ),
        peek: (key, cost = 1) =>
          guard.run(
            () => run(key, cost, true),
            () => local.peek(key, cost),
          ),
      };
    },

    backoff(name: string, policy: BackoffPolicy): FailureBackoff {
      const local = new LocalFailureBackoff(policy, clock);
      return {
        state: (key) =>
          guard.run(
            async (): Promise<BackoffState> => {
              const [failures, at, now] = (await redis.eval(STATE_SCRIPT, 1, keyOf(name, key))) as number[];
              return backoffState(Number(failures), Number(at), Number(now), policy);
            },
            () => local.state(key),
          ),
        fail: (key) =>
          guard.run(
            async (): Promise<BackoffState> => {
              const [failures, at] = (await redis.eval(
                FAIL_SCRIPT,
                1,
                keyOf(name, key),
                policy.forgetAfterMs,
              )) as number[];
              return backoffState(Number(failures), Number(at), Number(at), policy);
            },
            () => local.fail(key),
          ),
        clear: (key) =>
          guard.run(
            async () => {
              await redis.del(keyOf(name, key));
            },
            () => local.clear(key),
          ),
      };
    },
  };
}

/**
 * Runs each call on Redis when it can and on the local fallback when it cannot, and logs the
 * start and the end of each outage once (not once per call).
 */
class OutageGuard {
  private outage = false;
  private retryAt = 0;
  private readonly timeoutMs: number;

  constructor(private readonly options: RedisLimitersOptions) {
    this.timeoutMs = options.timeoutMs ?? REDIS_LIMIT_TIMEOUT_MS;
  }

  async run<T>(remote: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    const now = this.options.clock.now();
    if (!this.options.isUp()) {
      this.begin('redis unavailable');
      return local();
    }
    if (this.outage && now < this.retryAt) return local();
    try {
      const answer = await within(remote(), this.timeoutMs, this.options.clock);
      this.end();
      return answer;
    } catch (err) {
      this.begin((err as Error).message);
      this.retryAt = now + RETRY_REDIS_AFTER_MS;
      return local();
    }
  }

  private begin(reason: string): void {
    if (this.outage) return;
    this.outage = true;
    this.options.logger.warn(
      { reason },
      'rate limits: redis unavailable, each node applies its own limits until it returns',
    );
  }

  private end(): void {
    if (!this.outage) return;
    this.outage = false;
    this.options.logger.info('rate limits: redis available again, limits shared');
  }
}

/**
 * `promise`, or a rejection once `ms` have passed without an answer (the late answer is then ignored).
 * The rejection waits for the I/O of the turn the timer fired in: after the event loop was blocked
 * (a long GC, a burst of work), the timer and Redis's answer are due together, timers run first, and
 * an answer that came in time would otherwise count as an outage.
 */
function within<T>(promise: Promise<T>, ms: number, clock: Clock): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => setImmediate(() => reject(new Error(`no answer within ${ms} ms`))), ms);
    timer.unref?.();
    promise.then(
      (value) => {
        clock.clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clock.clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
