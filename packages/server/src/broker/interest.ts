import { Cluster, type Redis } from 'ioredis';
import type { Logger } from '../util/logger.js';

/**
 * Reference-counted Redis subscriptions: a channel is subscribed while at least one local
 * connection (or a pending handshake) needs it, and unsubscribed when the last one leaves.
 * Commands on one connection run in order, so a quick subscribe/unsubscribe/subscribe ends
 * subscribed. While Redis is down the commands wait in the subscriber's queue; ioredis also
 * re-subscribes everything after a reconnect.
 *
 * On a Redis Cluster (`sub` is a `Cluster`, whose subscriptions the bus makes sharded) each channel
 * is SSUBSCRIBEd on its own: one SSUBSCRIBE may only name channels of one slot, and a channel's
 * commands all go to its shard's connection, so they too run in order.
 */
export class InterestSet {
  private readonly counts = new Map<string, number>();
  /** SUBSCRIBEs sent and not yet confirmed, by channel. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly sharded: boolean;

  constructor(
    private readonly sub: Redis | Cluster,
    private readonly logger: Logger,
  ) {
    this.sharded = sub instanceof Cluster;
  }

  /** Adds one reference to each channel; resolves when all of them are confirmed subscribed. */
  acquire(channels: Iterable<string>): Promise<void> {
    const all: string[] = [];
    const fresh: string[] = [];
    for (const channel of channels) {
      const count = this.counts.get(channel) ?? 0;
      this.counts.set(channel, count + 1);
      all.push(channel);
      if (count === 0) fresh.push(channel);
    }
    if (fresh.length > 0) this.subscribe(fresh);
    // A channel another connection is subscribing right now is not ready before its SUBSCRIBE is.
    return Promise.all(all.map((channel) => this.ready(channel))).then(() => undefined);
  }

  /** Sends the SUBSCRIBEs (one per channel when sharded) and tracks each until it is confirmed. */
  private subscribe(fresh: string[]): void {
    const batches = this.sharded
      ? fresh.map((channel) => ({ channels: [channel], sent: this.sub.ssubscribe(channel) }))
      : [{ channels: fresh, sent: this.sub.subscribe(...fresh) }];
    const failures: string[] = [];
    const confirmations = batches.map(({ channels, sent }) => {
      const confirmed = sent.then(
        () => undefined,
        (err: unknown) => void failures.push((err as Error).message),
      );
      for (const channel of channels) this.pending.set(channel, confirmed);
      void confirmed.then(() => {
        for (const channel of channels) if (this.pending.get(channel) === confirmed) this.pending.delete(channel);
      });
      return confirmed;
    });
    // One line for the whole call, however many channels failed.
    void Promise.all(confirmations).then(() => {
      if (failures.length > 0)
        this.logger.warn(
          { component: 'cluster', err: failures[0], channels: fresh.length, failed: failures.length },
          'subscribe failed',
        );
    });
  }

  /** Resolves once the channel's subscription is confirmed (at once when it is, or is not wanted). */
  ready(channel: string): Promise<void> {
    return this.pending.get(channel) ?? Promise.resolve();
  }

  release(channels: Iterable<string>): void {
    const gone: string[] = [];
    for (const channel of channels) {
      const count = this.counts.get(channel);
      if (count === undefined) continue;
      if (count > 1) this.counts.set(channel, count - 1);
      else {
        this.counts.delete(channel);
        gone.push(channel);
      }
    }
    if (gone.length === 0) return;
    const sent = this.sharded
      ? Promise.all(gone.map((channel) => this.sub.sunsubscribe(channel)))
      : this.sub.unsubscribe(...gone);
    sent.catch((err: unknown) =>
      this.logger.warn(
        { component: 'cluster', err: (err as Error).message, channels: gone.length },
        'unsubscribe failed',
      ),
    );
  }

  /** Whether a local connection currently needs this channel. */
  wants(channel: string): boolean {
    return this.counts.has(channel);
  }

  /** Whether any local connection currently needs one of these channels. */
  wantsAny(channels: readonly string[]): boolean {
    return channels.some((channel) => this.counts.has(channel));
  }

  get size(): number {
    return this.counts.size;
  }
}
