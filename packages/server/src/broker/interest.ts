import type { Redis } from 'ioredis';
import type { Logger } from '../util/logger.js';

/**
 * Reference-counted Redis subscriptions: a channel is subscribed while at least one local
 * connection (or a pending handshake) needs it, and unsubscribed when the last one leaves.
 * Commands on one connection run in order, so a quick subscribe/unsubscribe/subscribe ends
 * subscribed. While Redis is down the commands wait in the subscriber's queue; ioredis also
 * re-subscribes everything after a reconnect.
 */
export class InterestSet {
  private readonly counts = new Map<string, number>();
  /** SUBSCRIBEs sent and not yet confirmed, by channel. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly sub: Redis,
    private readonly logger: Logger,
  ) {}

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
    if (fresh.length > 0) {
      const confirmed = this.sub.subscribe(...fresh).then(
        () => undefined,
        (err: unknown) =>
          this.logger.warn(
            { component: 'cluster', err: (err as Error).message, channels: fresh.length },
            'subscribe failed',
          ),
      );
      for (const channel of fresh) this.pending.set(channel, confirmed);
      void confirmed.then(() => {
        for (const channel of fresh) if (this.pending.get(channel) === confirmed) this.pending.delete(channel);
      });
    }
    // A channel another connection is subscribing right now is not ready before its SUBSCRIBE is.
    return Promise.all(all.map((channel) => this.ready(channel))).then(() => undefined);
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
    this.sub
      .unsubscribe(...gone)
      .catch((err: unknown) =>
        this.logger.warn({ component: 'cluster', err: (err as Error).message }, 'unsubscribe failed'),
      );
  }

  /** Whether any local connection currently needs one of these channels. */
  wantsAny(channels: readonly string[]): boolean {
    return channels.some((channel) => this.counts.has(channel));
  }

  get size(): number {
    return this.counts.size;
  }
}
