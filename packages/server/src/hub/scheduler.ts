import type { Clock, TimerHandle } from '../util/clock.js';

/**
 * Identifies one target (a session) in the scheduler. Cancelling bumps `generation`, which turns
 * every entry queued under the old generation into a tombstone that is skipped when it surfaces:
 * cancelling is O(1) and the heap is never searched. `DeadlineHandle` is the plain one; a target
 * may also be its own (a session is: one 48-byte object fewer per connection).
 */
export interface Deadlines<T> {
  /** Entries carrying an older generation are stale. */
  generation: number;
  /** Live (current-generation) entries still queued; lets the scheduler count tombstones. */
  pending: number;
  readonly target: T;
}

export class DeadlineHandle<T> implements Deadlines<T> {
  generation = 0;
  pending = 0;
  constructor(readonly target: T) {}
}

interface Entry<T, K> {
  readonly at: number;
  /**
   * Insertion order: entries due at the same instant fire in the order they were scheduled. Each
   * entry takes two numbers: the odd one after it is kept for the deadline `follow` queues when it fires.
   */
  readonly seq: number;
  readonly handle: Deadlines<T>;
  readonly generation: number;
  readonly kind: K;
}

export interface SchedulerStats {
  /** Entries in the heap, stale ones included. */
  entries: number;
  /** Entries that will still fire. */
  live: number;
  stale: number;
  /** Timers currently armed on the clock: 0 or 1, never one per session. */
  armedTimers: 0 | 1;
  /** When the armed timer fires (ms since the epoch), if one is armed. */
  nextAt: number | undefined;
}

/** setTimeout's largest delay; longer waits re-arm when the timer fires early. */
const MAX_DELAY_MS = 2 ** 31 - 1;
/** Rebuild the heap when tombstones outnumber live entries (and there are enough to matter). */
const COMPACT_MIN_STALE = 1024;

/**
 * One min-heap of deadlines for every session (token warnings and expiries) with a single timer
 * armed for the earliest. When it fires, every due entry is popped in time order, so a thousand
 * tokens expiring in the same second cost one timer callback, not a thousand timers.
 *
 * A target's deadlines can be chained: `onDue` calls `follow` to queue the next one, which then
 * fires exactly where it would have had it been scheduled right after the first (same-instant
 * order included). Only one entry per target is then queued at a time.
 *
 * @example
 *   const handle = new DeadlineHandle(session);
 *   const scheduler = new DeadlineScheduler<Session, 'warn' | 'expire'>(clock, (s, kind) => {
 *     if (kind === 'warn') scheduler.follow(handle, exp, 'expire');
 *   });
 *   scheduler.schedule(handle, exp - 300_000, 'warn');
 *   scheduler.cancel(handle); // on reauth or disconnect
 */
export class DeadlineScheduler<T, K> {
  private heap: Entry<T, K>[] = [];
  private seq = 0;
  private stale = 0;
  private timer: TimerHandle | undefined;
  private armedAt = Infinity;
  private firing = false;
  /** The entry whose `onDue` is running (what `follow` chains after). */
  private due: Entry<T, K> | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: (target: T, kind: K) => void,
  ) {}

  /** Queues `kind` for `handle.target` at `at` (ms since the epoch). A past time fires on the next timer turn. */
  schedule(handle: Deadlines<T>, at: number, kind: K): void {
    this.enqueue(handle, at, kind, this.seq);
    this.seq += 2;
  }

  /**
   * From `onDue` only, for the handle whose deadline is firing: queues its next deadline in the
   * place kept for it when the firing one was scheduled, so among entries due at the same instant
   * it fires where a `schedule` call made right after the firing one's would have. Once per firing
   * deadline, and not for a deadline itself queued by `follow` (one place is kept, not a chain);
   * nothing is queued when the handle was cancelled meanwhile (in `onDue`) or after `stop`.
   */
  follow(handle: Deadlines<T>, at: number, kind: K): void {
    const due = this.due;
    if (!this.firing || (due !== undefined && due.handle !== handle))
      throw new Error('DeadlineScheduler.follow is only for the handle whose deadline is firing');
    if (due !== undefined && due.seq % 2 === 1)
      throw new Error('DeadlineScheduler.follow cannot follow a deadline queued by follow');
    if (due === undefined || due.generation !== handle.generation) return;
    this.due = undefined;
    this.enqueue(handle, at, kind, due.seq + 1);
  }

  private enqueue(handle: Deadlines<T>, at: number, kind: K, seq: number): void {
    this.push({ at, seq, handle, generation: handle.generation, kind });
    handle.pending++;
    // While firing, arm() runs once at the end; arming here would only churn the timer.
    if (!this.firing && at < this.armedAt) this.arm();
  }

  /** Drops every entry queued for the handle (lazily: they become tombstones). */
  cancel(handle: Deadlines<T>): void {
    handle.generation++;
    this.stale += handle.pending;
    handle.pending = 0;
    if (this.stale >= COMPACT_MIN_STALE && this.stale * 2 > this.heap.length) this.compact();
    else if (!this.firing) this.arm();
  }

  stats(): SchedulerStats {
    return {
      entries: this.heap.length,
      live: this.heap.length - this.stale,
      stale: this.stale,
      armedTimers: this.timer === undefined ? 0 : 1,
      nextAt: this.timer === undefined ? undefined : this.armedAt,
    };
  }

  /** Disarms the timer and forgets every entry (shutdown). */
  stop(): void {
    this.due = undefined;
    this.disarm();
    for (const entry of this.heap) entry.handle.pending = 0;
    this.heap = [];
    this.stale = 0;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    this.firing = true;
    try {
      const now = this.clock.now();
      for (let top: Entry<T, K> | undefined = this.heap[0]; top !== undefined && top.at <= now; top = this.heap[0]) {
        this.pop();
        if (top.generation !== top.handle.generation) {
          this.stale--;
          continue;
        }
        top.handle.pending--;
        // onDue must not throw (the hub guards its callbacks); one bad entry must not stall the rest.
        this.due = top;
        this.onDue(top.handle.target, top.kind);
        this.due = undefined;
      }
    } finally {
      this.due = undefined;
      this.firing = false;
      this.arm();
    }
  }

  /** Arms the one timer for the earliest live entry, discarding tombstones on top. */
  private arm(): void {
    let top: Entry<T, K> | undefined = this.heap[0];
    while (top !== undefined && top.generation !== top.handle.generation) {
      this.pop();
      this.stale--;
      top = this.heap[0];
    }
    if (top === undefined) {
      this.disarm();
      return;
    }
    if (this.timer !== undefined && top.at === this.armedAt) return;
    this.disarm();
    this.armedAt = top.at;
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, top.at - this.clock.now()));
    this.timer = this.clock.setTimeout(() => this.fire(), delay);
    // The scheduler alone must not keep a process (or a test worker) alive.
    this.timer.unref?.();
  }

  private disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
  }

  private compact(): void {
    this.heap = this.heap.filter((e) => e.generation === e.handle.generation);
    this.stale = 0;
    // Bottom-up heapify: O(n).
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
    if (!this.firing) this.arm();
  }

  private push(entry: Entry<T, K>): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    heap[0] = last;
    this.down(0);
  }

  private down(start: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[start];
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right], heap[left]) ? right : left;
      if (!before(heap[child], entry)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = entry;
  }
}

function before<T, K>(a: Entry<T, K>, b: Entry<T, K>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
