import { describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from '../util/clock.js';
import { HeartbeatSweeper, type Pingable } from './heartbeat.js';

/** A clock whose timers fire only when the test advances time. */
function manualClock() {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  const clock: Clock & { advance(ms: number): void; pending(): number } = {
    now: () => now,
    setTimeout(fn, ms): TimerHandle {
      const t = { at: now + ms, fn };
      timers.push(t);
      return t as unknown as TimerHandle;
    },
    clearTimeout(handle) {
      timers = timers.filter((t) => t !== (handle as unknown));
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (due === undefined) break;
        timers = timers.filter((t) => t !== due);
        now = due.at;
        due.fn();
      }
      now = end;
    },
    pending: () => timers.length,
  };
  return clock;
}

function socket() {
  const s = { pings: 0, terminated: false, ping: () => void s.pings++, terminate: () => void (s.terminated = true) };
  return s;
}

describe('HeartbeatSweeper', () => {
  it('pings after the interval and terminates a socket silent for the timeout after it', () => {
    const clock = manualClock();
    const dead: Pingable[] = [];
    const sweeper = new HeartbeatSweeper({ intervalMs: 1000, timeoutMs: 500, clock, onDead: (s) => dead.push(s) });
    const silent = socket();
    const chatty = socket();
    sweeper.add(silent);
    sweeper.add(chatty);
    clock.advance(1000);
    expect([silent.pings, chatty.pings]).toEqual([1, 1]);
    sweeper.alive(chatty);
    clock.advance(500);
    expect(silent.terminated).toBe(true);
    expect(chatty.terminated).toBe(false);
    expect(dead).toEqual([silent]);
    expect(sweeper.size).toBe(1);
  });

  it('frees a half-open socket within interval + timeout (plus sweep granularity)', () => {
    const clock = manualClock();
    const sweeper = new HeartbeatSweeper({ intervalMs: 300, timeoutMs: 200, clock, onDead: () => undefined });
    const s = socket();
    sweeper.add(s);
    clock.advance(300 + 200 + 2 * 40);
    expect(s.terminated).toBe(true);
  });

  it('measures the round trip from a ping to its pong, even when other frames came in between', () => {
    const clock = manualClock();
    const sweeper = new HeartbeatSweeper({ intervalMs: 1000, timeoutMs: 1000, clock, onDead: () => {} });
    const s = socket();
    sweeper.add(s);
    expect(sweeper.pong(s)).toBeUndefined(); // no ping yet
    clock.advance(1000);
    expect(s.pings).toBe(1);
    sweeper.alive(s); // a frame arrived before the pong
    const rtt = sweeper.pong(s);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(sweeper.pong(s)).toBeUndefined(); // answered once
    sweeper.stop();
  });

  it('uses a single timer for all sockets and none when idle', () => {
    const clock = manualClock();
    const sweeper = new HeartbeatSweeper({ intervalMs: 1000, timeoutMs: 1000, clock, onDead: () => undefined });
    const sockets = Array.from({ length: 100 }, socket);
    for (const s of sockets) sweeper.add(s);
    expect(clock.pending()).toBe(1);
    for (const s of sockets) sweeper.remove(s);
    clock.advance(1000);
    expect(clock.pending()).toBe(0);
    sweeper.stop();
  });

  it('sends the pings of a large sweep in slices, yielding between them, and re-arms once the sweep is done', () => {
    const clock = manualClock();
    const deferred: Array<() => void> = [];
    // A slice of 0 ms: the sweep yields at every look at the time (every 16 sockets).
    const sweeper = new HeartbeatSweeper({
      intervalMs: 1000,
      timeoutMs: 1000,
      clock,
      onDead: () => undefined,
      sliceMs: 0,
      defer: (rest) => deferred.push(rest),
    });
    const sockets = Array.from({ length: 100 }, socket);
    for (const s of sockets) sweeper.add(s);
    // Sweeps every 200 ms; those before the interval ends ping nothing (each still yields every 16).
    for (let t = 0; t < 4; t++) {
      clock.advance(200);
      while (deferred.length > 0) deferred.shift()!();
    }
    const pinged = () => sockets.filter((s) => s.pings === 1).length;
    expect(pinged()).toBe(0);
    clock.advance(200);
    expect(pinged()).toBe(16);
    expect(clock.pending()).toBe(0); // not re-armed while the sweep is going
    let slices = 1;
    while (deferred.length > 0) {
      deferred.shift()!();
      slices++;
    }
    expect(pinged()).toBe(100);
    expect(slices).toBe(7);
    expect(clock.pending()).toBe(1);
    sweeper.stop();
  });
});
