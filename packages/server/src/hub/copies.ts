import { StreamLayout, streamScope } from '../history/streams.js';
import type { Cursor } from '../history/types.js';
import type { SessionIndexes, SetIndex } from './indexes.js';
import { outboundFor } from './recovery.js';
import type { HubSession } from './session.js';
import type { OutboundEvent, PublishEnvelope } from './types.js';

/** Events remembered while their other copies may still arrive (one per stream they went to). */
const RECENT_EVENTS = 4096;

interface Recent {
  outbound: OutboundEvent;
  streams: ReadonlySet<string>;
  /** Connections that read two or more of the event's streams and already got it. */
  recipients: Set<HubSession> | undefined;
}

/**
 * Delivery of per-stream copies (Redis Cluster: each stream's shard publishes its own copy of an
 * event, with that stream's cursor only). A copy goes to the connections that read its stream, so
 * each stream's events reach them in stream order; a connection that reads several of the event's
 * streams gets the first copy and only moves its cursor on the others.
 *
 * Every copy of one event shares one `OutboundEvent` encoding (transports cache on `encoded`).
 */
export class CopyDelivery {
  private readonly recent = new Map<string, Recent>();

  constructor(
    private readonly indexes: SessionIndexes,
    private readonly layout: StreamLayout = StreamLayout.SINGLE,
  ) {}

  /**
   * Where the connections reading `stream` are indexed (`u:`, `s:` or `c:` names; see
   * history/streams.ts): a scope's sub-stream is read by every reader of the scope.
   */
  private readersOf(stream: string): [SetIndex<HubSession>, string] | undefined {
    const name = stream.slice(2);
    switch (stream.slice(0, 2)) {
      case 'u:':
        return [this.indexes.byUser, name];
      case 's:':
        return [this.indexes.byScope, streamScope(stream)!];
      case 'c:':
        return [this.indexes.byChannel, name];
      default:
        return undefined;
    }
  }

  /**
   * Calls `send` for each reader of the copy that should receive it now, with the event carrying
   * this copy's cursor; readers that got the event through another stream only move their cursor.
   */
  forEachReader(
    envelope: PublishEnvelope,
    stream: string,
    cursor: Cursor,
    publishedAt: number,
    send: (session: HubSession, event: OutboundEvent) => void,
  ): void {
    const readers = this.readersOf(stream);
    if (readers === undefined || readers[0].count(readers[1]) === 0) return;
    const recent = this.remember(envelope, publishedAt);
    const cursors = new Map([[stream, cursor]]);
    // Same `encoded` object as every other copy: encoded once per event and transport.
    const event: OutboundEvent = { ...recent.outbound, cursors };
    // forEach: a key with one reader holds it without a Set, and visiting it allocates nothing.
    readers[0].forEach(readers[1], (session) => {
      if (session.closed) return;
      if (recent.streams.size > 1 && this.readsAnother(session, recent.streams, stream)) {
        recent.recipients ??= new Set();
        if (recent.recipients.has(session)) {
          session.cursors.advance(cursors);
          return;
        }
        recent.recipients.add(session);
      }
      send(session, event);
    });
  }

  private readsAnother(session: HubSession, streams: ReadonlySet<string>, stream: string): boolean {
    for (const name of session.cursors.names()) if (name !== stream && streams.has(name)) return true;
    return false;
  }

  private remember(envelope: PublishEnvelope, publishedAt: number): Recent {
    let recent = this.recent.get(envelope.id);
    if (recent === undefined) {
      recent = {
        outbound: outboundFor(envelope, publishedAt, undefined),
        streams: new Set(this.layout.streamsOf(envelope)),
        recipients: undefined,
      };
      this.recent.set(envelope.id, recent);
      if (this.recent.size > RECENT_EVENTS) this.recent.delete(this.recent.keys().next().value as string);
    }
    return recent;
  }
}
