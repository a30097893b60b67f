import { describe, expect, it } from 'vitest';
import { FakeClock } from '../hub/testing.js';
import { backoffDelayMs, LocalFailureBackoff, type BackoffPolicy } from './failure-backoff.js';

const POLICY: BackoffPolicy = { freeFailures: 3, baseMs: 1000, maxMs: 8000, forgetAfterMs: 60_000 };

describe('backoffDelayMs', () => {
  it('is free for the first failures, then doubles from the base up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffDelayMs(n, POLICY))).toEqual([
      0, 0, 1000, 2000, 4000, 8000, 8000, 8000,
    ]);
  });
});

describe('LocalFailureBackoff', () => {
  it('makes a key wait after its free failures, the wait counting down with time', async () => {
    const clock = new FakeClock();
    const backoff = new LocalFailureBackoff(POLICY, clock);
    expect(await backoff.fail('k')).toEqual({ failures: 1, waitMs: 0 });
    expect(await backoff.fail('k')).toEqual({ failures: 2, waitMs: 0 });
    expect(await backoff.fail('k')).toEqual({ failures: 3, waitMs: 1000 });
    clock.advance(400);
    expect(await backoff.state('k')).toEqual({ failures: 3, waitMs: 600 });
    clock.advance(600);
    expect(await backoff.state('k')).toEqual({ failures: 3, waitMs: 0 });
    expect(await backoff.fail('k')).toEqual({ failures: 4, waitMs: 2000 });
    expect(await backoff.state('other')).toEqual({ failures: 0, waitMs: 0 });
  });

  it('clear forgets the key (its owner got in)', async () => {
    const backoff = new LocalFailureBackoff(POLICY, new FakeClock());
    for (let i = 0; i < 5; i++) await backoff.fail('k');
    await backoff.clear('k');
    expect(await backoff.state('k')).toEqual({ failures: 0, waitMs: 0 });
  });

  it('starts a key over once it has had no failure for forgetAfterMs', async () => {
    const clock = new FakeClock();
    const backoff = new LocalFailureBackoff(POLICY, clock);
    for (let i = 0; i < 4; i++) await backoff.fail('k');
    clock.advance(POLICY.forgetAfterMs);
    expect(await backoff.state('k')).toEqual({ failures: 0, waitMs: 0 });
    expect(await backoff.fail('k')).toEqual({ failures: 1, waitMs: 0 });
  });

  it('keeps at most maxKeys, dropping the least recently failed first', async () => {
    const backoff = new LocalFailureBackoff(POLICY, new FakeClock(), 3);
    for (const key of ['a', 'b', 'c']) await backoff.fail(key);
    await backoff.fail('a'); // a is now the most recent
    await backoff.fail('d');
    expect(backoff.size).toBe(3);
    expect((await backoff.state('b')).failures).toBe(0);
    expect((await backoff.state('a')).failures).toBe(2);
  });
});
