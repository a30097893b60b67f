import { describe, expect, it } from 'vitest';
import { PendingPublishes } from '../hub/backlog.js';
import { FakeClock } from '../hub/testing.js';
import { WriteCoalescer } from './write-coalescer.js';

function fakeSocket() {
  const calls: string[] = [];
  let corked = 0;
  return {
    calls,
    cork: () => void (corked++, calls.push('cork')),
    uncork: () => void (corked--, calls.push('uncork')),
    get writableCorked() {
      return corked;
    },
  };
}

/** A coalescer whose turn ends are run by hand, on a fake clock. */
function handMoved(backlog?: PendingPublishes) {
  const turnEnds: Array<() => void> = [];
  const clock = new FakeClock();
  const coalescer = new WriteCoalescer({
    schedule: (fn) => turnEnds.push(fn),
    ...(backlog === undefined ? {} : { backlog }),
    maxHoldMs: 1,
    clock,
  });
  return {
    coalescer,
    clock,
    endTurn: () => turnEnds.shift()!(),
    pendingTurns: () => turnEnds.length,
    advance: (ms: number) => clock.advance(ms),
  };
}

describe('WriteCoalescer', () => {
  it('corks each socket once per turn and uncorks all of them in one scheduled flush', () => {
    const { coalescer, endTurn, pendingTurns } = handMoved();
    const a = fakeSocket();
    const b = fakeSocket();
    coalescer.hold(a);
    coalescer.hold(a);
    coalescer.hold(b);
    expect(a.calls).toEqual(['cork']);
    expect(b.calls).toEqual(['cork']);
    expect(pendingTurns()).toBe(1);
    endTurn();
    expect(a.calls).toEqual(['cork', 'uncork']);
    expect(b.calls).toEqual(['cork', 'uncork']);
    coalescer.hold(a);
    expect(a.calls).toEqual(['cork', 'uncork', 'cork']);
    expect(pendingTurns()).toBe(1);
  });

  it('leaves a socket corked by its own writer to that writer, and holds it once uncorked', () => {
    const { coalescer, endTurn, pendingTurns } = handMoved();
    const a = fakeSocket();
    a.cork(); // e.g. ws writing a frame's two chunks
    coalescer.hold(a);
    a.uncork();
    expect(pendingTurns()).toBe(0);
    expect(a.calls).toEqual(['cork', 'uncork']);
    coalescer.hold(a);
    a.cork();
    a.uncork(); // a writer's own pair inside a held turn changes nothing
    coalescer.hold(a);
    endTurn();
    expect(a.calls).toEqual(['cork', 'uncork', 'cork', 'cork', 'uncork', 'uncork']);
    expect(a.writableCorked).toBe(0);
  });

  it('with the default scheduler, writes of one turn leave together after it', async () => {
    const coalescer = new WriteCoalescer();
    const a = fakeSocket();
    coalescer.hold(a);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(a.calls).toEqual(['cork', 'uncork']);
  });

  it('holds writes past their turn while publishes are pending, and flushes when the last is delivered', () => {
    const backlog = new PendingPublishes();
    const { coalescer, endTurn } = handMoved(backlog);
    const a = fakeSocket();
    backlog.enter();
    backlog.enter();
    backlog.leave(); // the first publish was delivered: its frame is held
    coalescer.hold(a);
    endTurn();
    expect(a.calls).toEqual(['cork']);
    coalescer.hold(a); // the second publish's frame joins the same write
    expect(a.calls).toEqual(['cork']);
    backlog.leave();
    expect(a.calls).toEqual(['cork', 'uncork']);
  });

  it('holds at most maxHoldMs after the turn, however long publishes stay pending', () => {
    const backlog = new PendingPublishes();
    const { coalescer, endTurn, advance, clock } = handMoved(backlog);
    const a = fakeSocket();
    backlog.enter();
    coalescer.hold(a);
    advance(5); // a long turn (a large delivery) does not use up the wait
    endTurn();
    expect(clock.pendingTimers).toBe(1);
    advance(0.5);
    expect(a.calls).toEqual(['cork']);
    advance(0.5);
    expect(a.calls).toEqual(['cork', 'uncork']);
    // Still pending: the next round waits again.
    coalescer.hold(a);
    endTurn();
    expect(a.calls).toEqual(['cork', 'uncork', 'cork']);
    advance(1);
    expect(a.calls).toEqual(['cork', 'uncork', 'cork', 'uncork']);
  });

  it('does not wait when no publish is pending, and flushes as soon as the last pending one is delivered', () => {
    const backlog = new PendingPublishes();
    const { coalescer, endTurn, pendingTurns, clock } = handMoved(backlog);
    const a = fakeSocket();
    coalescer.hold(a);
    endTurn();
    expect(a.calls).toEqual(['cork', 'uncork']);
    expect(clock.pendingTimers).toBe(0);
    // Within a turn: the delivered publish's frame leaves before the turn ends.
    backlog.enter();
    coalescer.hold(a);
    backlog.leave();
    expect(a.calls).toEqual(['cork', 'uncork', 'cork', 'uncork']);
    endTurn(); // finds nothing held
    expect(pendingTurns()).toBe(0);
    expect(a.calls).toEqual(['cork', 'uncork', 'cork', 'uncork']);
    coalescer.hold(a);
    expect(pendingTurns()).toBe(1);
  });

  it('an explicit flush ends a wait and its timer', () => {
    const backlog = new PendingPublishes();
    const { coalescer, endTurn, clock } = handMoved(backlog);
    const a = fakeSocket();
    backlog.enter();
    coalescer.hold(a);
    endTurn();
    expect(clock.pendingTimers).toBe(1);
    coalescer.flush();
    expect(a.calls).toEqual(['cork', 'uncork']);
    expect(clock.pendingTimers).toBe(0);
    backlog.leave();
    expect(a.calls).toEqual(['cork', 'uncork']);
  });

  it('in a burst, an emptying backlog leaves the held writes to the end of the turn', () => {
    let now = 0;
    const backlog = new PendingPublishes(() => now);
    const { coalescer, endTurn } = handMoved(backlog);
    const a = fakeSocket();
    backlog.enter();
    coalescer.hold(a);
    backlog.leave(); // alone: flushed at once
    expect(a.calls).toEqual(['cork', 'uncork']);
    endTurn();
    now += 0.5; // the next publish comes 0.5 ms later: a burst
    backlog.enter();
    coalescer.hold(a);
    backlog.leave();
    expect(a.calls).toEqual(['cork', 'uncork', 'cork']);
    endTurn(); // nothing pending any more: no wait past the turn
    expect(a.calls).toEqual(['cork', 'uncork', 'cork', 'uncork']);
  });
});
