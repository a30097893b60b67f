import { describe, expect, it } from 'vitest';
import type { Clock } from '../util/clock.js';
import { InboundGuard } from './inbound-guard.js';

function fakeClock(): Clock & { advance(ms: number): void } {
  let now = 1_000_000;
  return { now: () => now, setTimeout: () => ({}), clearTimeout: () => undefined, advance: (ms) => (now += ms) };
}

describe('InboundGuard', () => {
  it('accepts the burst, warns once, drops, then cuts after another burst of drops', () => {
    const guard = new InboundGuard(3, 1, fakeClock());
    const verdicts = Array.from({ length: 8 }, () => guard.check());
    expect(verdicts).toEqual(['accept', 'accept', 'accept', 'warn', 'drop', 'drop', 'cut', 'cut']);
  });

  it('starts over once the client has calmed down and its bucket is full again', () => {
    const clock = fakeClock();
    const guard = new InboundGuard(2, 10, clock);
    expect([guard.check(), guard.check(), guard.check()]).toEqual(['accept', 'accept', 'warn']);
    clock.advance(1000);
    expect([guard.check(), guard.check(), guard.check()]).toEqual(['accept', 'accept', 'warn']);
  });

  it('gives a connection that stayed quiet the same burst as a new one, no more', () => {
    const clock = fakeClock();
    const guard = new InboundGuard(2, 10, clock);
    clock.advance(60_000);
    expect([guard.check(), guard.check(), guard.check()]).toEqual(['accept', 'accept', 'warn']);
    clock.advance(50);
    expect(guard.check()).toBe('drop');
    clock.advance(60);
    expect(guard.check()).toBe('accept');
  });
});
