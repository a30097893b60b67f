import { loggedOf, parseLogMessage, type LogMessage, type RedisEventLog } from '../history/redis-log.js';
import { mergeReads } from '../history/merge.js';
import type { LocalHub } from '../hub/hub.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { StreamCursors } from './stream-follower.js';

/** A publish waits at most this long for its own node's copy to learn the local delivery count. */
const OWN_DELIVERY_WAIT_MS = 2_000;
/** Ids of recently delivered events (a node gets one copy per matching interest channel). */
const SEEN_LIMIT = 8192;
/** Local delivery counts kept for publishes whose own copy arrived before the script's reply. */
const RECENT_LIMIT = 1024;

/**
 * The receiving side of a node: events from the interest channels, in log order, into the local hub.
 *
 * - **Once**: a node subscribed on several matching channels gets one copy per channel, all adjacent
 *   (one script published them); it keeps the first by event id.
 * - **Catch-up**: while the node is cut off from Redis it misses messages. It remembers the last
 *   cursor it saw in each stream its connections read; when Redis is back it reads those streams
 *   from there and delivers what it missed (each connection's cursors drop what it already has),
 *   holding live messages from the start of the outage until then, so live connections on this
 *   node lose nothing to a network blip between the node and Redis. (Held from the outage, not from
 *   the catch-up: ioredis re-subscribes before the node hears Redis is back, and a live message
 *   delivered in between would move the connections' cursors past what the catch-up must read.)
 *   A stream it cannot read back completely (trimmed past, or a new epoch after a Redis failover)
 *   closes its connections with STREAM_RESET: they resume and are told `recovered: false`, instead
 *   of continuing past a gap.
 */
export class EventReceiver {
  /** Live messages held while cut off and during a catch-up; undefined while delivering live. */
  private held: string[] | undefined;
  /** A catch-up is running. */
  private catching = false;
  /** Redis was lost since the running catch-up began: keep holding for the next one. */
  private cutOff = false;
  /** Redis came back while a catch-up was running: run another when it ends. */
  private again = false;
  private readonly seen = new Set<string>();
  private readonly recent = new Map<string, number>();
  private readonly waiters = new Map<string, (count: number) => void>();

  constructor(
    private readonly local: LocalHub,
    private readonly log: RedisEventLog,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly catchUpMax: number,
    /** Where this node stands in each stream its connections read. */
    private readonly cursors: StreamCursors,
    /** Redis Cluster: each message is one stream's copy of an event (see `LocalHub.deliverCopy`). */
    private readonly sharded = false,
  ) {}

  /** A message from an interest channel (raw JSON text). */
  onMessage(text: string): void {
    if (this.held !== undefined) {
      this.held.push(text);
      return;
    }
    const message = parseLogMessage(text);
    if (message === undefined) {
      this.logger.warn({ component: 'cluster' }, 'malformed event message ignored');
      return;
    }
    this.accept(message);
  }

  /** Redis was lost: live messages are held from now until a catch-up has delivered what was missed. */
  suspend(): void {
    this.held ??= [];
    this.cutOff = true;
  }

  /** Delivers what the log holds after the last cursor seen in each wanted stream (after an outage). */
  async catchUp(): Promise<void> {
    if (this.catching) {
      this.again = true;
      return;
    }
    this.catching = true;
    this.cutOff = false;
    this.held ??= [];
    const streams = this.cursors.toCatchUp(this.local.readPoints());
    try {
      const reads = await Promise.all(
        streams.map(async ([stream, cursor]) => ({
          stream,
          ...(await this.log.read(stream, cursor, this.catchUpMax)),
        })),
      );
      const complete = reads.every((read) => read.complete);
      // Sharded: every stream's copy on its own, in stream order; else one message per event, merged.
      const events = this.sharded ? reads.flatMap((read) => mergeReads([read])) : mergeReads(reads);
      const missed: LogMessage[] = events.map((event) => ({
        env: event.envelope,
        at: event.at,
        seq: event.seq,
        cur: [...event.cursors].map(([stream, c]): [string, string, number] => [stream, c.epoch, c.offset]),
      }));
      for (const message of missed) this.accept(message);
      // What could not be proven complete (trimmed past, another epoch after a failover, more than
      // the bound) would be a silent gap for the live connections reading it: they resume instead.
      const short = reads.filter((read) => !read.complete).map((read) => read.stream);
      const reset = short.length === 0 ? 0 : this.local.resetStreams(short);
      const fields = { component: 'cluster', streams: streams.length, caughtUp: missed.length, complete, reset };
      if (complete) this.logger.info(fields, 'caught up with events published while cut off from redis');
      else
        this.logger.warn(
          fields,
          'could not catch up with every event published while cut off from redis; their connections resume',
        );
    } catch (err) {
      // Nothing proves what this node's connections missed: each resumes from its own position,
      // which recovers them whole once the log can be read (or says it cannot).
      const reset = this.local.resetStreams(streams.map(([stream]) => stream));
      this.logger.warn(
        { component: 'cluster', err: (err as Error).message, reset },
        'catch-up after the redis outage failed; its connections resume',
      );
    } finally {
      this.catching = false;
      if (this.again) {
        this.again = false;
        void this.catchUp();
      } else if (!this.cutOff) {
        const held = this.held ?? [];
        this.held = undefined;
        for (const text of held) this.onMessage(text);
      }
    }
  }

  /** How many local connections the event was written to (0 after a bounded wait). */
  ownDelivery(id: string): Promise<number> {
    const known = this.recent.get(id);
    if (known !== undefined) {
      this.recent.delete(id);
      return Promise.resolve(known);
    }
    return new Promise<number>((resolve) => {
      const timer = this.clock.setTimeout(() => finish(0), OWN_DELIVERY_WAIT_MS);
      const finish = (count: number): void => {
        this.clock.clearTimeout(timer);
        this.waiters.delete(id);
        resolve(count);
      };
      this.waiters.set(id, finish);
    });
  }

  close(): void {
    for (const finish of [...this.waiters.values()]) finish(0);
  }

  private accept(message: LogMessage): void {
    const id = message.env.id;
    for (const [stream, epoch, offset] of message.cur) this.cursors.saw(stream, { epoch, offset });
    const first = !this.seen.has(id);
    if (first) {
      this.seen.add(id);
      if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as string);
    }
    let count: number;
    if (this.sharded) {
      const [stream, epoch, offset] = message.cur[0] ?? [];
      if (stream === undefined || epoch === undefined || offset === undefined) return;
      count = this.local.deliverCopy(message.env, stream, { epoch, offset }, performance.now());
      if (!first) return;
    } else {
      if (!first) return;
      const logged = loggedOf(message);
      count = this.local.deliverLocal(logged.envelope, performance.now(), logged.cursors);
    }
    const waiter = this.waiters.get(id);
    if (waiter !== undefined) waiter(count);
    else {
      this.recent.set(id, count);
      if (this.recent.size > RECENT_LIMIT) this.recent.delete(this.recent.keys().next().value as string);
    }
  }
}
