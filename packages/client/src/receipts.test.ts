import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPlatform } from './platform.js';
import { ReceiptBatcher } from './receipts.js';

describe('receipt batcher', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends one frame per window, and at once when 256 ids are waiting', () => {
    const frames: string[][] = [];
    const batcher = new ReceiptBatcher(createPlatform(), 100, (ids) => {
      frames.push(ids);
      return true;
    });
    for (let i = 0; i < 300; i++) batcher.add(`e${i}`);
    expect(frames.map((f) => f.length)).toEqual([256]);
    vi.advanceTimersByTime(99);
    expect(frames).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(frames.map((f) => f.length)).toEqual([256, 44]);
    expect(frames.flat()).toEqual(Array.from({ length: 300 }, (_, i) => `e${i}`));
  });

  it('keeps what the connection could not take for the next flush, at most 1,000 (oldest dropped)', () => {
    let open = false;
    const frames: string[][] = [];
    const batcher = new ReceiptBatcher(createPlatform(), 100, (ids) => {
      if (!open) return false;
      frames.push(ids);
      return true;
    });
    for (let i = 0; i < 1200; i++) batcher.add(`e${i}`);
    vi.advanceTimersByTime(100);
    expect(frames).toEqual([]);
    open = true;
    batcher.flush();
    expect(frames.flat()).toEqual(Array.from({ length: 1000 }, (_, i) => `e${i + 200}`));
    expect(frames.every((f) => f.length <= 256)).toBe(true);
    batcher.clear();
  });
});
