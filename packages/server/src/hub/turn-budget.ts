import { performance } from 'node:perf_hooks';

/** The time (ms) reauth work may take per event-loop phase before the rest waits for a later turn. */
export const REAUTH_BUDGET_MS = 1;

/**
 * The budget (ms) per phase while publishes are pending (`PublishBacklog.busy`): reauths then take
 * only this much of a turn, so the events come first, and still move on (a token about to expire
 * must not wait for a quiet moment that may not come).
 */
export const REAUTH_BUDGET_BUSY_MS = 0.25;

/** Other work the budget gives way to: while it is `busy`, a window is `REAUTH_BUDGET_BUSY_MS` long. */
export interface BudgetYield {
  readonly busy: boolean;
}

export interface TurnBudgetOptions {
  /** The window per event-loop phase (ms); default `REAUTH_BUDGET_MS`. */
  budgetMs?: number;
  now?: () => number;
  /** Runs the next turn's slice (default `setImmediate`). */
  schedule?: (fn: () => void) => void;
  /** While it is busy, a window is at most `REAUTH_BUDGET_BUSY_MS`. */
  yieldTo?: BudgetYield | undefined;
}

/**
 * Lets bulk work (reauths) take at most `budgetMs` of wall time per event-loop phase, so it cannot
 * starve deliveries: what arrives once the budget is spent waits, in arrival order, and is let
 * through from `setImmediate` in budget-sized slices. Between two slices the loop always polls
 * I/O once, so a publish that arrives meanwhile is routed and written before the next slice.
 *
 * Without it every reauth frame read in one poll phase was verified and applied in that phase
 * (each socket's callback drains its microtasks), so at saturating load a delivery waited for all
 * of them. Measured on this 2-core machine (1,000 `/ws` connections, 256 reauths in flight,
 * 300 publishes/s, load generators on the same cores), event latency during saturating reauths:
 * p50 27–77 ms unpaced; 16–30 ms with a 2 ms budget; 10–16 ms with 1 ms (1–2 ms without reauths).
 * Reauth throughput did not measurably change. What the budget cannot pace: reading and parsing
 * the frames, and writing the answers.
 *
 * While `yieldTo` is busy (publishes pending in the hub), a window is at most `REAUTH_BUDGET_BUSY_MS`
 * long. A turn-bounded budget alone does not bound reauths' share of the CPU when turns are short:
 * at 19,000 connections, events at half the publish rate the gateway sustains and 512 reauths in
 * flight, reauths took ~90% of the core and the event p99 rose from 30–90 ms to 0.7–2 s.
 *
 * Waiting tasks run one microtask hop apart, so the time a task takes (its synchronous part, and
 * the continuations it queued ahead of the next check) is counted before the next one starts; the
 * budget can be overrun by about one task, never by a whole burst.
 *
 * @example
 *   const budget = new TurnBudget({ yieldTo: hub.backlog });
 *   budget.run(() => void work()); // now while this phase has room, else in a later turn (FIFO)
 */
export class TurnBudget {
  private waiting: Array<() => void> = [];
  /** Index of the next waiting task (the array is compacted as the head moves on). */
  private head = 0;
  /** When the current window opened (-1: none open; the next run opens one). Reset only by a slice. */
  private windowStart = -1;
  private scheduled = false;

  private readonly budgetMs: number;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void) => void;
  private readonly yieldTo: BudgetYield | undefined;

  constructor(options: TurnBudgetOptions = {}) {
    this.budgetMs = options.budgetMs ?? REAUTH_BUDGET_MS;
    this.now = options.now ?? (() => performance.now());
    this.schedule = options.schedule ?? setImmediate;
    this.yieldTo = options.yieldTo;
  }

  /**
   * Runs `task` now while the window has room and nothing waits, else queues it for a later turn
   * (tasks run in the order given). `task` must not throw; a throw is swallowed here so one bad
   * task cannot stall the rest.
   */
  run(task: () => void): void {
    if (this.tryNow()) {
      this.call(task);
      return;
    }
    this.waiting.push(task);
    this.arm();
  }

  /**
   * True when work may run now (nothing waits and the window has room): the caller then runs it
   * itself, which saves `run`'s closure on the common unloaded path. False: use `run`.
   */
  tryNow(): boolean {
    return this.pending === 0 && this.hasRoom();
  }

  /** Tasks waiting for a later turn. */
  get pending(): number {
    return this.waiting.length - this.head;
  }

  private hasRoom(): boolean {
    const now = this.now();
    if (this.windowStart < 0) {
      // A window lasts until the next check phase (its slice), however often the queue empties.
      this.windowStart = now;
      this.arm();
      return true;
    }
    return now - this.windowStart < this.limit();
  }

  /** The current window's length: shorter while the work this budget gives way to is pending. */
  private limit(): number {
    return this.yieldTo?.busy === true ? Math.min(this.budgetMs, REAUTH_BUDGET_BUSY_MS) : this.budgetMs;
  }

  private arm(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(this.slice);
  }

  /** The next turn: a fresh window for what waits, released one microtask apart until it is spent. */
  private readonly slice = (): void => {
    this.scheduled = false;
    if (this.pending === 0) {
      // Nothing waits: the next run (in a later phase) opens a fresh window.
      this.windowStart = -1;
      return;
    }
    this.windowStart = this.now();
    this.release();
  };

  private readonly release = (): void => {
    if (this.pending === 0) {
      this.waiting = [];
      this.head = 0;
      // The window stays open for the rest of this turn (work chained on a released task lands in
      // it) and closes at the next slice.
      this.arm();
      return;
    }
    if (this.now() - this.windowStart >= this.limit()) {
      this.arm();
      return;
    }
    const task = this.waiting[this.head]!;
    this.waiting[this.head++] = NOOP;
    // Under sustained load the queue may never empty: drop the run part now and then.
    if (this.head >= COMPACT_AT && this.head * 2 >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    this.call(task);
    // Queued behind the released work's continuation: the next check counts what it took.
    queueMicrotask(this.release);
  };

  private call(task: () => void): void {
    try {
      task();
    } catch {
      // The caller answers its own failures; nothing here may stop the queue.
    }
  }
}

const COMPACT_AT = 1024;

function NOOP(): void {}
