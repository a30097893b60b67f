import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../hub/testing.js';
import { createRedisLimiters, REDIS_LIMIT_TIMEOUT_MS } from './redis-rate-limit.js';

/**
 * A stand-in for the command connection: each `eval` waits for the test to answer it, so a slow,
 * failing or absent Redis can be played on a fake clock. (The scripts themselves run against real
 * Redis and Redis Cluster in test/rate-limits.test.ts.)
 */
class StubRedis {
  readonly pending: Array<{ resolve(v: unknown): void; reject(e: Error): void }> = [];
  eval(): Promise<unknown> {
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  del(): Promise<number> {
    return Promise.resolve(1);
  }
}

function setup() {
  const clock = new FakeClock();
  const stub = new StubRedis();
  const lines: Array<{ msg: string }> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { msg: string });
        done();
      },
    }),
  );
  let up = true;
  const limiters = createRedisLimiters({
    redis: stub as unknown as Redis,
    keyOf: (limiter, key) => `p:rl:${limiter}:${key}`,
    isUp: () => up,
    logger,
    clock,
  });
  const flush = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  return { clock, stub, lines, limiters, flush, setUp: (value: boolean) => (up = value) };
}

describe('createRedisLimiters', () => {
  it('answers with what Redis says while Redis answers', async () => {
    const { stub, limiters, flush } = setup();
    const bucket = limiters.bucket('b', { capacity: 1, perSecond: 1 });
    const answer = bucket.take('k');
    await flush();
    stub.pending.shift()!.resolve(1234);
    expect(await answer).toBe(1234);
  });

  it('a Redis slower than the timeout: the local bucket decides, and the outage is logged once', async () => {
    const { clock, stub, lines, limiters, flush } = setup();
    const bucket = limiters.bucket('b', { capacity: 2, perSecond: 0.001 });
    const first = bucket.take('k');
    await flush();
    clock.advance(REDIS_LIMIT_TIMEOUT_MS);
    expect(await first).toBe(0); // local: the first of two tokens
    expect(stub.pending).toHaveLength(1); // the late answer will be ignored
    // Within the next second Redis is not asked again: answers are local and immediate.
    expect(await bucket.take('k')).toBe(0);
    expect(await bucket.take('k')).toBeGreaterThan(0);
    expect(stub.pending).toHaveLength(1);
    expect(lines.filter((l) => l.msg.includes('redis unavailable'))).toHaveLength(1);
  });

  it('an answer that arrived while the event loop was blocked wins over the timer that fired with it', async () => {
    const { clock, stub, lines, limiters, flush } = setup();
    const bucket = limiters.bucket('b', { capacity: 1, perSecond: 0.001 });
    const answer = bucket.take('k');
    await flush();
    // Both due in the same turn: the timer fires before the answer's callbacks run.
    stub.pending.shift()!.resolve(1234);
    clock.advance(REDIS_LIMIT_TIMEOUT_MS);
    expect(await answer).toBe(1234);
    expect(lines.filter((l) => l.msg.includes('redis unavailable'))).toHaveLength(0);
  });

  it('a Redis the bus reports down is not asked at all; back up, limits are shared again and that is logged once', async () => {
    const { stub, lines, limiters, flush, setUp } = setup();
    const bucket = limiters.bucket('b', { capacity: 1, perSecond: 0.001 });
    setUp(false);
    expect(await bucket.take('k')).toBe(0);
    expect(await bucket.take('k')).toBeGreaterThan(0);
    expect(stub.pending).toHaveLength(0);
    expect(lines.filter((l) => l.msg.includes('redis unavailable'))).toHaveLength(1);

    setUp(true);
    const shared = bucket.take('k');
    await flush();
    stub.pending.shift()!.resolve(0);
    expect(await shared).toBe(0);
    expect(lines.filter((l) => l.msg.includes('available again'))).toHaveLength(1);
  });

  it('an error from Redis falls back to the local failure counter', async () => {
    const { stub, limiters, flush } = setup();
    const backoff = limiters.backoff('f', { freeFailures: 1, baseMs: 1000, maxMs: 5000, forgetAfterMs: 60_000 });
    const failed = backoff.fail('k');
    await flush();
    stub.pending.shift()!.reject(new Error('Connection is closed.'));
    expect(await failed).toEqual({ failures: 1, waitMs: 1000 });
    expect(await backoff.state('k')).toEqual({ failures: 1, waitMs: 1000 });
  });
});
