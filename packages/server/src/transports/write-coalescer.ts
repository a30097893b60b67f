import type { PublishBacklog } from '../hub/types.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

/** A stream that can hold writes back: `net.Socket`. */
export interface Corkable {
  cork(): void;
  uncork(): void;
  /** How many `cork()` calls wait for their `uncork()` (`net.Socket`'s count). */
  readonly writableCorked: number;
}

/** The TCP socket under a WebSocket connection: frames are written to it finished (`ws-frames.ts`). */
export interface FrameSocket extends Corkable {
  write(frame: Buffer): boolean;
}

export interface WriteCoalescerOptions {
  /** Runs `flush` once the current turn's I/O callbacks ran (default `setImmediate`). */
  schedule?: (flush: () => void) => void;
  /**
   * Publishes on their way to the sockets. While some are pending at the end of a turn, held
   * writes wait for them (up to `maxHoldMs`), so their frames join the same write.
   */
  backlog?: PublishBacklog;
  /** The longest held writes wait for pending publishes after their turn ended (default 1 ms). */
  maxHoldMs?: number;
  /** Times that wait (default the system clock). */
  clock?: Clock;
}

/** A transport's coalescer: held while `hub.backlog` is busy, for `writeHoldMs` at most. */
export function transportCoalescer(deps: {
  hub: { backlog?: PublishBacklog };
  writeHoldMs?: number;
  clock: Clock;
}): WriteCoalescer {
  return new WriteCoalescer({
    ...(deps.hub.backlog === undefined ? {} : { backlog: deps.hub.backlog }),
    ...(deps.writeHoldMs === undefined ? {} : { maxHoldMs: deps.writeHoldMs }),
    clock: deps.clock,
  });
}

/** No socket held. */
const IDLE = 0;
/** Sockets held; the end of the turn will flush them (or start waiting). */
const TURN = 1;
/** Sockets held past their turn, until the backlog empties or `maxHoldMs` is up. */
const WAITING = 2;

/**
 * Holds each socket's writes for the rest of the event-loop turn so they leave in one syscall, and
 * past it while publishes are on their way, so a burst's frames to a socket leave together.
 *
 * A publish reaching many connections, or a burst of publishes reaching one, would otherwise cost
 * one `write(2)` per frame per socket (~10 µs each here). The first `hold()` of a socket in a turn
 * corks it; one `setImmediate` uncorks every held socket after the turn's I/O callbacks ran.
 *
 * Under a burst, publishes do not arrive in one turn: the event log commits them in groups, and the
 * group that came in during one delivery is delivered in a later turn. Flushing at each turn's end
 * then writes one frame per socket per group (half of the writes of a 1,000-recipient burst with 4
 * publishes in flight were single frames). So when a turn ends while publishes are pending
 * (`backlog.busy`), the held sockets wait until the backlog empties or for `maxHoldMs`, whichever
 * comes first. The bound counts from the end of the turn: a delivery to 1,000 sockets takes about a
 * millisecond itself, so a bound counted from the first write held would rarely leave time to wait.
 *
 * When the backlog empties and publishes are not coming in a burst (`BURST_GAP_MS`), held sockets
 * are flushed at once, even within the turn: a lone publish's frames then leave before its HTTP
 * answer is written and without waiting for the turn's end. In a burst they stay held to the turn's
 * end, by which the I/O of the next turn may have brought the next publishes. Without pending
 * publishes nothing waits past the turn.
 *
 * Measured on this 2-core machine through the whole gateway (hub routing + encode + write), 500
 * sockets, bursts of 10 publishes each reaching all of them, server CPU per delivery:
 * `/ws` 2.5 µs corked vs 7.9 µs uncorked (3×); Socket.IO (websocket transport) 5.5 vs 9.7 µs.
 *
 * @example
 *   const coalescer = new WriteCoalescer({ backlog: hub.backlog });
 *   coalescer.write(rawSocket, frame); // leaves with this turn's other writes to rawSocket
 */
export class WriteCoalescer {
  private held: Corkable[] = [];
  private state = IDLE;
  private timer: TimerHandle | undefined;
  private readonly schedule: (flush: () => void) => void;
  private readonly backlog: PublishBacklog | undefined;
  private readonly maxHoldMs: number;
  private readonly clock: Clock;

  constructor(options: WriteCoalescerOptions = {}) {
    this.schedule = options.schedule ?? setImmediate;
    this.backlog = options.backlog;
    this.maxHoldMs = options.maxHoldMs ?? 1;
    this.clock = options.clock ?? systemClock;
    // The last pending publish was delivered. Waiting: the wait is over. Otherwise, unless
    // publishes are arriving in a burst, its frames leave now, before its HTTP answer is written and
    // without waiting for the turn's end (~0.5 ms of an event's latency at low load).
    this.backlog?.onIdle((bursting) => {
      if (this.state === WAITING || (this.state === TURN && !bursting)) this.flush();
    });
  }

  /**
   * Corks `socket` until the end of the current turn (no-op when already held). A corked socket is
   * held already: nothing else leaves one corked past a synchronous write (`ws` corks around a
   * frame's two chunks), so the socket's own count answers without a set lookup per write.
   */
  hold(socket: Corkable): void {
    if (socket.writableCorked !== 0) return;
    socket.cork();
    this.held.push(socket);
    if (this.state === IDLE) {
      this.state = TURN;
      this.schedule(this.turnEnded);
    }
  }

  /** Writes a finished frame to `socket`, held with its other writes (corked before the write). */
  write(socket: FrameSocket, frame: Buffer): void {
    this.hold(socket);
    socket.write(frame);
  }

  /** Uncorks every held socket now (also called when holding ends). */
  readonly flush = (): void => {
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    const sockets = this.held;
    this.held = [];
    this.state = IDLE;
    for (const socket of sockets) socket.uncork();
  };

  private readonly turnEnded = (): void => {
    // Flushed already (an explicit `flush`), or a later round that this callback does not own.
    if (this.state !== TURN) return;
    if (this.backlog?.busy !== true || this.maxHoldMs <= 0) {
      this.flush();
      return;
    }
    this.state = WAITING;
    this.timer = this.clock.setTimeout(this.flush, this.maxHoldMs);
  };
}
