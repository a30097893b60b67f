import { describe, expect, it } from 'vitest';
import { FakeClock } from '../hub/testing.js';
import { createMemoryIdempotencyStore } from './memory-idempotency.js';

describe('in-memory idempotency store', () => {
  it('claims a key once, answers pending until finished, then the result until the TTL passes', async () => {
    const clock = new FakeClock();
    const store = createMemoryIdempotencyStore({ clock });
    expect(await store.begin('u1', 'k', 10_000)).toEqual({ status: 'new' });
    expect(await store.begin('u1', 'k', 10_000)).toEqual({ status: 'pending' });
    expect(await store.begin('u2', 'k', 10_000)).toEqual({ status: 'new' }); // scopes are apart
    await store.finish('u1', 'k', { ok: true, result: 7 }, 10_000);
    expect(await store.begin('u1', 'k', 10_000)).toEqual({ status: 'done', result: { ok: true, result: 7 } });
    clock.advance(10_001);
    expect(await store.begin('u1', 'k', 10_000)).toEqual({ status: 'new' });
  });

  it('release frees a claimed key, and the LRU bound evicts the least recently used key first', async () => {
    const clock = new FakeClock();
    const store = createMemoryIdempotencyStore({ clock, maxEntries: 2 });
    await store.begin('u', 'a', 60_000);
    await store.release?.('u', 'a');
    expect(await store.begin('u', 'a', 60_000)).toEqual({ status: 'new' });
    await store.finish('u', 'a', 'A', 60_000);
    await store.finish('u', 'b', 'B', 60_000);
    await store.begin('u', 'a', 60_000); // touch a: b is now the oldest
    await store.finish('u', 'c', 'C', 60_000);
    expect(store.size).toBe(2);
    expect(await store.begin('u', 'a', 60_000)).toEqual({ status: 'done', result: 'A' });
    expect(await store.begin('u', 'b', 60_000)).toEqual({ status: 'new' });
  });
});
