import { offsetSeq, parseLogMessage, type LogMessage, type RedisEventLog } from '../history/redis-log.js';
import { formatPosition } from '../history/types.js';
import type { LocalHub } from '../hub/hub.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/** A publish waits at most this long for its own node's copy to learn the local delivery count. */
const OWN_DELIVERY_WAIT_MS = 2_000;
/** Local delivery counts kept for publishes whose own copy arrived before the script's reply. */
const RECENT_LIMIT = 1024;

/**
 * The receiving side of a node: events from the interest channels, in log order, into the local hub.
 *
 * - **Once**: a node subscribed on several matching channels gets one copy per channel, all adjacent
 *   (one script published them); it keeps the first by the log's sequence number.
 * - **Catch-up**: after the node was cut off from Redis, it reads the log from the last event it
 *   delivered and delivers what it missed, holding live messages meanwhile, so live connections on
 *   this node lose nothing to a network blip between the node and Redis.
 */
export class EventReceiver {
  private lastEpoch = '';
  private lastSeq = -1;
  private lastOffset = '';
  private held: string[] | undefined;
  private readonly recent = new Map<string, number>();
  private readonly waiters = new Map<string, (count: number) => void>();

  constructor(
    private readonly local: LocalHub,
    private readonly log: RedisEventLog,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly catchUpMax: number,
  ) {}

  /** A message from an interest channel (raw JSON text). */
  onMessage(text: string): void {
    if (this.held !== undefined) {
      this.held.push(text);
      return;
    }
    const message = parseLogMessage(text);
    if (message === undefined || offsetSeq(message.o) === undefined) {
      this.logger.warn({ component: 'cluster' }, 'malformed event message ignored');
      return;
    }
    this.accept(message);
  }

  /** Where catch-up starts before any event was received: the log's head when the node started. */
  startFrom(head: { epoch: string; offset: string }): void {
    if (this.lastEpoch !== '') return;
    this.lastEpoch = head.epoch;
    this.lastOffset = head.offset;
    this.lastSeq = offsetSeq(head.offset) ?? -1;
  }

  /** Delivers what the log holds after the last event this node delivered (after an outage). */
  async catchUp(): Promise<void> {
    if (this.lastEpoch === '' || this.held !== undefined) return;
    this.held = [];
    try {
      const read = await this.log.readAfter(this.lastEpoch, this.lastOffset, this.catchUpMax);
      for (const event of read.events) this.accept({ ep: event.epoch, o: event.offset, env: event.envelope });
      const fields = { component: 'cluster', caughtUp: read.events.length, complete: read.complete };
      if (read.complete) this.logger.info(fields, 'caught up with events published while cut off from redis');
      else
        this.logger.warn(
          fields,
          'could not catch up with every event published while cut off from redis; clients recover on reconnect',
        );
    } catch (err) {
      this.logger.warn({ component: 'cluster', err: (err as Error).message }, 'catch-up after the redis outage failed');
    } finally {
      const held = this.held;
      this.held = undefined;
      for (const text of held) this.onMessage(text);
    }
  }

  /** How many local connections the event at `offset` was written to (0 after a bounded wait). */
  ownDelivery(offset: string): Promise<number> {
    const known = this.recent.get(offset);
    if (known !== undefined) {
      this.recent.delete(offset);
      return Promise.resolve(known);
    }
    return new Promise<number>((resolve) => {
      const timer = this.clock.setTimeout(() => finish(0), OWN_DELIVERY_WAIT_MS);
      const finish = (count: number): void => {
        this.clock.clearTimeout(timer);
        this.waiters.delete(offset);
        resolve(count);
      };
      this.waiters.set(offset, finish);
    });
  }

  close(): void {
    for (const finish of [...this.waiters.values()]) finish(0);
  }

  private accept(message: LogMessage): void {
    const seq = offsetSeq(message.o) ?? -1;
    if (message.ep === this.lastEpoch && seq <= this.lastSeq) return;
    if (message.ep !== this.lastEpoch) this.log.observeEpoch(message.ep);
    this.lastEpoch = message.ep;
    this.lastSeq = seq;
    this.lastOffset = message.o;
    const count = this.local.deliverLocal(message.env, performance.now(), formatPosition(message.ep, message.o));
    const waiter = this.waiters.get(message.o);
    if (waiter !== undefined) waiter(count);
    else {
      this.recent.set(message.o, count);
      if (this.recent.size > RECENT_LIMIT) this.recent.delete(this.recent.keys().next().value as string);
    }
  }
}
