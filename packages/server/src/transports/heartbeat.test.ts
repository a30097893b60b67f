import { describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from '../util/clock.js';
import { HeartbeatSweeper } from './heartbeat.js';

/** A clock whose timers fire only when the test advances time. */
function manualClock() {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  const clock: Clock & { advance(ms: number): void; jump(ms: number): void; pending(): number } = {
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
    /** Moves the time without running the timers due meanwhile: they run late, at the next advance. */
    jump(ms) {
      now += ms;
      for (const t of timers) t.at = Math.max(t.at, now);
    },
    pending: () => timers.length,
  };
  return clock;
}

/** A socket that is its own beat, as a `/ws` connection is. */
function socket() {
  const s = {
    pings: 0,
    terminations: 0,
    get terminated() {
      return s.terminations > 0;
    },
    ping: () => void s.pings++,
    terminate: () => void s.terminations++,
    nextPingAt: 0,
    deadline: 0,
    pingAt: 0,
  };
  return s;
}
type TestSocket = ReturnType<typeof socket>;

/** A sweeper (ping after 1 s, 0.5 s to answer) with a silent and a chatty socket, both pinged once. */
function twoPinged(clock: ReturnType<typeof manualClock>, onDead: (s: TestSocket, beat: TestSocket) => void) {
  const sweeper = new HeartbeatSweeper<TestSocket, TestSocket>({ intervalMs: 1000, timeoutMs: 500, clock, onDead });
  const silent = socket();
  const chatty = socket();
  sweeper.add(silent, silent);
  sweeper.add(chatty, chatty);
  clock.advance(1000);
  expect([silent.pings, chatty.pings]).toEqual([1, 1]);
  return { sweeper, silent, chatty };
}

describe('HeartbeatSweeper', () => {
  it('pings after the interval and terminates a socket silent for the timeout after it', () => {
    const clock = manualClock();
    const dead: TestSocket[] = [];
    const { sweeper, silent, chatty } = twoPinged(clock, (s, beat) => dead.push(s, beat));
    sweeper.alive(chatty);
    clock.advance(500);
    expect(silent.terminated).toBe(true);
    expect(chatty.terminated).toBe(false);
    expect(dead).toEqual([silent, silent]);
    // Its owner removes it on its close; until then it is not pinged or terminated again.
    expect(sweeper.size).toBe(2);
    sweeper.alive(silent);
    clock.advance(3000);
    expect([silent.terminations, silent.pings, dead.filter((d) => d === silent).length]).toEqual([1, 1, 2]);
    sweeper.remove(silent);
    expect(sweeper.size).toBe(1); // chatty, which has gone silent since (and been terminated) too
    sweeper.stop();
  });

  it('keeps its times small integers across a long uptime, and keeps pinging and terminating on time', () => {
    const clock = manualClock();
    const { sweeper, silent, chatty } = twoPinged(clock, () => undefined);
    // Forty days later (the timer was due long ago), with the ping still outstanding.
    clock.jump(40 * 24 * 3600 * 1000);
    sweeper.alive(chatty);
    for (const s of [silent, chatty]) {
      expect(Math.abs(s.nextPingAt)).toBeLessThan(2 ** 30);
      expect(Math.abs(s.deadline)).toBeLessThan(2 ** 30);
    }
    clock.advance(200);
    expect(silent.terminated).toBe(true);
    expect(chatty.terminated).toBe(false);
    clock.advance(1000);
    expect(chatty.pings).toBe(2);
    sweeper.alive(chatty);
    clock.advance(900);
    expect(chatty.pings).toBe(2);
    clock.advance(200);
    expect(chatty.pings).toBe(3);
    expect(chatty.terminated).toBe(false);
    sweeper.stop();
  });

  it('frees a half-open socket within interval + timeout (plus sweep granularity)', () => {
    const clock = manualClock();
    const sweeper = new HeartbeatSweeper({ intervalMs: 300, timeoutMs: 200, clock, onDead: () => undefined });
    const s = socket();
    sweeper.add(s, s);
    clock.advance(300 + 200 + 2 * 40);
    expect(s.terminated).toBe(true);
  });

  it('measures the round trip from a ping to its pong, even when other frames came in between', () => {
    const clock = manualClock();
    const sweeper = new HeartbeatSweeper({ intervalMs: 1000, timeoutMs: 1000, clock, onDead: () => {} });
    const s = socket();
    sweeper.add(s, s);
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
    for (const s of sockets) sweeper.add(s, s);
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
    for (const s of sockets) sweeper.add(s, s);
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
