import { describe, expect, it } from 'vitest';
import { StreamLayout, decodePosition, encodePosition, streamKey } from '../history/streams.js';
import { NO_EPOCH, type Cursor } from '../history/types.js';
import { SessionCursors } from './cursors.js';

/**
 * The Map-and-object representation `SessionCursors` had before it became one flat array: the
 * reference its behaviour is checked against, operation by operation.
 */
class ReferenceCursors {
  private readonly entries = new Map<string, { key: string; epoch: string; offset: number; known: boolean }>();
  private encoded: string | undefined;
  historyLost = false;

  constructor(private readonly layout: StreamLayout = StreamLayout.SINGLE) {}

  names(): string[] {
    return [...this.entries.keys()];
  }

  get size(): number {
    return this.entries.size;
  }

  get(stream: string): Cursor | undefined {
    const entry = this.entries.get(stream);
    return entry?.known === true ? { epoch: entry.epoch, offset: entry.offset } : undefined;
  }

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

  place(stream: string, cursor: Cursor): void {
    const entry = this.entries.get(stream);
    if (entry === undefined || entry.known) return;
    this.set(entry, cursor);
  }

  reset(stream: string, cursor: Cursor): void {
    const entry = this.entries.get(stream);
    if (entry !== undefined) this.set(entry, cursor);
  }

  byKey(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [name, entry] of this.entries) out.set(entry.key, name);
    return out;
  }

  advance(cursors: ReadonlyMap<string, Cursor>): boolean {
    let fresh = false;
    let overlap = false;
    for (const [name, entry] of this.entries) {
      const cursor = cursors.get(name);
      if (cursor === undefined) continue;
      overlap = true;
      if (entry.known && entry.epoch === cursor.epoch && cursor.offset <= entry.offset) continue;
      if (entry.known && entry.epoch !== cursor.epoch && entry.epoch !== NO_EPOCH) this.historyLost = true;
      this.set(entry, cursor);
      fresh = true;
    }
    return fresh || !overlap;
  }

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

  position(): string {
    if (this.encoded !== undefined) return this.encoded;
    return (this.encoded = encodePosition(
      [...this.entries.values()].filter((entry) => entry.known),
      this.layout,
    ));
  }

  private set(entry: { epoch: string; offset: number; known: boolean }, cursor: Cursor): void {
    entry.epoch = cursor.epoch;
    entry.offset = cursor.offset;
    entry.known = true;
    this.encoded = undefined;
  }
}

