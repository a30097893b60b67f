import type { PublishEnvelope } from '../hub/types.js';

/**
 * The event log behind recovery. Every published event gets a position: an offset that only grows
 * within an epoch. The epoch changes whenever history may have been lost (a new Redis, a wiped
 * store), so a client presenting a position from another epoch is told `recovered: false`.
 *
 * Implementations: `store-log.ts` (embedded: the SQLite/PostgreSQL store) and, in cluster mode,
 * Redis Streams (shared by every node, so recovery works whichever node a client lands on).
 */
export interface LoggedEvent {
  /**
   * Opaque to clients, monotonic within `epoch`. Every implementation ends it with the event's
   * sequence number in the epoch (`42`, or `<ms>-42` in Redis), one more per event, so the hub can
   * compare positions (`offsetRank`) and a reader can prove that nothing is missing.
   */
  offset: string;
  epoch: string;
  envelope: PublishEnvelope;
  /** ms since the epoch, when appended */
  at: number;
}

export interface ReadResult {
  events: LoggedEvent[];
  /**
   * False when the log cannot prove nothing is missing after `offset`: another epoch, history
   * trimmed past the position, or more events than the caller's limit.
   */
  complete: boolean;
}

export interface EventLog {
  readonly kind: 'store' | 'redis' | 'memory';
  /** The current epoch (stable while history is intact). */
  epoch(): string;
  /** Appends and assigns the position. Throws TetherError(PUBLISH_FAILED) if the log is unreachable. */
  append(envelope: PublishEnvelope): Promise<LoggedEvent>;
  /** Events strictly after `offset` in `epoch`, in order, at most `limit`. */
  readAfter(epoch: string, offset: string, limit: number): Promise<ReadResult>;
  /** The position of the newest event (what a fresh client starts from). */
  head(): Promise<{ epoch: string; offset: string }>;
  /**
   * The head without a round trip, when this process appends every event itself and so knows it
   * exactly (the embedded store log). Absent or undefined: call `head()`.
   */
  knownHead?(): { epoch: string; offset: string } | undefined;
  /** Applies retention (age and size), returns how many events were removed. */
  trim(): Promise<number>;
  close(): Promise<void>;
}

/** How a position travels on the wire: `<epoch>:<offset>`, opaque to clients. */
export function formatPosition(epoch: string, offset: string): string {
  return `${epoch}:${offset}`;
}

export function parsePosition(position: unknown): { epoch: string; offset: string } | undefined {
  if (typeof position !== 'string' || position.length > 200) return undefined;
  const i = position.indexOf(':');
  if (i <= 0 || i === position.length - 1) return undefined;
  return { epoch: position.slice(0, i), offset: position.slice(i + 1) };
}

/**
 * The per-epoch sequence number an offset ends with (`"42"` → 42, `"1700000000000-42"` → 42);
 * NaN when the offset is not one of ours. Positions of one epoch compare by rank.
 */
export function offsetRank(offset: string): number {
  const dash = offset.lastIndexOf('-');
  const digits = dash < 0 ? offset : offset.slice(dash + 1);
  return /^\d{1,15}$/.test(digits) ? Number(digits) : Number.NaN;
}
