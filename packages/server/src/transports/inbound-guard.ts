import type { Config } from '../config/index.js';
import type { Clock } from '../util/clock.js';
import { TokenBucket } from '../util/rate-limit.js';

/** What to do with one inbound message. */
export type InboundVerdict = 'accept' | 'warn' | 'drop' | 'cut';

/**
 * Per-connection inbound flood control: a `TokenBucket(burst, ratePerSecond)`. The first message
 * over the limit is dropped with a `RATE_LIMITED` warning; after `burst` more dropped messages
 * the connection is cut. A client that slows down until its bucket is full again starts over.
 */
export class InboundGuard {
  /**
   * Made at the first message: most idle connections never send one. A bucket made then is the one
   * made at connect time would be by then (full: an untouched bucket only refills up to its capacity).
   */
  private bucket: TokenBucket | undefined;
  private dropped = 0;
  private warned = false;

  constructor(
    private readonly burst: number,
    private readonly ratePerSecond: number,
    private readonly clock: Clock,
  ) {}

  /**
   * The guard of a connection with the gateway's settings. Connections make theirs at their first
   * inbound message, like the bucket: an idle connection that never sends holds neither (~70 B).
   */
  static of(deps: { config: Pick<Config, 'inboundBurst' | 'inboundRatePerSecond'>; clock: Clock }): InboundGuard {
    return new InboundGuard(deps.config.inboundBurst, deps.config.inboundRatePerSecond, deps.clock);
  }

  check(): InboundVerdict {
    const bucket = (this.bucket ??= new TokenBucket(this.burst, this.ratePerSecond, this.clock));
    if (this.warned && bucket.isFull()) {
      this.warned = false;
      this.dropped = 0;
    }
    if (bucket.take() === 0) return 'accept';
    this.dropped++;
    if (!this.warned) {
      this.warned = true;
      return 'warn';
    }
    return this.dropped > this.burst ? 'cut' : 'drop';
  }
}
