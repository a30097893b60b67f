import { describe, expect, it } from 'vitest';
import { DeadlineHandle, DeadlineScheduler, type Deadlines } from './scheduler.js';
import { FakeClock } from './testing.js';

function setup() {
  const clock = new FakeClock(0);
  const fired: { target: string; kind: string; at: number }[] = [];
  const scheduler = new DeadlineScheduler<string, string>(clock, (target, kind) =>
    fired.push({ target, kind, at: clock.now() }),
  );
  return { clock, fired, scheduler };
}

describe('DeadlineScheduler', () => {
  it('fires each entry at its own time, in time order', () => {
    const { clock, fired, scheduler } = setup();
    scheduler.schedule(new DeadlineHandle('c'), 300, 'expire');
    scheduler.schedule(new DeadlineHandle('a'), 100, 'warn');
    scheduler.schedule(new DeadlineHandle('b'), 200, 'warn');
    clock.advance(1000);
    expect(fired).toEqual([
      { target: 'a', kind: 'warn', at: 100 },
      { target: 'b', kind: 'warn', at: 200 },
      { target: 'c', kind: 'expire', at: 300 },
    ]);
    expect(scheduler.stats()).toMatchObject({ entries: 0, armedTimers: 0 });
  });

  it('pops every due entry in one timer callback, same-time entries in scheduling order', () => {
    const { clock, fired, scheduler } = setup();
    for (let i = 0; i < 100; i++) scheduler.schedule(new DeadlineHandle(`s${i}`), 500, i % 2 === 0 ? 'warn' : 'expire');
    expect(clock.pendingTimers).toBe(1);
    clock.advance(500);
    expect(fired.map((f) => f.target)).toEqual(Array.from({ length: 100 }, (_, i) => `s${i}`));
    expect(fired.every((f) => f.at === 500)).toBe(true);
  });

  it('arms exactly one timer for 10k sessions and re-arms it for an earlier deadline', () => {
    const { clock, scheduler } = setup();
    for (let i = 0; i < 10_000; i++) {
      const handle = new DeadlineHandle(`s${i}`);
      scheduler.schedule(handle, 10_000 + ((i * 7919) % 50_000), 'warn');
      scheduler.schedule(handle, 70_000 + ((i * 7919) % 50_000), 'expire');
    }
    expect(clock.pendingTimers).toBe(1);
    expect(scheduler.stats()).toEqual({ entries: 20_000, live: 20_000, stale: 0, armedTimers: 1, nextAt: 10_000 });
    scheduler.schedule(new DeadlineHandle('early'), 50, 'expire');
    expect(clock.pendingTimers).toBe(1);
    expect(scheduler.stats().nextAt).toBe(50);
  });

  it('never fires cancelled entries, and re-arms past them', () => {
    const { clock, fired, scheduler } = setup();
    const a = new DeadlineHandle('a');
    scheduler.schedule(a, 100, 'warn');
    scheduler.schedule(a, 200, 'expire');
    scheduler.schedule(new DeadlineHandle('b'), 300, 'expire');
    scheduler.cancel(a);
    expect(scheduler.stats()).toMatchObject({ live: 1, armedTimers: 1, nextAt: 300 });
    clock.advance(1000);
    expect(fired.map((f) => f.target)).toEqual(['b']);
    expect(scheduler.stats()).toMatchObject({ entries: 0, stale: 0, armedTimers: 0 });
  });

  it('a handle scheduled again after cancel fires only its new entries', () => {
    const { clock, fired, scheduler } = setup();
    const a = new DeadlineHandle('a');
    scheduler.schedule(a, 100, 'expire');
    scheduler.cancel(a);
    scheduler.schedule(a, 400, 'expire');
    clock.advance(1000);
    expect(fired).toEqual([{ target: 'a', kind: 'expire', at: 400 }]);
  });

  it('compacts when tombstones outnumber live entries', () => {
    const { scheduler } = setup();
    const handles = Array.from({ length: 3000 }, (_, i) => new DeadlineHandle(`s${i}`));
    for (const [i, h] of handles.entries()) scheduler.schedule(h, 1000 + i, 'expire');
    for (const h of handles.slice(0, 2000)) scheduler.cancel(h);
    const stats = scheduler.stats();
    expect(stats.live).toBe(1000);
    // Without compaction the heap would still hold all 3000 entries.
    expect(stats.entries).toBeLessThan(3000);
    expect(stats.nextAt).toBe(3000);
  });

  it('a past deadline fires on the next timer turn', () => {
    const { clock, fired, scheduler } = setup();
    clock.advance(1000);
    scheduler.schedule(new DeadlineHandle('late'), 10, 'expire');
    expect(fired).toEqual([]);
    clock.advance(0);
    expect(fired).toEqual([{ target: 'late', kind: 'expire', at: 1000 }]);
  });

  it('entries scheduled while firing run in the same turn when due, later otherwise', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const scheduler: DeadlineScheduler<string, string> = new DeadlineScheduler<string, string>(clock, (target) => {
      fired.push(`${target}@${clock.now()}`);
      if (target === 'a') {
        scheduler.schedule(new DeadlineHandle('now'), clock.now(), 'x');
        scheduler.schedule(new DeadlineHandle('later'), clock.now() + 50, 'x');
      }
    });
    scheduler.schedule(new DeadlineHandle('a'), 100, 'x');
    clock.advance(100);
    expect(fired).toEqual(['a@100', 'now@100']);
    expect(clock.pendingTimers).toBe(1);
    clock.advance(100);
    expect(fired).toEqual(['a@100', 'now@100', 'later@150']);
  });

  it('follow queues the next deadline where scheduling it with the first would have: one entry at a time', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const scheduler: DeadlineScheduler<string, string> = new DeadlineScheduler<string, string>(
      clock,
      (target, kind) => {
        fired.push(`${kind}:${target}@${clock.now()}`);
        if (kind === 'warn') scheduler.follow(handles.get(target)!, 300, 'expire');
      },
    );
    const handles = new Map(['a', 'b', 'c'].map((t) => [t, new DeadlineHandle(t)]));
    // a then b then c: a's expiry (at 300, queued at 100) must still fire before b's and c's
    // deadlines at 300, which were queued first.
    scheduler.schedule(handles.get('a')!, 100, 'warn');
    scheduler.schedule(handles.get('b')!, 300, 'late');
    scheduler.schedule(handles.get('c')!, 200, 'warn');
    expect(scheduler.stats()).toMatchObject({ entries: 3, live: 3 });
    clock.advance(100);
    expect(scheduler.stats()).toMatchObject({ entries: 3, live: 3 });
    clock.advance(200);
    expect(fired).toEqual(['warn:a@100', 'warn:c@200', 'expire:a@300', 'late:b@300', 'expire:c@300']);
    expect(scheduler.stats()).toMatchObject({ entries: 0, armedTimers: 0 });
  });

  it('follow queues nothing for a handle cancelled while its deadline fires, and only from onDue', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const a = new DeadlineHandle('a');
    const scheduler: DeadlineScheduler<string, string> = new DeadlineScheduler<string, string>(clock, (target) => {
      fired.push(target);
      scheduler.cancel(a);
      scheduler.follow(a, 200, 'expire');
    });
    scheduler.schedule(a, 100, 'warn');
    clock.advance(1000);
    expect(fired).toEqual(['a']);
    expect(scheduler.stats()).toMatchObject({ entries: 0, live: 0, armedTimers: 0 });
    expect(() => scheduler.follow(a, 300, 'expire')).toThrow(/only for the handle whose deadline is firing/);
  });

  it('a deadline queued by follow cannot be followed in turn (one kept place per scheduled deadline)', () => {
    const clock = new FakeClock(0);
    const errors: unknown[] = [];
    const a = new DeadlineHandle('a');
    const scheduler: DeadlineScheduler<string, string> = new DeadlineScheduler<string, string>(clock, (_, kind) => {
      try {
        scheduler.follow(a, clock.now() + 100, `after-${kind}`);
      } catch (err) {
        errors.push(err);
      }
    });
    scheduler.schedule(a, 100, 'warn');
    clock.advance(1000);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/cannot follow a deadline queued by follow/);
    expect(scheduler.stats()).toMatchObject({ entries: 0, armedTimers: 0 });
  });

  it('a target can be its own handle (a session is)', () => {
    class Own implements Deadlines<Own> {
      generation = 0;
      pending = 0;
      get target(): Own {
        return this;
      }
    }
    const clock = new FakeClock(0);
    const fired: Own[] = [];
    const scheduler = new DeadlineScheduler<Own, string>(clock, (target) => fired.push(target));
    const own = new Own();
    scheduler.schedule(own, 10, 'expire');
    scheduler.schedule(own, 20, 'expire');
    expect(own.pending).toBe(2);
    scheduler.cancel(own);
    scheduler.schedule(own, 30, 'expire');
    clock.advance(30);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBe(own);
    expect(own.pending).toBe(0);
  });

  it('stop disarms the timer and forgets every entry', () => {
    const { clock, fired, scheduler } = setup();
    scheduler.schedule(new DeadlineHandle('a'), 100, 'expire');
    scheduler.stop();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(1000);
    expect(fired).toEqual([]);
  });

  it('fires a large, churning heap in time and scheduling order, cancelled entries never, while it grows and shrinks', () => {
    const { clock, fired, scheduler } = setup();
    // A fixed pseudo-random sequence: the heap is filled, partly cancelled, drained in steps and refilled.
    let state = 12345;
    const random = (n: number) => ((state = (state * 1103515245 + 12345) % 2 ** 31), state % n);
    const expected: { target: string; kind: string; at: number; order: number }[] = [];
    let order = 0;
    for (let round = 0; round < 3; round++) {
      const handles = Array.from({ length: 3000 }, (_, i) => new DeadlineHandle(`r${round}-${i}`));
      const queued = new Map<DeadlineHandle<string>, { target: string; kind: string; at: number; order: number }[]>();
      for (const handle of handles) {
        const entries = [];
        for (let k = 0; k < 2; k++) {
          const at = clock.now() + 1 + random(500);
          scheduler.schedule(handle, at, k === 0 ? 'warn' : 'expire');
          entries.push({ target: handle.target, kind: k === 0 ? 'warn' : 'expire', at, order: order++ });
        }
        queued.set(handle, entries);
      }
      for (const handle of handles) {
        if (random(3) !== 0) continue;
        scheduler.cancel(handle);
        queued.delete(handle);
      }
      for (const entries of queued.values()) expected.push(...entries);
      for (let step = 0; step < 5; step++) clock.advance(100);
      expect(scheduler.stats()).toMatchObject({ entries: 0, live: 0, stale: 0, armedTimers: 0 });
    }
    expected.sort((a, b) => a.at - b.at || a.order - b.order);
    expect(fired).toEqual(expected.map(({ target, kind, at }) => ({ target, kind, at })));
  });
});
