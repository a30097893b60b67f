import type { PublishBacklog } from './types.js';

/**
 * Publishes arriving less than this apart are a burst: when the backlog empties, the next one is
 * probably on its way, so held writes may wait for the turn's end (and past it) rather than leave.
 */
export const BURST_GAP_MS = 2;

/** A count of publishes in flight, told when it returns to zero (`PublishBacklog`). */
export class PendingPublishes implements PublishBacklog {
  private pending = 0;
  private lastEnter = -Infinity;
  private gap = Infinity;
  private readonly listeners: Array<(bursting: boolean) => void> = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  get busy(): boolean {
    return this.pending > 0;
  }

  onIdle(listener: (bursting: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** A publish was accepted. Each `enter` is followed by exactly one `leave`. */
  enter(): void {
    const now = this.now();
    this.gap = now - this.lastEnter;
    this.lastEnter = now;
    this.pending++;
  }

  /** A publish was delivered or failed. */
  leave(): void {
    if (--this.pending > 0) return;
    const bursting = this.gap < BURST_GAP_MS;
    for (const listener of this.listeners) listener(bursting);
  }
}
