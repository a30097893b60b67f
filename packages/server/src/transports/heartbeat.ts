import type { Clock, TimerHandle } from '../util/clock.js';

/** A socket the sweeper can ping and kill: `ws`'s `WebSocket`. */
export interface Pingable {
  ping(): void;
  terminate(): void;
}

/**
 * What the sweeper keeps for one socket, on an object of the caller's (the `/ws` connection): no
 * object and no map entry of the sweeper's own per socket. The times are whole milliseconds since
 * the sweeper's epoch, which it moves forward before they outgrow a small integer: V8 keeps a
 * field of small integers in the object itself, while a field that ever held another number costs
 * a 16-byte box in every object of that shape.
 */
export interface Beat {
  /** When the next ping is due (no ping outstanding). */
  nextPingAt: number;
  /** When the outstanding ping expires; 0 when none is outstanding, -1 once the socket was terminated. */
  deadline: number;
  /** When the last ping not yet answered by a pong was sent (`pingStamp`); 0 when none. */
  pingAt: number;
}

/** The µs clock of `pingStamp` wraps at this (~18 minutes), far beyond any ping timeout. */
const STAMP_WRAP_US = 2 ** 30;

/** Now in µs modulo `STAMP_WRAP_US`, never 0: a small integer with a round trip's precision. */
export function pingStamp(): number {
  // `| 0`: an int32, which V8 stores as a small integer (the remainder of a double may stay a boxed double).
  return ((Math.round(performance.now() * 1000) % STAMP_WRAP_US) + 1) | 0;
}

/** Time since a `pingStamp`, in ms (up to the wrap, ~18 minutes). */
export function msSinceStamp(stamp: number): number {
  return ((pingStamp() - stamp + STAMP_WRAP_US) % STAMP_WRAP_US) / 1000;
}

export interface HeartbeatOptions<S extends Pingable, B extends Beat> {
  intervalMs: number;
  timeoutMs: number;
  clock: Clock;
  /**
   * Called after a silent socket was terminated. The socket stays in the map until its owner removes
   * it (on its `close`); the sweeper does not visit it again.
   */
  onDead(socket: S, beat: B): void;
  /** Longest a sweep runs in one event-loop turn before it yields (ms); default 1. */
  sliceMs?: number;
  /** Runs the rest of a sweep that yielded (default `setImmediate`). */
  defer?: (rest: () => void) => void;
}

/** Sockets visited between two looks at the time (a visit without a ping is ~20 ns, a ping ~20 µs). */
const VISITS_PER_CHECK = 16;

/**
 * Past this many ms since the sweeper's epoch (~12 days) the epoch moves forward, before the times
 * of `Beat` outgrow a small integer (2^31 ms).
 */
const REBASE_AFTER_MS = 2 ** 30;

/**
 * Server-side heartbeats for `/ws`: one sweep over every socket on a single timer, instead of a
 * timer per socket. Each socket is pinged `intervalMs` after its last sign of life; one that stays
 * silent for `timeoutMs` after a ping is terminated. The sweep runs every `min(interval, timeout)/5`
 * (10 ms – 1 s), so a half-open connection is freed within about interval + timeout (+ two ticks).
 *
 *   sign of life ──interval──▶ ping ──timeout──▶ terminate (unless pong/any frame meanwhile)
 *
 * It sweeps a map of the caller's (the transport's table of its connections, `beats`): a socket is
 * in it from `add` until its owner removes it.
 */
export class HeartbeatSweeper<S extends Pingable = Pingable, B extends Beat = Beat> {
  private readonly tickMs: number;
  private readonly sliceMs: number;
  private readonly defer: (rest: () => void) => void;
  private timer: TimerHandle | undefined;
  private stopped = false;
  /** The sweep in progress, between two of its slices. */
  private pass: Iterator<[S, B]> | undefined;
  /** `clock.now()` that the times of every beat count from. */
  private epoch: number;

