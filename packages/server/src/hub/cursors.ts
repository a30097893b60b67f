import { NO_EPOCH, type Cursor } from '../history/types.js';
import {
  StreamLayout,
  encodePositionEntry,
  positionEntryLength,
  streamKey,
  writeAscii,
  writePositionEntry,
} from '../history/streams.js';
import type { PositionSource } from './types.js';

/**
 * One flat array holds every stream read, `WIDTH` slots each: its name, its key in a position, its
 * epoch (undefined while the cursor is unknown: no head or event told us where the connection
 * stands yet) and its offset. A connection reads a handful of streams, so one array searched
 * linearly costs a few hundred bytes less per connection than a Map and an object per stream, and
 * is as fast; a connection reading many (joined channels) also keeps a name → slot index.
 */
type Slot = string | number | undefined;
const NAME = 0;
const KEY = 1;
const EPOCH = 2;
const OFFSET = 3;
const WIDTH = 4;
/** Streams read from which a name → slot index is kept (below, a linear search is as fast). */
const INDEX_FROM = 9;
/** Shared by every connection that reads nothing yet; never written (only found slots are). */
const NO_SLOTS: readonly Slot[] = [];

/**
 * Where one connection stands in each stream it reads, and the position that encodes it. The
 * position is encoded when asked for, not kept: a delivery writes it straight into the frame
 * (`writePosition`), and a kept string (~60 bytes) sat on every idle connection from its
 * `session_created` on.
 */
export class SessionCursors implements PositionSource {
  /** `WIDTH` slots per stream read, in the order the streams were added. */
  private slots: Slot[] = NO_SLOTS as Slot[];
  /** name → index of its first slot, while `INDEX_FROM` or more streams are read. */
  private index: Map<string, number> | undefined;
  /**
   * Set when an event moved a known cursor into another epoch: the stream's history was lost and
   * started again (see `EventLog`), so events between the two may be gone. The connection must be
   * told (`STREAM_RESET`), not moved on silently.
   */
  historyLost = false;

  constructor(private readonly layout: StreamLayout = StreamLayout.SINGLE) {}

