import type { PublishEnvelope } from '../hub/types.js';
import type { Cursor, StreamEntry } from './types.js';

/** One stream's read, as `mergeReads` takes it. */
export interface ReadToMerge {
  stream: string;
  entries: readonly StreamEntry[];
  /** The stream's head when read: its epoch is the entries' (a stream created since has one now). */
  head: Cursor;
  /** Which entries to keep (default: all). */
  keep?: (entry: StreamEntry) => boolean;
  /** False: the entries count, but their cursor in this stream is not recorded. Default true. */
  cursors?: boolean;
}

/** An event merged from one or more stream reads, with its cursor in each stream it was read from. */
export interface MergedEvent {
  envelope: PublishEnvelope;
  at: number;
  seq: number;
  cursors: Map<string, Cursor>;
}

/**
 * Merges reads of several streams into events in publish order — the time the log appended them,
 * then its append order — each event once, however many of the streams hold it. Recovery replays
 * these, and a node catching up after an outage delivers them.
 */
export function mergeReads(reads: readonly ReadToMerge[]): MergedEvent[] {
  const byId = new Map<string, MergedEvent>();
  for (const { stream, entries, head, keep, cursors } of reads) {
    for (const entry of entries) {
      if (keep !== undefined && !keep(entry)) continue;
      let event = byId.get(entry.envelope.id);
      if (event === undefined) {
        event = { envelope: entry.envelope, at: entry.at, seq: entry.seq, cursors: new Map() };
        byId.set(entry.envelope.id, event);
      }
      if (cursors !== false) event.cursors.set(stream, { epoch: head.epoch, offset: entry.offset });
    }
  }
  return [...byId.values()].sort((a, b) => a.at - b.at || a.seq - b.seq);
}
