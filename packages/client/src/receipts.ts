import { MAX_RECEIPT_IDS } from '@tether/protocol';
import type { Platform, TimerHandle } from './platform.js';

/** Receipts held while disconnected at most; the oldest go first (they only feed the gateway's record). */
const MAX_HELD = 1000;

/**
 * Delivery receipts, batched: the ids of events that reached the app's handlers go to the gateway
 * in one small frame per `delayMs` window, or at once when `MAX_RECEIPT_IDS` are waiting — never a
 * frame per event. Receipts the connection could not take wait for the next session.
 *
 * @example
 *   const receipts = new ReceiptBatcher(platform, 100, (ids) => transport?.receipt?.(ids) ?? false);
 *   receipts.add(meta.id);
 */
export class ReceiptBatcher {
  private ids: string[] = [];
  private timer: TimerHandle | undefined;

  constructor(
    private readonly platform: Platform,
    private readonly delayMs: number,
    /** Sends one batch; false when there is no connection to take it. */
    private readonly send: (ids: string[]) => boolean,
  ) {}

  add(id: string): void {
    if (this.ids.length >= MAX_HELD) this.ids.shift();
    this.ids.push(id);
    if (this.ids.length >= MAX_RECEIPT_IDS) this.flush();
    else this.timer ??= this.platform.setTimeout(() => this.flush(), this.delayMs);
  }

  /** Sends everything waiting (in batches of at most MAX_RECEIPT_IDS), as far as the connection takes it. */
  flush(): void {
    if (this.timer !== undefined) this.platform.clearTimeout(this.timer);
    this.timer = undefined;
    while (this.ids.length > 0) {
      const batch = this.ids.slice(0, MAX_RECEIPT_IDS);
      if (!this.send(batch)) return;
      this.ids.splice(0, batch.length);
    }
  }

  clear(): void {
    if (this.timer !== undefined) this.platform.clearTimeout(this.timer);
    this.timer = undefined;
    this.ids = [];
  }
}
