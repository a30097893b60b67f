import { describe, expect, it } from 'vitest';
import { backoffDelay, type BackoffOptions } from './backoff.js';

const opts: BackoffOptions = { minMs: 100, maxMs: 10_000, maxAttempt: 10 };

describe('backoffDelay', () => {
  it('stays between min and the exponential ceiling for every attempt and random value', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(opts.maxMs, opts.minMs + opts.minMs * 2 ** Math.min(attempt, opts.maxAttempt));
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const d = backoffDelay(attempt, opts, () => r);
        expect(d).toBeGreaterThanOrEqual(opts.minMs);
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('is the floor with random 0 and the ceiling with random close to 1', () => {
    expect(backoffDelay(3, opts, () => 0)).toBe(100);
    expect(backoffDelay(3, opts, () => 0.9999999)).toBe(900);
    expect(backoffDelay(0, opts, () => 0.9999999)).toBe(200);
  });

  it('never exceeds max, even for huge attempts or a capped exponent', () => {
    expect(backoffDelay(1e9, opts, () => 0.9999999)).toBe(10_000);
    const lowCap = { ...opts, maxAttempt: 2 };
    expect(backoffDelay(50, lowCap, () => 0.9999999)).toBe(500);
  });

  it('spreads delays over the whole window (jitter), not a fixed value', () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const delays = Array.from({ length: 2000 }, () => backoffDelay(6, opts, random));
    const min = Math.min(...delays);
    const max = Math.max(...delays);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    expect(min).toBeLessThan(100 + 0.1 * 6400);
    expect(max).toBeGreaterThan(6500 - 0.1 * 6400);
    expect(mean).toBeGreaterThan(3300 - 300);
    expect(mean).toBeLessThan(3300 + 300);
    expect(new Set(delays).size).toBeGreaterThan(500);
  });

  it('treats negative or fractional attempts as the first', () => {
    expect(backoffDelay(-3, opts, () => 0.9999999)).toBe(200);
    expect(backoffDelay(0.7, opts, () => 0.9999999)).toBe(200);
  });
});
