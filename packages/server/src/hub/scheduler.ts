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
/** Entries the heap's arrays hold at least. */
const MIN_CAPACITY = 16;
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
  /**
   * The heap, one entry per index across these arrays (struct of arrays): each entry's time, its
   * insertion order (`seq`: entries due at the same instant fire in the order they were scheduled;
   * each entry takes two numbers, the odd one after it kept for the deadline `follow` queues when it
   * fires) and its handle's generation when queued are plain doubles in typed arrays. An object per
   * entry cost ~64 bytes and a 16-byte box for its time (ms since the epoch is not a small integer),
   * on every connection.
   */
  private ats = new Float64Array(MIN_CAPACITY);
  private seqs = new Float64Array(MIN_CAPACITY);
  private generations = new Float64Array(MIN_CAPACITY);
  private handles: Deadlines<T>[] = [];
  private kinds: K[] = [];
  private size = 0;
  private seq = 0;
  private stale = 0;
  private timer: TimerHandle | undefined;
  private armedAt = Infinity;
  private firing = false;
  /** The entry whose `onDue` is running (what `follow` chains after): its handle, `seq` and generation. */
  private dueHandle: Deadlines<T> | undefined;
  private dueSeq = 0;
  private dueGeneration = 0;

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
    const due = this.dueHandle;
    if (!this.firing || (due !== undefined && due !== handle))
      throw new Error('DeadlineScheduler.follow is only for the handle whose deadline is firing');
    if (due !== undefined && this.dueSeq % 2 === 1)
      throw new Error('DeadlineScheduler.follow cannot follow a deadline queued by follow');
    if (due === undefined || this.dueGeneration !== handle.generation) return;
    this.dueHandle = undefined;
    this.enqueue(handle, at, kind, this.dueSeq + 1);
  }

  private enqueue(handle: Deadlines<T>, at: number, kind: K, seq: number): void {
    this.push(at, seq, handle, kind);
    handle.pending++;
    // While firing, arm() runs once at the end; arming here would only churn the timer.
    if (!this.firing && at < this.armedAt) this.arm();
  }

  /** Drops every entry queued for the handle (lazily: they become tombstones). */
  cancel(handle: Deadlines<T>): void {
    handle.generation++;
    this.stale += handle.pending;
    handle.pending = 0;
    if (this.stale >= COMPACT_MIN_STALE && this.stale * 2 > this.size) this.compact();
    else if (!this.firing) this.arm();
  }

  stats(): SchedulerStats {
    return {
      entries: this.size,
      live: this.size - this.stale,
      stale: this.stale,
      armedTimers: this.timer === undefined ? 0 : 1,
      nextAt: this.timer === undefined ? undefined : this.armedAt,
    };
  }

  /** Disarms the timer and forgets every entry (shutdown). */
  stop(): void {
    this.dueHandle = undefined;
    this.disarm();
    for (let i = 0; i < this.size; i++) this.handles[i]!.pending = 0;
    this.handles = [];
    this.kinds = [];
    this.size = 0;
    this.resize(MIN_CAPACITY);
    this.stale = 0;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    this.firing = true;
    try {
      const now = this.clock.now();
      while (this.size > 0 && this.ats[0]! <= now) {
        const handle = this.handles[0]!;
        const kind = this.kinds[0]!;
        const seq = this.seqs[0]!;
        const generation = this.generations[0]!;
        this.pop();
        if (generation !== handle.generation) {
          this.stale--;
          continue;
        }
        handle.pending--;
        // onDue must not throw (the hub guards its callbacks); one bad entry must not stall the rest.
        this.dueHandle = handle;
        this.dueSeq = seq;
        this.dueGeneration = generation;
        this.onDue(handle.target, kind);
        this.dueHandle = undefined;
      }
    } finally {
      this.dueHandle = undefined;
      this.firing = false;
      this.arm();
    }
  }

  /** Arms the one timer for the earliest live entry, discarding tombstones on top. */
  private arm(): void {
    while (this.size > 0 && this.generations[0] !== this.handles[0]!.generation) {
      this.pop();
      this.stale--;
    }
    if (this.size === 0) {
      this.disarm();
      return;
    }
    const at = this.ats[0]!;
    if (this.timer !== undefined && at === this.armedAt) return;
    this.disarm();
    this.armedAt = at;
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, at - this.clock.now()));
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
    let kept = 0;
    for (let i = 0; i < this.size; i++) {
      if (this.generations[i] !== this.handles[i]!.generation) continue;
      this.move(i, kept++);
    }
    this.truncate(kept);
    this.stale = 0;
    // Bottom-up heapify: O(n).
    for (let i = (this.size >> 1) - 1; i >= 0; i--) this.down(i);
    if (!this.firing) this.arm();
  }

  /** Entry `from` copied to index `to`. */
  private move(from: number, to: number): void {
    this.ats[to] = this.ats[from]!;
    this.seqs[to] = this.seqs[from]!;
    this.generations[to] = this.generations[from]!;
    this.handles[to] = this.handles[from]!;
    this.kinds[to] = this.kinds[from]!;
  }

  /** Keeps the first `size` entries; the typed arrays shrink when a quarter or less is used. */
  private truncate(size: number): void {
    this.size = size;
    this.handles.length = size;
    this.kinds.length = size;
    if (this.ats.length > MIN_CAPACITY && size * 4 <= this.ats.length) this.resize(Math.max(MIN_CAPACITY, size * 2));
  }

  /** The typed arrays at `capacity` entries (grown or shrunk), the live entries kept. */
  private resize(capacity: number): void {
    const copy = (old: Float64Array) => {
      const next = new Float64Array(capacity);
      next.set(old.subarray(0, Math.min(this.size, capacity)));
      return next;
    };
    this.ats = copy(this.ats);
    this.seqs = copy(this.seqs);
    this.generations = copy(this.generations);
  }

  private push(at: number, seq: number, handle: Deadlines<T>, kind: K): void {
    if (this.size === this.ats.length) this.resize(this.size * 2);
    let i = this.size++;
    this.handles.push(handle);
    this.kinds.push(kind);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(at, seq, this.ats[parent]!, this.seqs[parent]!)) break;
      this.move(parent, i);
      i = parent;
    }
    this.place(i, at, seq, handle.generation, handle, kind);
  }

  private place(i: number, at: number, seq: number, generation: number, handle: Deadlines<T>, kind: K): void {
    this.ats[i] = at;
    this.seqs[i] = seq;
    this.generations[i] = generation;
    this.handles[i] = handle;
    this.kinds[i] = kind;
  }

  /** Removes the top entry. */
  private pop(): void {
    const last = this.size - 1;
    if (last > 0) this.move(last, 0);
    this.truncate(last);
    if (last > 1) this.down(0);
  }

  private down(start: number): void {
    const n = this.size;
    const at = this.ats[start]!;
    const seq = this.seqs[start]!;
    const generation = this.generations[start]!;
    const handle = this.handles[start]!;
    const kind = this.kinds[start]!;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child =
        right < n && before(this.ats[right]!, this.seqs[right]!, this.ats[left]!, this.seqs[left]!) ? right : left;
      if (!before(this.ats[child]!, this.seqs[child]!, at, seq)) break;
      this.move(child, i);
      i = child;
    }
    this.place(i, at, seq, generation, handle, kind);
  }
}

/** Entry (`atA`, `seqA`) comes before (`atB`, `seqB`): earlier, or as early and scheduled first. */
function before(atA: number, seqA: number, atB: number, seqB: number): boolean {
  return atA < atB || (atA === atB && seqA < seqB);
}
