import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { manualTurnBudget } from './testing.js';
import { TurnBudget, type BudgetYield } from './turn-budget.js';

/** A budget on a hand-moved clock whose slices run only when the test says so. */
function manualBudget(budgetMs: number, yieldTo?: BudgetYield) {
  const { budget, slices, spend } = manualTurnBudget(budgetMs, yieldTo);
  return {
    budget,
    spend,
    /** Runs the scheduled slice (the next turn's check phase), microtasks included. */
    async nextTurn(): Promise<void> {
      const slice = slices.shift();
      expect(slice).toBeDefined();
      slice!();
      // Released tasks run one microtask apart: a macrotask later the chain has drained.
      await new Promise((resolve) => setImmediate(resolve));
    },
    get scheduled() {
      return slices.length;
    },
  };
}

describe('TurnBudget', () => {
  it('runs tasks at once while the window has room, then queues the rest for later turns in order', async () => {
    const { budget, spend, nextTurn } = manualBudget(2);
    const ran: number[] = [];
    const task = (i: number) => () => {
      ran.push(i);
      spend(0.5);
    };
    for (let i = 0; i < 10; i++) budget.run(task(i));
    // 4 tasks of 0.5 ms spend the 2 ms window; the other 6 wait.
    expect(ran).toEqual([0, 1, 2, 3]);
    expect(budget.pending).toBe(6);

    await nextTurn();
    expect(ran).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Arrivals while others wait queue behind them, even with room left.
    budget.run(task(10));
    expect(ran).toHaveLength(8);
    await nextTurn();
    expect(ran).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(budget.pending).toBe(0);
  });

  it('keeps a window for the rest of its turn and opens a fresh one in the next turn', async () => {
    const { budget, spend, nextTurn } = manualBudget(2);
    const ran: string[] = [];
    budget.run(() => {
      ran.push('a');
      spend(5);
    });
    budget.run(() => ran.push('b'));
    expect(ran).toEqual(['a']);
    await nextTurn();
    expect(ran).toEqual(['a', 'b']);
    // Still the same turn and its window is spent: work arriving now (say, chained on 'b') waits.
    spend(10);
    budget.run(() => ran.push('c'));
    expect(ran).toEqual(['a', 'b']);
    await nextTurn();
    expect(ran).toEqual(['a', 'b', 'c']);
    // That turn's slice emptied the queue; the one after closes the window, and then work runs at once.
    spend(10);
    await nextTurn();
    budget.run(() => ran.push('d'));
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
  });

  it('keeps the order across thousands of waiting tasks and many turns', async () => {
    const { budget, spend, nextTurn } = manualBudget(10);
    const ran: number[] = [];
    const total = 5000;
    for (let i = 0; i < total; i++)
      budget.run(() => {
        ran.push(i);
        spend(0.1);
      });
    // 100 tasks a turn: keep feeding more while the earlier ones drain.
    for (let turn = 0; turn < 30; turn++) {
      budget.run(() => ran.push(total + turn));
      await nextTurn();
    }
    while (budget.pending > 0) await nextTurn();
    expect(ran).toHaveLength(total + 30);
    expect(ran.slice(0, total)).toEqual([...Array(total).keys()]);
  });

  it('keeps going after a task throws', async () => {
    const { budget, spend, nextTurn } = manualBudget(1);
    const ran: number[] = [];
    budget.run(() => {
      spend(2);
      throw new Error('boom');
    });
    budget.run(() => ran.push(1));
    budget.run(() => {
      throw new Error('boom again');
    });
    budget.run(() => ran.push(2));
    await nextTurn();
    expect(ran).toEqual([1, 2]);
  });

  it('lets a timer due during a burst run between slices, not after the whole burst', async () => {
    const budget = new TurnBudget({ budgetMs: 2 });
    const done: number[] = [];
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    let finished!: () => void;
    const all = new Promise<void>((resolve) => (finished = resolve));
    const tasks = 40;
    // 40 × 0.5 ms = 20 ms of work: about 4 tasks per 2 ms slice.
    for (let i = 0; i < tasks; i++)
      budget.run(() => {
        busy(0.5);
        done.push(i);
        if (done.length === tasks) finished();
      });
    let seenAt = -1;
    setTimeout(() => (seenAt = done.length), 1);
    await all;
    expect(done).toEqual([...Array(tasks).keys()]);
    expect(seenAt).toBeGreaterThan(0);
    expect(seenAt).toBeLessThan(tasks);
  });

  it('while the work it gives way to is busy, a window is REAUTH_BUDGET_BUSY_MS long', async () => {
    const publishes = { busy: true };
    const { budget, spend, nextTurn } = manualBudget(1, publishes);
    const ran: number[] = [];
    const task = (i: number) => () => {
      ran.push(i);
      spend(0.1);
    };
    for (let i = 0; i < 20; i++) budget.run(task(i));
    // 0.25 ms of 0.1 ms tasks: three run (the third starts at 0.2 ms), the rest wait.
    expect(ran).toEqual([0, 1, 2]);
    await nextTurn();
    // Still busy: the next turn's slice is as short; reauths move on all the same.
    expect(ran).toEqual([0, 1, 2, 3, 4, 5]);
    publishes.busy = false;
    await nextTurn();
    // Nothing pending any more: the whole 1 ms.
    expect(ran).toHaveLength(16);
  });
});