/** A small deterministic generator (mulberry32), so a failure replays. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const at = (epoch: string, offset: number): Cursor => ({ epoch, offset });
const event = (...entries: Array<[string, Cursor]>): Map<string, Cursor> => new Map(entries);

describe('SessionCursors', () => {
  it('starts empty and knows nothing of a stream until a head or an event places it', () => {
    const cursors = new SessionCursors();
    expect(cursors.size).toBe(0);
    expect([...cursors.names()]).toEqual([]);
    expect(cursors.position()).toBe('2');
    expect(cursors.setStreams(['u:a', 's:ke', 'u:a'])).toEqual(['u:a', 's:ke']);
    expect(cursors.size).toBe(2);
    expect([...cursors.names()]).toEqual(['u:a', 's:ke']);
    expect(cursors.get('u:a')).toBeUndefined();
    expect(cursors.get('s:other')).toBeUndefined();
    expect(cursors.position()).toBe('2');
    // A head of a stream nobody appended to yet is a known cursor, in no epoch.
    cursors.place('u:a', at(NO_EPOCH, 0));
    expect(cursors.get('u:a')).toEqual({ epoch: NO_EPOCH, offset: 0 });
    expect(decodePosition(cursors.position())).toEqual(new Map([[streamKey('u:a'), { epoch: '', offset: 0 }]]));
  });

  it('lets an event win over a later head read, and reset set whatever it is told', () => {
    const cursors = new SessionCursors();
    cursors.setStreams(['u:a']);
    expect(cursors.advance(event(['u:a', at('e1', 5)]))).toBe(true);
    cursors.place('u:a', at('e1', 2));
    expect(cursors.get('u:a')).toEqual({ epoch: 'e1', offset: 5 });
    cursors.reset('u:a', at('e1', 1));
    expect(cursors.get('u:a')).toEqual({ epoch: 'e1', offset: 1 });
    cursors.place('s:unread', at('e1', 1));
    cursors.reset('s:unread', at('e1', 1));
    expect(cursors.size).toBe(1);
  });

  it('tells a second copy from a new event, and an event to other streams from both', () => {
    const cursors = new SessionCursors();
    cursors.setStreams(['u:a', 's:ke']);
    cursors.place('u:a', at('e1', 3));
    cursors.place('s:ke', at('e2', 7));
    const copy = event(['u:a', at('e1', 3)], ['s:ke', at('e2', 7)], ['s:*', at('e3', 99)]);
    expect(cursors.isNew(copy)).toBe(false);
    expect(cursors.advance(copy)).toBe(false);
    const next = event(['s:ke', at('e2', 8)], ['s:*', at('e3', 100)]);
    expect(cursors.isNew(next)).toBe(true);
    expect(cursors.get('s:ke')).toEqual({ epoch: 'e2', offset: 7 });
    expect(cursors.advance(next)).toBe(true);
    expect(cursors.get('s:ke')).toEqual({ epoch: 'e2', offset: 8 });
    expect(cursors.isNew(event(['c:x', at('e4', 1)]))).toBe(true);
    expect(cursors.advance(event(['c:x', at('e4', 1)]))).toBe(true);
    expect(cursors.historyLost).toBe(false);
  });

  it('flags lost history when a known cursor moves to another epoch, not when it leaves no epoch', () => {
    const cursors = new SessionCursors();
    cursors.setStreams(['u:a', 's:ke']);
    cursors.place('u:a', at(NO_EPOCH, 0));
    cursors.advance(event(['u:a', at('e1', 1)]));
    expect(cursors.historyLost).toBe(false);
    cursors.advance(event(['s:ke', at('e1', 1)]));
    expect(cursors.historyLost).toBe(false);
    cursors.advance(event(['u:a', at('e9', 1)]));
    expect(cursors.historyLost).toBe(true);
    expect(cursors.get('u:a')).toEqual({ epoch: 'e9', offset: 1 });
  });

  it('keeps kept cursors and their order when the streams change, and forgets dropped ones', () => {
    const cursors = new SessionCursors();
    cursors.setStreams(['u:a', 's:ke', 'c:room']);
    cursors.place('u:a', at('e1', 1));
    cursors.place('c:room', at('e1', 4));
    const before = cursors.position();
    expect(cursors.setStreams(['c:room', 'u:a', 's:ke'])).toEqual([]);
    expect(cursors.position()).toBe(before);
    expect(cursors.setStreams(['s:new', 'c:room', 'u:a'])).toEqual(['s:new']);
    expect([...cursors.names()]).toEqual(['u:a', 'c:room', 's:new']);
    expect(cursors.get('c:room')).toEqual({ epoch: 'e1', offset: 4 });
    expect(cursors.get('s:ke')).toBeUndefined();
    expect(cursors.byKey()).toEqual(
      new Map([
        [streamKey('u:a'), 'u:a'],
        [streamKey('c:room'), 'c:room'],
        [streamKey('s:new'), 's:new'],
      ]),
    );
    expect(cursors.setStreams([])).toEqual([]);
    expect(cursors.size).toBe(0);
    expect(cursors.position()).toBe('2');
  });

  it('writes a position into bytes exactly as it encodes it, at every offset size', () => {
    const cursors = new SessionCursors(new StreamLayout(8));
    cursors.setStreams(['u:a', 's:*#3/8', 'c:room']);
    for (const offset of [0, 1, 35, 36, 1295, 1296, 46_655, 2 ** 31, 2 ** 32 + 7, Number.MAX_SAFE_INTEGER]) {
      cursors.reset('u:a', at('EpOcH_01', offset));
      cursors.reset('c:room', at(NO_EPOCH, offset));
      const bytes = Buffer.alloc(cursors.positionLength());
      expect(cursors.writePosition(bytes, 0)).toBe(bytes.length);
      const written = bytes.toString('latin1');
      expect(written).toBe(cursors.position()); // the string, made after the bytes
      expect(cursors.writePosition(bytes.fill(0), 0)).toBe(bytes.length); // and from the string once made
      expect(bytes.toString('latin1')).toBe(written);
      expect(decodePosition(written, new StreamLayout(8))).toEqual(
        new Map([
          [streamKey('u:a'), { epoch: 'EpOcH_01', offset }],
          [streamKey('c:room'), { epoch: '', offset }],
        ]),
      );
    }
  });

  it('re-encodes the position only after a change', () => {
    const cursors = new SessionCursors(new StreamLayout(8));
    cursors.setStreams(['u:a', 's:*#3/8']);
    cursors.place('u:a', at('EpOcH_01', 35));
    const first = cursors.position();
    expect(first.startsWith('2s8.')).toBe(true);
    expect(decodePosition(first, new StreamLayout(8))).toEqual(
      new Map([[streamKey('u:a'), { epoch: 'EpOcH_01', offset: 35 }]]),
    );
    cursors.advance(event(['u:a', at('EpOcH_01', 35)]));
    expect(cursors.position()).toBe(first);
    cursors.advance(event(['u:a', at('EpOcH_01', 36)]));
    expect(cursors.position()).not.toBe(first);
    expect(cursors.position()).toBe(cursors.position());
  });

  for (const streams of [3, 12]) {
    it(`behaves as the Map it replaced, operation by operation (${streams} streams to pick from)`, () => {
      const next = random(streams);
      const pick = (n: number): number => Math.floor(next() * n);
      const pool = Array.from({ length: streams }, (_, i) => ['u:me', `s:ke/${i}`, `c:room:${i}`][i % 3]! + i);
      const epochs = [NO_EPOCH, 'e1', 'e2'];
      const cursorOf = (): Cursor => at(epochs[pick(3)]!, pick(6));
      const eventOf = (): Map<string, Cursor> => {
        const out = new Map<string, Cursor>();
        for (let n = 1 + pick(streams + 2); n > 0; n--)
          out.set(next() < 0.8 ? pool[pick(streams)]! : `c:other${pick(4)}`, cursorOf());
        return out;
      };
      for (let run = 0; run < 20; run++) {
        const layout = run % 2 === 0 ? StreamLayout.SINGLE : new StreamLayout(4);
        const actual = new SessionCursors(layout);
        const expected = new ReferenceCursors(layout);
        for (let step = 0; step < 300; step++) {
          const op = pick(7);
          if (op === 0) {
            const wanted = Array.from({ length: pick(streams + 1) }, () => pool[pick(streams)]!);
            expect(actual.setStreams(wanted)).toEqual(expected.setStreams(wanted));
          } else if (op === 1 || op === 2) {
            const cursors = eventOf();
            expect(actual.isNew(cursors)).toBe(expected.isNew(cursors));
            expect(actual.advance(cursors)).toBe(expected.advance(cursors));
          } else if (op === 3) {
            const [stream, cursor] = [pool[pick(streams)]!, cursorOf()];
            actual.place(stream, cursor);
            expected.place(stream, cursor);
          } else if (op === 4) {
            const [stream, cursor] = [pool[pick(streams)]!, cursorOf()];
            actual.reset(stream, cursor);
            expected.reset(stream, cursor);
          } else if (op === 5) {
            expect(actual.byKey()).toEqual(expected.byKey());
          }
          expect(actual.size).toBe(expected.size);
          expect([...actual.names()]).toEqual(expected.names());
          for (const stream of pool) expect(actual.get(stream)).toEqual(expected.get(stream));
          // Written into a frame's bytes (before position() caches the string: the path a delivery takes).
          const length = actual.positionLength();
          const bytes = Buffer.alloc(length + 2);
          expect(actual.writePosition(bytes, 1)).toBe(1 + length);
          expect(bytes.toString('latin1', 1, 1 + length)).toBe(expected.position());
          expect(actual.position()).toBe(expected.position());
          expect(actual.historyLost).toBe(expected.historyLost);
        }
      }
    });
  }
});
