import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../hub/testing.js';
import { localLimiters } from '../util/rate-limit.js';
import { FRESH_ADDRESS_DELAY_MAX_MS, LoginThrottle } from './login-throttle.js';

function setup(perMinute = 30) {
  const clock = new FakeClock();
  const throttle = new LoginThrottle({
    limiters: localLimiters(clock),
    perMinute,
    freeFailures: 5,
    backoffMaxMs: 60_000,
    clock,
    logger: pino({ level: 'silent' }),
  });
  return { clock, throttle };
}

/** The Retry-After (ms) of a refused attempt, or 'admitted'; moves the fake clock through any hold. */
async function attempt(clock: FakeClock, throttle: LoginThrottle, account: string, address: string) {
  let outcome: number | 'admitted' | undefined;
  throttle.admit(account, address).then(
    () => (outcome = 'admitted'),
    (err: { code: string; retryAfterMs: number }) => {
      expect(err.code).toBe('RATE_LIMITED');
      outcome = err.retryAfterMs;
    },
  );
  let held = 0;
  for (;;) {
    for (let i = 0; i < 10; i++) await Promise.resolve();
    if (outcome !== undefined) return { outcome, held };
    // Held (the account is over its ceiling): let the fake time pass, in small steps.
    clock.advance(100);
    held += 100;
    if (held > 60_000) throw new Error('held for over a minute');
  }
}

describe('LoginThrottle', () => {
  it('40 wrong passwords from 40 addresses, then the owner from a fresh address is admitted within the short hold', async () => {
    const { clock, throttle } = setup();
    for (let i = 0; i < 40; i++) {
      const { outcome } = await attempt(clock, throttle, 'owner@x', `10.0.0.${i}`);
      expect(outcome).toBe('admitted');
      await throttle.failed('owner@x', `10.0.0.${i}`);
    }
    const owner = await attempt(clock, throttle, 'owner@x', '192.168.1.1');
    expect(owner.outcome).toBe('admitted');
    expect(owner.held).toBeGreaterThan(0);
    expect(owner.held).toBeLessThanOrEqual(FRESH_ADDRESS_DELAY_MAX_MS);
  });

  it('while the account is over its ceiling, an address that already failed for it is refused', async () => {
    const { clock, throttle } = setup(10);
    for (let i = 0; i < 10; i++) {
      await attempt(clock, throttle, 'a@x', `10.0.0.${i}`);
      await throttle.failed('a@x', `10.0.0.${i}`);
    }
    const again = await attempt(clock, throttle, 'a@x', '10.0.0.1');
    expect(again.outcome).toBeGreaterThan(0);
    // The ceiling refills: a token every 6 s at 10 per minute.
    clock.advance(6000);
    expect((await attempt(clock, throttle, 'a@x', '10.0.0.1')).outcome).toBe('admitted');
  });

  it('one address guessing one account is held back with a growing wait, capped', async () => {
    const { clock, throttle } = setup(1000);
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      expect((await attempt(clock, throttle, 'a@x', '1.2.3.4')).outcome).toBe('admitted');
      await throttle.failed('a@x', '1.2.3.4');
    }
    for (let i = 0; i < 9; i++) {
      const refused = await attempt(clock, throttle, 'a@x', '1.2.3.4');
      expect(refused.outcome).not.toBe('admitted');
      const wait = refused.outcome as number;
      waits.push(wait);
      clock.advance(wait);
      expect((await attempt(clock, throttle, 'a@x', '1.2.3.4')).outcome).toBe('admitted');
      await throttle.failed('a@x', '1.2.3.4');
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('the right password forgets that address’s failures', async () => {
    const { clock, throttle } = setup();
    for (let i = 0; i < 5; i++) await throttle.failed('a@x', '1.2.3.4');
    expect((await attempt(clock, throttle, 'a@x', '1.2.3.4')).outcome).toBe(1000);
    clock.advance(1000);
    expect((await attempt(clock, throttle, 'a@x', '1.2.3.4')).outcome).toBe('admitted');
    await throttle.succeeded('a@x', '1.2.3.4');
    for (let i = 0; i < 4; i++) await throttle.failed('a@x', '1.2.3.4');
    expect((await attempt(clock, throttle, 'a@x', '1.2.3.4')).outcome).toBe('admitted');
  });

  it('one address spraying many accounts runs out of its per-address attempts', async () => {
    const { clock, throttle } = setup(10);
    const outcomes: Array<number | 'admitted'> = [];
    for (let i = 0; i < 12; i++) {
      const { outcome } = await attempt(clock, throttle, `user${i}@x`, '6.6.6.6');
      outcomes.push(outcome);
      if (outcome === 'admitted') await throttle.failed(`user${i}@x`, '6.6.6.6');
    }
    expect(outcomes.slice(0, 10).every((o) => o === 'admitted')).toBe(true);
    expect(outcomes.slice(10)).toEqual([6000, 6000]);
    // Another address is not affected.
    expect((await attempt(clock, throttle, 'user11@x', '7.7.7.7')).outcome).toBe('admitted');
  });

  it('successful logins never use the account budget', async () => {
    const { clock, throttle } = setup(3);
    for (let i = 0; i < 10; i++) {
      const { outcome, held } = await attempt(clock, throttle, 'busy@x', `10.1.0.${i}`);
      expect([outcome, held]).toEqual(['admitted', 0]);
      await throttle.succeeded('busy@x', `10.1.0.${i}`);
    }
  });
});
