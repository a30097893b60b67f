import { NO_EPOCH, type Cursor } from '../history/types.js';
import { StreamLayout, encodePosition, streamKey } from '../history/streams.js';

interface Entry {
  readonly key: string;
  epoch: string;
  offset: number;
  /** False until the stream's head (or an event of it) told us where this connection stands. */
  known: boolean;
}

/**
 * Where one connection stands in each stream it reads, and the position that encodes it. The
 * position is re-encoded only after a change, so a connection that receives an event pays for one
 * short string per delivery, whatever else was published.
 */
export class SessionCursors {
  private readonly entries = new Map<string, Entry>();
  private encoded: string | undefined;
  /**
   * Set when an event moved a known cursor into another epoch: the stream's history was lost and
   * started again (see `EventLog`), so events between the two may be gone. The connection must be
   * told (`STREAM_RESET`), not moved on silently.
   */
  historyLost = false;

  constructor(private readonly layout: StreamLayout = StreamLayout.SINGLE) {}

  /** The streams read now. */
  names(): IterableIterator<string> {
    return this.entries.keys();
  }

  get size(): number {
    return this.entries.size;
  }

  get(stream: string): Cursor | undefined {
    const entry = this.entries.get(stream);
    return entry?.known === true ? { epoch: entry.epoch, offset: entry.offset } : undefined;
  }

  /**
   * Replaces the set of streams read: kept streams keep their cursors, dropped ones are forgotten.
   * Returns the streams added, whose cursors are unknown until `place`d.
   */
  setStreams(streams: readonly string[]): string[] {
    const wanted = new Set(streams);
    let changed = false;
    for (const name of [...this.entries.keys()]) {
      if (!wanted.has(name)) {
        this.entries.delete(name);
        changed = true;
      }
    }
    const added: string[] = [];
    for (const name of wanted) {
      if (this.entries.has(name)) continue;
      this.entries.set(name, { key: streamKey(name), epoch: NO_EPOCH, offset: 0, known: false });
      added.push(name);
    }
    if (changed || added.length > 0) this.encoded = undefined;
    return added;
  }

  /** Sets a cursor that is still unknown (a head read); a cursor an event already set wins. */
  place(stream: string, cursor: Cursor): void {
    const entry = this.entries.get(stream);
    if (entry === undefined || entry.known) return;
    this.set(entry, cursor);
  }

  /** Sets a stream's cursor whatever it was (recovery decides). */
  reset(stream: string, cursor: Cursor): void {
    const entry = this.entries.get(stream);
    if (entry !== undefined) this.set(entry, cursor);
  }

  /** The key → stream map, for matching a presented position. */
  byKey(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [name, entry] of this.entries) out.set(entry.key, name);
    return out;
  }

  /**
   * Moves past an event with these cursors. Returns false when the event is not new in any stream
   * read (a second copy); true when it is new in one, or touches no stream read with a known cursor.
   */
  advance(cursors: ReadonlyMap<string, Cursor>): boolean {
    let fresh = false;
    let overlap = false;
    const visit = (entry: Entry, cursor: Cursor): void => {
      overlap = true;
      if (entry.known && entry.epoch === cursor.epoch && cursor.offset <= entry.offset) return;
      if (entry.known && entry.epoch !== cursor.epoch && entry.epoch !== NO_EPOCH) this.historyLost = true;
      this.set(entry, cursor);
      fresh = true;
    };
    // Walk the smaller side: an event to 10,000 users costs each recipient one lookup, not 10,000.
    if (cursors.size <= this.entries.size) {
      for (const [name, cursor] of cursors) {
        const entry = this.entries.get(name);
        if (entry !== undefined) visit(entry, cursor);
      }
    } else {
      for (const [name, entry] of this.entries) {
        const cursor = cursors.get(name);
        if (cursor !== undefined) visit(entry, cursor);
      }
    }
    return fresh || !overlap;
  }

  /** Whether an event with these cursors is new in some stream read (nothing is changed). */
  isNew(cursors: ReadonlyMap<string, Cursor>): boolean {
    let overlap = false;
    for (const [name, entry] of this.entries) {
      const cursor = cursors.get(name);
      if (cursor === undefined) continue;
      overlap = true;
      if (!entry.known || entry.epoch !== cursor.epoch || cursor.offset > entry.offset) return true;
    }
    return !overlap;
  }

  /** The position a client stores: every stream whose cursor is known. */
  position(): string {
    if (this.encoded !== undefined) return this.encoded;
    const known: Entry[] = [];
    for (const entry of this.entries.values()) if (entry.known) known.push(entry);
    return (this.encoded = encodePosition(known, this.layout));
  }

  private set(entry: Entry, cursor: Cursor): void {
    entry.epoch = cursor.epoch;
    entry.offset = cursor.offset;
    entry.known = true;
    this.encoded = undefined;
  }
}