  /** The streams read now. */
  *names(): IterableIterator<string> {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += WIDTH) yield slots[i + NAME] as string;
  }

  get size(): number {
    return this.slots.length / WIDTH;
  }

  get(stream: string): Cursor | undefined {
    const i = this.find(stream);
    if (i < 0) return undefined;
    const epoch = this.slots[i + EPOCH] as string | undefined;
    return epoch === undefined ? undefined : { epoch, offset: this.slots[i + OFFSET] as number };
  }

  /**
   * Replaces the set of streams read: kept streams keep their cursors, dropped ones are forgotten.
   * Returns the streams added, whose cursors are unknown until `place`d.
   */
  setStreams(streams: readonly string[]): string[] {
    const wanted = new Set(streams);
    const old = this.slots;
    const next: Slot[] = [];
    const kept = new Set<string>();
    for (let i = 0; i < old.length; i += WIDTH) {
      const name = old[i + NAME] as string;
      if (!wanted.has(name)) continue;
      kept.add(name);
      next.push(name, old[i + KEY], old[i + EPOCH], old[i + OFFSET]);
    }
    const added: string[] = [];
    for (const name of wanted) {
      if (kept.has(name)) continue;
      next.push(name, streamKey(name), undefined, 0);
      added.push(name);
    }
    if (next.length === old.length && added.length === 0) return added;
    // A copy is exactly as long as its contents; `next` grew by `push` and has spare capacity.
    this.slots = next.length === 0 ? (NO_SLOTS as Slot[]) : next.slice();
    this.index = undefined;
    if (next.length >= INDEX_FROM * WIDTH) {
      this.index = new Map();
      for (let i = 0; i < next.length; i += WIDTH) this.index.set(next[i + NAME] as string, i);
    }
    return added;
  }

  /** Sets a cursor that is still unknown (a head read); a cursor an event already set wins. */
  place(stream: string, cursor: Cursor): void {
    const i = this.find(stream);
    if (i < 0 || this.slots[i + EPOCH] !== undefined) return;
    this.set(i, cursor);
  }

  /** Sets a stream's cursor whatever it was (recovery decides). */
  reset(stream: string, cursor: Cursor): void {
    const i = this.find(stream);
    if (i >= 0) this.set(i, cursor);
  }

  /** The key → stream map, for matching a presented position. */
  byKey(): Map<string, string> {
    const out = new Map<string, string>();
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += WIDTH) out.set(slots[i + KEY] as string, slots[i + NAME] as string);
    return out;
  }

  /**
   * Moves past an event with these cursors. Returns false when the event is not new in any stream
   * read (a second copy); true when it is new in one, or touches no stream read with a known cursor.
   */
  advance(cursors: ReadonlyMap<string, Cursor>): boolean {
    let fresh = false;
    let overlap = false;
    const slots = this.slots;
    // Walk the smaller side: an event to 10,000 users costs each recipient one lookup, not 10,000.
    if (cursors.size * WIDTH <= slots.length) {
      for (const [name, cursor] of cursors) {
        const i = this.find(name);
        if (i < 0) continue;
        overlap = true;
        if (this.visit(i, cursor)) fresh = true;
      }
    } else {
      for (let i = 0; i < slots.length; i += WIDTH) {
        const cursor = cursors.get(slots[i + NAME] as string);
        if (cursor === undefined) continue;
        overlap = true;
        if (this.visit(i, cursor)) fresh = true;
      }
    }
    return fresh || !overlap;
  }

  /** Whether an event with these cursors is new in some stream read (nothing is changed). */
  isNew(cursors: ReadonlyMap<string, Cursor>): boolean {
    let overlap = false;
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += WIDTH) {
      const cursor = cursors.get(slots[i + NAME] as string);
      if (cursor === undefined) continue;
      overlap = true;
      const epoch = slots[i + EPOCH] as string | undefined;
      if (epoch === undefined || epoch !== cursor.epoch || cursor.offset > (slots[i + OFFSET] as number)) return true;
    }
    return !overlap;
  }

  /** The position a client stores: every stream whose cursor is known. */
  position(): string {
    let out = this.layout.positionTag;
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += WIDTH) {
      const epoch = slots[i + EPOCH] as string | undefined;
      if (epoch !== undefined) out += encodePositionEntry(slots[i + KEY] as string, epoch, slots[i + OFFSET] as number);
    }
    return out;
  }

  /** The length of `position()`, without making it. */
  positionLength(): number {
    let length = this.layout.positionTag.length;
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += WIDTH) {
      const epoch = slots[i + EPOCH] as string | undefined;
      if (epoch !== undefined)
        length += positionEntryLength(slots[i + KEY] as string, epoch, slots[i + OFFSET] as number);
    }
    return length;
  }

  /**
   * Writes `position()` into `into` at `at` and returns where it ends. A delivery writes the
   * position straight into the recipient's frame: a string per recipient, kept until its next event,
   * was most of the delivery loop's garbage (10,000 recipients of one event made 10,000 of them).
   */
  writePosition(into: Uint8Array, at: number): number {
    let end = writeAscii(into, at, this.layout.positionTag);
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += WIDTH) {
      const epoch = slots[i + EPOCH] as string | undefined;
      if (epoch !== undefined)
        end = writePositionEntry(into, end, slots[i + KEY] as string, epoch, slots[i + OFFSET] as number);
    }
    return end;
  }

  /** The index of `stream`'s first slot, or -1 when it is not read. */
  private find(stream: string): number {
    if (this.index !== undefined) return this.index.get(stream) ?? -1;
    const slots = this.slots;
    for (let i = 0; i < slots.length; i += WIDTH) if (slots[i + NAME] === stream) return i;
    return -1;
  }

  /** Moves the cursor at slot `i` to `cursor` when the event is new there; returns whether it was. */
  private visit(i: number, cursor: Cursor): boolean {
    const slots = this.slots;
    const epoch = slots[i + EPOCH] as string | undefined;
    if (epoch !== undefined) {
      if (epoch === cursor.epoch) {
        if (cursor.offset <= (slots[i + OFFSET] as number)) return false;
      } else if (epoch !== NO_EPOCH) this.historyLost = true;
    }
    this.set(i, cursor);
    return true;
  }

  private set(i: number, cursor: Cursor): void {
    this.slots[i + EPOCH] = cursor.epoch;
    this.slots[i + OFFSET] = cursor.offset;
  }
}
