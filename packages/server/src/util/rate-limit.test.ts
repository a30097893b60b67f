import { describe, expect, it } from 'vitest';
import { FakeClock } from '../hub/testing.js';
import { KeyedRateLimiter, LocalRateLimiter, TokenBucket, localLimiters, perMinuteBucket } from './rate-limit.js';

describe('TokenBucket', () => {
  it('allows the burst, then answers the ms until the next token, and refills with time', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(3, 1, clock);
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 0]);
    expect(bucket.take()).toBe(1000);
    clock.advance(400);
    expect(bucket.take()).toBe(600);
    clock.advance(600);
    expect(bucket.take()).toBe(0);
  });

  it('peek answers like take without taking', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(2, 1, clock);
    expect(bucket.peek()).toBe(0);
    expect(bucket.peek()).toBe(0);
    expect(bucket.take(2)).toBe(0);
    expect(bucket.peek()).toBe(1000);
    expect(bucket.peek(2)).toBe(2000);
    expect(bucket.take()).toBe(1000);
  });
});

describe('KeyedRateLimiter', () => {
  it('keeps one bucket per key', () => {
    const limiter = new KeyedRateLimiter({ capacity: 1, perSecond: 1 }, new FakeClock());
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(1000);
    expect(limiter.take('b')).toBe(0);
  });

  it('peek on an unknown key sees a full bucket and creates nothing', () => {
    const limiter = new KeyedRateLimiter({ capacity: 2, perSecond: 1 }, new FakeClock());
    expect(limiter.peek('x')).toBe(0);
    expect(limiter.peek('x', 3)).toBe(1000);
    expect(limiter.size).toBe(0);
  });

  it('forgets full buckets when it sweeps, so idle keys cost no memory', () => {
    const clock = new FakeClock();
    const limiter = new KeyedRateLimiter({ capacity: 1, perSecond: 1, maxKeys: 10 }, clock);
    for (let i = 0; i < 10; i++) limiter.take(`k${i}`);
    clock.advance(1000);
    limiter.take('new');
    expect(limiter.size).toBe(1);
  });
});

describe('LocalRateLimiter (the RateLimiter port on one node)', () => {
  it('answers take and peek asynchronously with the same numbers', async () => {
    const limiter = new LocalRateLimiter(perMinuteBucket(2), new FakeClock());
    expect(await limiter.take('ip')).toBe(0);
    expect(await limiter.peek('ip')).toBe(0);
    expect(await limiter.take('ip')).toBe(0);
    expect(await limiter.peek('ip')).toBe(30_000);
    expect(await limiter.take('ip')).toBe(30_000);
  });

  it('localLimiters gives each name its own buckets', async () => {
    const limiters = localLimiters(new FakeClock());
    const a = limiters.bucket('a', { capacity: 1, perSecond: 1 });
    const b = limiters.bucket('b', { capacity: 1, perSecond: 1 });
    expect(await a.take('same-key')).toBe(0);
    expect(await b.take('same-key')).toBe(0);
    expect(await a.take('same-key')).toBe(1000);
  });
});
