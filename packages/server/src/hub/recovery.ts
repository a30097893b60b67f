import { grantCovers, scopeAncestry } from '@tether/protocol';
import { mergeReads, type MergedEvent } from '../history/merge.js';
import { decodePosition, streamKey } from '../history/streams.js';
import type { Cursor, EventLog, StreamEntry } from '../history/types.js';
import type { Logger } from '../util/logger.js';
import type { HubSession } from './session.js';
import type { DeliveryPath, DeliveryTracker, OutboundEvent, PublishEnvelope, SystemMessage } from './types.js';

/** What recovery needs from the hub. */
export interface RecoveryDeps {
  log: EventLog;
  /** Most events a connection may be missing and still be replayed (RECOVERY_MAX_EVENTS). */
  maxEvents: number;
  logger: Logger;
  now(): number;
  write(session: HubSession, message: SystemMessage): void;
  /** Called once the session is live (the hub arms its token lifecycle then). */
  live(session: HubSession): void;
  /** Closes a session one of whose streams lost history while it was held (STREAM_RESET). */
  reset(session: HubSession): void;
  /** Told of each event written (the delivery record); absent when none is kept. */
  deliveries?: DeliveryTracker;
}

/** An event for delivery: one per publish, shared by every recipient (transports cache encodings on it). */
export function outboundFor(
  envelope: PublishEnvelope,
  publishedAt: number,
  cursors: ReadonlyMap<string, Cursor> | undefined,
): OutboundEvent {
  return {
    id: envelope.id,
    event: envelope.event,
    data: envelope.data,
    publishedAt,
    encoded: {},
    ...(cursors === undefined ? {} : { cursors }),
    ...(envelope.to.users.length === 0 ? {} : { users: envelope.to.users }),
  };
}

/**
 * Whether the session may receive the envelope *now*: its current user, the scopes it reads now
 * (its grants, or its narrowed set), the channels it has joined.
 */
export function entitled(session: HubSession, envelope: PublishEnvelope): boolean {
  if (envelope.to.users.includes(session.userId)) return true;
  for (const scope of envelope.to.scopes)
    for (const read of session.scopeReads) if (grantCovers(read, scope)) return true;
  for (const channel of envelope.to.channels) if (session.channels.has(channel)) return true;
  return false;
}

/**
 * Starts a session against the log. The session is already indexed: from here on its live events
 * are held in `replayBuffer` while the log is read, so every event is either in the replay or in
 * the buffer (or both — the cursors drop the second copy):
 *
 *   register ─► index, buffer live ─► heads + read each presented stream ─► session_created {recovered, position}
 *            ─► replay (merged in publish order, each event once) ─► buffered events not yet sent ─► live
 *
 * Only the session's own streams are read (its user, the scopes it reads, its channels), each from
 * the cursor the presented position holds for it; a stream the position does not name (a grant or
 * channel added since) starts at its head. Not recoverable (a stream of another epoch or trimmed
 * past its cursor, more than `maxEvents` missed, an unreadable log, a position not of this format):
 * nothing is replayed, `recovered: false`, and every stream starts at its head.
 */
export async function recover(deps: RecoveryDeps, session: HubSession, presented: string | undefined): Promise<void> {
  const { log, logger } = deps;
  session.replayBuffer = [];
  const streams = [...session.cursors.names()];
  let replay: MergedEvent[] = [];
  let recovered = false;
  let read = 0;
  try {
    // Heads first: an event appended after this read is live (buffered), one before it is in a read below.
    const heads = await log.heads(streams);
    const from = presented === undefined ? undefined : presentedCursors(deps, session, presented);
    if (from !== undefined) {
      const result = await readStreams(log, from, deps.maxEvents);
      read = result.read;
      if (result.items !== undefined) {
        recovered = true;
        replay = result.items;
      }
    }
    for (const stream of streams) {
      const start = recovered ? (from?.current.get(stream) ?? heads.get(stream)) : heads.get(stream);
      if (start !== undefined) session.cursors.reset(stream, start);
    }
  } catch (err) {
    logger.warn(
      { event: 'recover', sessionId: session.id, err: (err as Error).message },
      'event log unreadable: session starts without recovery',
    );
  }
  if (session.closed) return;

  deps.write(session, {
    kind: 'session_created',
    payload: session.createdPayload(deps.now(), { recovered, position: session.cursors.position() }),
  });

  let replayed = 0;
  const sent = new Set<string>();
  for (const item of replay) {
    if (session.closed) return;
    session.cursors.advance(item.cursors);
    if (!entitled(session, item.envelope)) continue;
    sent.add(item.envelope.id);
    send(session, outboundFor(item.envelope, performance.now(), item.cursors), 'recovery');
    replayed++;
  }
  const buffered = session.replayBuffer;
  session.replayBuffer = undefined;
  let flushed = 0;
  for (const event of buffered) {
    if (session.closed) return;
    if (sent.has(event.id)) {
      if (event.cursors !== undefined) session.cursors.advance(event.cursors);
      continue;
    }
    if (event.cursors !== undefined && !session.cursors.advance(event.cursors)) continue;
    if (session.cursors.historyLost) {
      deps.reset(session);
      return;
    }
    // Per-stream copies of one event (Redis Cluster) may both be held: the first is sent.
    sent.add(event.id);
    send(session, event, 'live');
    flushed++;
  }
  logger.info(
    {
      event: 'recover',
      sessionId: session.id,
      userId: session.userId,
      resumed: presented !== undefined,
      recovered,
      streams: streams.length,
      read,
      replayed,
      flushed,
    },
    recovered ? 'session recovered' : 'session started at the heads',
  );
  deps.live(session);

  function send(target: HubSession, event: OutboundEvent, path: DeliveryPath): void {
    try {
      target.sink.sendEvent(event, target.cursors);
      deps.deliveries?.sent(target, event, path);
    } catch (err) {
      logger.warn({ err, sessionId: target.id, eventId: event.id }, 'event could not be written');
    }
  }
}

