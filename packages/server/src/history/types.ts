import type { PublishEnvelope } from '../hub/types.js';
import type { StreamLayout } from './streams.js';

/**
 * The event log behind recovery: one stream per addressee. An event to users U, scopes S and
 * channels C is appended to the stream of each user in U, of each scope in S and each of its
 * ancestors up to `*`, and of each channel in C (`StreamLayout.streamsOf`). A connection reads a small set of
 * streams — its user, one per scope it reads, one per joined channel — so recovery costs what the
 * connection missed, not what the whole deployment published.
 *
 * Each stream has contiguous offsets 1, 2, 3… and an epoch. The epoch is chosen when the stream is
 * created and changes only when its history may have been lost (a wiped store, a Redis that lost
 * its data): a cursor of another epoch cannot be continued. Contiguity is what makes "nothing is
 * missing after offset O" provable: the first entry read after O must be O+1.
 *
 * Implementations: `store-log.ts` (embedded: the SQLite/PostgreSQL store) and, in cluster mode,
 * `redis-log.ts` (shared by every node, so recovery works whichever node a client lands on).
 */

/** Where a reader stands in one stream: the last offset it has, in `epoch`. */
export interface Cursor {
  /** `NO_EPOCH` for a stream that did not exist yet: offset 0 then continues in any epoch. */
  epoch: string;
  offset: number;
}

/** The epoch of a stream nobody has appended to yet (its head is offset 0). */
export const NO_EPOCH = '';

/** An appended event with its cursor in every stream it went to. */
export interface LoggedEvent {
  envelope: PublishEnvelope;
  /** ms since the Unix epoch when appended; never decreases within a log. */
  at: number;
  /** Append order within the log, one more per event: the tie-break after `at` when merging streams. */
  seq: number;
  /** stream → the event's cursor in it. */
  cursors: ReadonlyMap<string, Cursor>;
}

/** One entry of one stream. */
export interface StreamEntry {
  offset: number;
  envelope: PublishEnvelope;
  at: number;
  seq: number;
}

export interface StreamRead {
  /** Entries strictly after the cursor, in offset order, at most the limit. */
  entries: StreamEntry[];
  /**
   * False when the log cannot prove nothing is missing after the cursor: another epoch, history
   * trimmed past it, an offset beyond the head, or more entries than the limit.
   */
  complete: boolean;
  /** The stream's head when read (where a reader that cannot continue starts). */
  head: Cursor;
}

export interface EventLog {
  readonly kind: 'store' | 'redis' | 'memory';
  /** How scope streams are laid out (which streams an event goes to and a scope read means). */
  readonly layout: StreamLayout;
  /**
   * Appends the event to each stream of `layout.streamsOf(envelope)` and assigns its cursors; appending an
   * id already appended (a retried publish) returns the first cursors and appends nothing.
   * Throws TetherError(PUBLISH_FAILED) if the log is unreachable.
   */
  append(envelope: PublishEnvelope): Promise<LoggedEvent>;
  /** Entries of `stream` strictly after `from`, at most `limit`. */
  read(stream: string, from: Cursor, limit: number): Promise<StreamRead>;
  /** The head of each stream (`{epoch: NO_EPOCH, offset: 0}` for a stream never appended to). */
  heads(streams: readonly string[]): Promise<Map<string, Cursor>>;
  /** Applies retention (age and size, per stream), returns how many entries were removed. */
  trim(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Whether a read from `cursor` would start before one from `known` (or there is none yet): the same
 * epoch and a lower offset. A cursor of another epoch is never taken as earlier.
 */
export function startsEarlier(cursor: Cursor, known: Cursor | undefined): boolean {
  return known === undefined || (known.epoch === cursor.epoch && cursor.offset < known.offset);
}

/**
 * Whether a reader at `from` can continue in a stream whose head is `head`: same epoch (or the
 * stream did not exist when the reader last looked, offset 0), not beyond the head. When it cannot,
 * the stream's history since `from` is not provable and the read is incomplete.
 */
export function continues(from: Cursor, head: Cursor): boolean {
  return (
    Number.isSafeInteger(from.offset) &&
    from.offset >= 0 &&
    from.offset <= head.offset &&
    (from.epoch === head.epoch || (from.epoch === NO_EPOCH && from.offset === 0))
  );
}

/**
 * Whether `fetched` entries read after `from` (asking for `limit + 1`) prove nothing is missing:
 * the first is `from + 1` (retention only removes the oldest) and the limit did not cut them.
 */
export function contiguous(from: Cursor, first: number | undefined, fetched: number, limit: number): boolean {
  return first === from.offset + 1 && fetched <= limit;
}