  constructor(
    private readonly options: HeartbeatOptions<S, B>,
    private readonly beats: Map<S, B> = new Map(),
  ) {
    this.tickMs = Math.min(1000, Math.max(10, Math.floor(Math.min(options.intervalMs, options.timeoutMs) / 5)));
    this.sliceMs = options.sliceMs ?? 1;
    this.defer = options.defer ?? setImmediate;
    this.epoch = options.clock.now();
  }

  /** Starts the socket's heartbeat: sets its beat and puts it in the map. */
  add(socket: S, beat: B): void {
    beat.nextPingAt = this.now() + this.options.intervalMs;
    beat.deadline = 0;
    beat.pingAt = 0;
    this.beats.set(socket, beat);
    this.arm();
  }

  remove(socket: S): void {
    this.beats.delete(socket);
  }

  /** A pong or any inbound frame: the peer is alive. */
  alive(beat: B): void {
    if (beat.deadline === -1) return;
    beat.deadline = 0;
    beat.nextPingAt = this.now() + this.options.intervalMs;
  }

  /** A pong: the peer is alive, and the round trip since the last ping (ms), if one was waiting. */
  pong(beat: B): number | undefined {
    this.alive(beat);
    if (beat.pingAt === 0) return undefined;
    const rtt = msSinceStamp(beat.pingAt);
    beat.pingAt = 0;
    return rtt;
  }

  get size(): number {
    return this.beats.size;
  }

  /** No more sweeps; the map is left to its owner. */
  stop(): void {
    this.stopped = true;
    this.pass = undefined;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One whole pass over every socket, now (exposed for tests driving a fake clock). */
  sweep(): void {
    const now = this.now();
    for (const [socket, beat] of this.beats) this.visit(socket, beat, now);
  }

  /**
   * Ms since the epoch, moving the epoch (and every beat's times) forward when they grow large, or
   * back when the clock stepped back before it.
   */
  private now(): number {
    const elapsed = this.options.clock.now() - this.epoch;
    if (elapsed >= 0 && elapsed < REBASE_AFTER_MS) return elapsed | 0;
    // Kept below the new epoch: enough that no outstanding deadline or due ping reaches 0.
    const shift = elapsed - (this.options.intervalMs + this.options.timeoutMs + 60_000);
    this.epoch += shift;
    for (const beat of this.beats.values()) {
      beat.nextPingAt = Math.max(0, beat.nextPingAt - shift);
      if (beat.deadline > 0) beat.deadline = Math.max(1, beat.deadline - shift);
    }
    return (elapsed - shift) | 0;
  }

  private visit(socket: S, beat: B, now: number): void {
    if (beat.deadline !== 0) {
      if (beat.deadline === -1 || now < beat.deadline) return;
      beat.deadline = -1;
      socket.terminate();
      this.options.onDead(socket, beat);
    } else if (now >= beat.nextPingAt) {
      beat.deadline = now + this.options.timeoutMs;
      beat.pingAt = pingStamp();
      try {
        socket.ping();
      } catch {
        // Not open any more: its close handler removes it.
      }
    }
  }

  private arm(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = this.options.clock.setTimeout(this.tick, this.tickMs);
    this.timer.unref?.();
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    // A pass still going re-arms when it ends.
    if (this.pass !== undefined) return;
    this.pass = this.beats.entries();
    this.continuePass();
  };

  /**
   * Runs the sweep for at most `sliceMs`, then yields to the rest of the loop's work. Connections
   * opened together come due together: at 19,000 connections and a 5 s interval one sweep sent
   * ~3,800 pings (~20 µs each), and held every event behind it for ~75 ms.
   */
  private readonly continuePass = (): void => {
    const pass = this.pass;
    if (pass === undefined || this.stopped) return;
    const now = this.now();
    const until = performance.now() + this.sliceMs;
    for (let visits = 1; ; visits++) {
      const next = pass.next();
      if (next.done === true) {
        this.pass = undefined;
        // Idle when no sockets are left; the next add() re-arms.
        if (this.beats.size > 0) this.arm();
        return;
      }
      this.visit(next.value[0], next.value[1], now);
      if (visits % VISITS_PER_CHECK === 0 && performance.now() >= until) {
        this.defer(this.continuePass);
        return;
      }
    }
  };
}
