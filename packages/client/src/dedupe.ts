/**
 * Remembers the last `capacity` event ids so an event delivered twice (the server re-sends after a
 * reconnect, or two nodes both deliver it) reaches the app once. Bounded: the oldest id is
 * forgotten first, so memory stays flat on a long-lived connection.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 1000) {}

  /** True when `id` was seen before; otherwise records it and returns false. */
  seen(id: string): boolean {
    if (this.ids.has(id)) {
      // Refresh recency: a duplicate is evidence the id is still in flight somewhere.
      this.ids.delete(id);
      this.ids.add(id);
      return true;
    }
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return false;
  }

  get size(): number {
    return this.ids.size;
  }

  clear(): void {
    this.ids.clear();
  }
}
