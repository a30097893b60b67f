import type { Clock, TimerHandle } from '../util/clock.js';

/** A socket the sweeper can ping and kill: `ws`'s `WebSocket`. */
export interface Pingable {
  ping(): void;
  terminate(): void;
}

interface Beat {
  /** When the next ping is due (no ping outstanding). */
  nextPingAt: number;
  /** When the outstanding ping expires; 0 when none is outstanding. */
  deadline: number;
  /** `performance.now()` of the last ping not yet answered by a pong (round trip); 0 when none. */
  pingAt: number;
}

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  clock: Clock;
  /** Called after a silent socket was terminated. */
  onDead(socket: Pingable): void;
}

/**
 * Server-side heartbeats for `/ws`: one sweep over every socket on a single timer, instead of a
 * timer per socket. Each socket is pinged `intervalMs` after its last sign of life; one that stays
 * silent for `timeoutMs` after a ping is terminated. The sweep runs every `min(interval, timeout)/5`
 * (10 ms – 1 s), so a half-open connection is freed within about interval + timeout (+ two ticks).
 *
 *   sign of life ──interval──▶ ping ──timeout──▶ terminate (unless pong/any frame meanwhile)
 */
export class HeartbeatSweeper {
  private readonly beats = new Map<Pingable, Beat>();
  private readonly tickMs: number;
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly options: HeartbeatOptions) {
    this.tickMs = Math.min(1000, Math.max(10, Math.floor(Math.min(options.intervalMs, options.timeoutMs) / 5)));
  }

  add(socket: Pingable): void {
    this.beats.set(socket, { nextPingAt: this.options.clock.now() + this.options.intervalMs, deadline: 0, pingAt: 0 });
    this.arm();
  }

  remove(socket: Pingable): void {
    this.beats.delete(socket);
  }

  /** A pong or any inbound frame: the peer is alive. */
  alive(socket: Pingable): void {
    const beat = this.beats.get(socket);
    if (beat === undefined) return;
    beat.deadline = 0;
    beat.nextPingAt = this.options.clock.now() + this.options.intervalMs;
  }

  /** A pong: the peer is alive, and the round trip since the last ping (ms), if one was waiting. */
  pong(socket: Pingable): number | undefined {
    const beat = this.beats.get(socket);
    if (beat === undefined) return undefined;
    this.alive(socket);
    if (beat.pingAt === 0) return undefined;
    const rtt = performance.now() - beat.pingAt;
    beat.pingAt = 0;
    return rtt;
  }

  get size(): number {
    return this.beats.size;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.beats.clear();
  }

  /** One pass over every socket (exposed for tests driving a fake clock). */
  sweep(): void {
    const now = this.options.clock.now();
    for (const [socket, beat] of this.beats) {
      if (beat.deadline !== 0) {
        if (now < beat.deadline) continue;
        this.beats.delete(socket);
        socket.terminate();
        this.options.onDead(socket);
      } else if (now >= beat.nextPingAt) {
        beat.deadline = now + this.options.timeoutMs;
        beat.pingAt = performance.now();
        try {
          socket.ping();
        } catch {
          // Not open any more: its close handler removes it.
        }
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
    this.sweep();
    // Idle when no sockets are left; the next add() re-arms.
    if (this.beats.size > 0) this.arm();
  };
}
