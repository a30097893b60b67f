import { StreamLayout } from './streams.js';
import {
  NO_EPOCH,
  contiguous,
  continues,
  type Cursor,
  type EventLog,
  type LoggedEvent,
  type StreamEntry,
  type StreamRead,
} from './types.js';

/**
 * An event log in memory, with the same contract as the store and Redis logs (contiguous offsets
 * per stream, one epoch per stream, idempotent appends by id, per-stream count retention). It keeps
 * nothing across restarts, so the gateway never uses it; hub tests do, and it is the shortest
 * statement of what a log must do.
 */
export class MemoryLog implements EventLog {
  readonly kind = 'memory' as const;
  private readonly streams = new Map<string, { epoch: string; head: number; entries: StreamEntry[] }>();
  private readonly byId = new Map<string, LoggedEvent>();
  private seq = 0;
  private epochs = 0;

  constructor(
    private readonly maxEvents = 0,
    private readonly now: () => number = Date.now,
    readonly layout: StreamLayout = StreamLayout.SINGLE,
  ) {}

  append(envelope: LoggedEvent['envelope']): Promise<LoggedEvent> {
    const known = this.byId.get(envelope.id);
    if (known !== undefined) return Promise.resolve(known);
    const seq = ++this.seq;
    const at = this.now();
    const cursors = new Map<string, Cursor>();
    for (const name of this.layout.streamsOf(envelope)) {
      let stream = this.streams.get(name);
      if (stream === undefined) {
        stream = { epoch: `ep${String(++this.epochs).padStart(6, '0')}`, head: 0, entries: [] };
        this.streams.set(name, stream);
      }
      stream.head++;
      stream.entries.push({ offset: stream.head, envelope, at, seq });
      if (this.maxEvents > 0 && stream.entries.length > this.maxEvents) stream.entries.shift();
      cursors.set(name, { epoch: stream.epoch, offset: stream.head });
    }
    const logged = { envelope, at, seq, cursors };
    this.byId.set(envelope.id, logged);
    return Promise.resolve(logged);
  }

  read(name: string, from: Cursor, limit: number): Promise<StreamRead> {
    const stream = this.streams.get(name);
    const head = stream === undefined ? { epoch: NO_EPOCH, offset: 0 } : { epoch: stream.epoch, offset: stream.head };
    if (!continues(from, head)) return Promise.resolve({ entries: [], complete: false, head });
    const after = (stream?.entries ?? []).filter((e) => e.offset > from.offset);
    const entries = after.slice(0, limit);
    const complete = from.offset === head.offset || contiguous(from, entries[0]?.offset, after.length, limit);
    return Promise.resolve({ entries, complete, head });
  }

  heads(names: readonly string[]): Promise<Map<string, Cursor>> {
    const out = new Map<string, Cursor>();
    for (const name of names) {
      const stream = this.streams.get(name);
      out.set(
        name,
        stream === undefined ? { epoch: NO_EPOCH, offset: 0 } : { epoch: stream.epoch, offset: stream.head },
      );
    }
    return Promise.resolve(out);
  }

  trim(): Promise<number> {
    return Promise.resolve(0);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