/** What a presented position says about the streams the session reads now. */
interface Presented {
  /** Streams read now that the position names: continue from their cursors. */
  current: Map<string, Cursor>;
  /**
   * Scope streams the position names that the session no longer reads, but whose scope covers a
   * scope it reads now (a narrowed grant, a phone narrowing from `*` to two wards): read from their
   * cursors for the events below those scopes, which the client has not received either.
   */
  sources: Map<string, { cursor: Cursor; covers: string[] }>;
}

/** The presented cursors that matter to the session now, or undefined when the position is not ours. */
function presentedCursors(deps: RecoveryDeps, session: HubSession, presented: string): Presented | undefined {
  const layout = deps.log.layout;
  const decoded = decodePosition(presented, layout);
  if (decoded === undefined) return undefined;
  const byKey = session.cursors.byKey();
  const out: Presented = { current: new Map(), sources: new Map() };
  const unnamed = new Set(byKey.values());
  const candidates: { key: string; cursor: Cursor }[] = [];
  for (const [key, cursor] of decoded) {
    const stream = byKey.get(key);
    if (stream === undefined) candidates.push({ key, cursor });
    else {
      out.current.set(stream, cursor);
      unnamed.delete(stream);
    }
  }
  // A scope read now whose streams the position does not name may continue from the streams of an
  // ancestor the client was reading (all of them, when the ancestor's stream is spread).
  const newScopes = session.scopeReads.filter((scope) =>
    layout.scopeStreams(scope).every((stream) => unnamed.has(stream)),
  );
  if (newScopes.length === 0 || candidates.length === 0) return out;
  const keys = new Map(candidates.map((c) => [c.key, c.cursor]));
  for (const scope of newScopes) {
    for (const ancestor of scopeAncestry(scope).slice(1)) {
      let found = false;
      for (const stream of layout.scopeStreams(ancestor)) {
        const cursor = keys.get(streamKey(stream));
        if (cursor === undefined) continue;
        const source = out.sources.get(stream) ?? { cursor, covers: [] };
        source.covers.push(scope);
        out.sources.set(stream, source);
        found = true;
      }
      // The new streams' own cursors are their heads: events after them are live, before them in the sources.
      if (found) break;
    }
  }
  return out;
}

/**
 * Reads every presented stream after its cursor and merges them in publish order (`at`, then the
 * log's append order), each event once. `items` is undefined when the replay cannot be complete.
 */
async function readStreams(
  log: EventLog,
  from: Presented,
  maxEvents: number,
): Promise<{ items: MergedEvent[] | undefined; read: number }> {
  const wanted: { stream: string; cursor: Cursor; covers?: string[] }[] = [
    ...[...from.current].map(([stream, cursor]) => ({ stream, cursor })),
    ...[...from.sources].map(([stream, { cursor, covers }]) => ({ stream, cursor, covers })),
  ];
  const reads = await Promise.all(
    wanted.map(async (w) => ({ ...w, ...(await log.read(w.stream, w.cursor, maxEvents)) })),
  );
  const read = reads.reduce((sum, r) => sum + r.entries.length, 0);
  if (reads.some((r) => !r.complete)) return { items: undefined, read };
  const items = mergeReads(
    reads.map(({ stream, entries, head, covers }) =>
      covers === undefined
        ? { stream, entries, head }
        : {
            // From an ancestor's stream: only what lies below the scopes read now; its cursor is not kept.
            stream,
            entries,
            head,
            cursors: false,
            keep: (entry: StreamEntry) =>
              entry.envelope.to.scopes.some((scope) => covers.some((c) => grantCovers(c, scope))),
          },
    ),
  );
  return { items: items.length > maxEvents ? undefined : items, read };
}
