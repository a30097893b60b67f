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
  private readonly bucket: TokenBucket;
  private dropped = 0;
  private warned = false;

  constructor(
    private readonly burst: number,
    ratePerSecond: number,
    clock: Clock,
  ) {
    this.bucket = new TokenBucket(burst, ratePerSecond, clock);
  }

  check(): InboundVerdict {
    if (this.warned && this.bucket.isFull()) {
      this.warned = false;
      this.dropped = 0;
    }
    if (this.bucket.take() === 0) return 'accept';
    this.dropped++;
    if (!this.warned) {
      this.warned = true;
      return 'warn';
    }
    return this.dropped > this.burst ? 'cut' : 'drop';
  }
}
