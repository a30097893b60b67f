import type { RedisEventLog } from '../history/redis-log.js';
import { startsEarlier, type Cursor } from '../history/types.js';
import type { Session, StreamFollower } from '../hub/types.js';
import type { InterestSet } from './interest.js';
import type { ClusterPresence } from './presence.js';
import type { ClusterBus } from './redis-bus.js';

/**
 * Where this node stands in each stream its connections read: the last cursor seen in a message,
 * or the stream's head when a connection started reading it. After an outage the node reads each
 * stream from here (`EventReceiver.catchUp`).
 */
export class StreamCursors {
  private readonly last = new Map<string, Cursor>();

  constructor(
    private readonly log: RedisEventLog,
    /** Whether this node's connections read the stream now. */
    readonly wanted: (stream: string) => boolean,
  ) {}

  /** Starts following streams: their heads, unless a message already said more. */
  watch(streams: readonly string[]): void {
    const fresh = streams.filter((stream) => !this.last.has(stream));
    if (fresh.length === 0) return;
    this.log.heads(fresh).then(
      (heads) => {
        for (const [stream, head] of heads) if (!this.last.has(stream)) this.last.set(stream, head);
      },
      () => undefined, // Redis is down right now: the catch-up starts from what messages said
    );
  }

  /** A message carried this cursor. */
  saw(stream: string, cursor: Cursor): void {
    if (!this.wanted(stream)) return;
    const seen = this.last.get(stream);
    if (seen === undefined || seen.epoch !== cursor.epoch || cursor.offset > seen.offset) this.last.set(stream, cursor);
  }

  /**
   * The streams still read, with where to continue; forgets the others. `readers` is where the
   * local connections stand (`LocalHub.readPoints`): a connection's cursor comes from its own
   * handshake, so it is known even when the head this follower asked for never came back, or came
   * back after Redis had already taken events this node then missed. Each stream is read from the
   * earlier of the two (a connection drops what it already has).
   */
  toCatchUp(readers: ReadonlyMap<string, Cursor> = new Map()): [string, Cursor][] {
    for (const stream of [...this.last.keys()]) if (!this.wanted(stream)) this.last.delete(stream);
    for (const [stream, reader] of readers) {
      if (!this.wanted(stream)) continue;
      if (startsEarlier(reader, this.last.get(stream))) this.last.set(stream, reader);
    }
    return [...this.last];
  }
}

/**
 * The cluster's `StreamFollower`: the hub tells it directly whenever a local connection opens,
 * changes what it reads (channels, grants, narrowing) or closes, and it keeps the node's Redis
 * subscriptions, presence and stream cursors in line. Not an observer: delivery depends on it, so
 * its failures are not swallowed with the metrics'.
 */
export class ClusterFollower implements StreamFollower {
  /** Per local session: the interest channels it holds. */
  private readonly held = new Map<string, string[]>();

  constructor(
    private readonly bus: ClusterBus,
    private readonly interest: InterestSet,
    private readonly presence: ClusterPresence,
    private readonly cursors: StreamCursors,
  ) {}

  /** (Re)computes a session's interest: new channels are acquired before old ones are released. */
  follow(session: Session): void {
    if (session.closed) return;
    const streams = this.bus.keys.layout.streamsRead(session.userId, session.scopeReads, session.channels);
    const channels = streams.map((stream) => this.bus.keys.ofStream(stream));
    const before = this.held.get(session.id) ?? [];
    this.held.set(session.id, channels);
    void this.interest.acquire(channels);
    this.cursors.watch(streams);
    this.interest.release(before);
    this.presence.add(session.presence(this.bus.nodeId));
  }

  unfollow(session: Session): void {
    const channels = this.held.get(session.id);
    if (channels === undefined) return;
    this.held.delete(session.id);
    this.interest.release(channels);
    this.presence.remove(session.userId, session.id);
  }
}
