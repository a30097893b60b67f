import type { Clock } from '../util/clock.js';
import type { IdempotencyBegin, IdempotencyStore } from './types.js';

/** A claimed key whose send never finished (a crashed handler) is freed after this at the latest. */
const PENDING_MAX_MS = 120_000;

interface Entry {
  done: boolean;
  result: unknown;
  expiresAt: number;
}

export interface MemoryIdempotencyOptions {
  clock: Clock;
  /** Keys kept at most; the least recently used go first. Default 100 000. */
  maxEntries?: number;
}

/**
 * The single-node `IdempotencyStore`: a bounded LRU (a `Map` in use order) with per-entry TTL.
 * Eviction under pressure can forget a finished key early; the bound is what keeps a client that
 * floods distinct keys from growing memory without limit.
 *
 * @example
 *   const store = createMemoryIdempotencyStore({ clock: systemClock, maxEntries: 50_000 });
 *   if ((await store.begin('u1', 'k1', 600_000)).status === 'new') { … await store.finish('u1', 'k1', ack, 600_000); }
 */
export function createMemoryIdempotencyStore(
  options: MemoryIdempotencyOptions,
): IdempotencyStore & { readonly size: number } {
  const { clock } = options;
  const maxEntries = Math.max(1, options.maxEntries ?? 100_000);
  const entries = new Map<string, Entry>();
  const id = (scope: string, key: string): string => `${scope.length}:${scope}${key}`;

  function put(name: string, entry: Entry): void {
    entries.delete(name);
    entries.set(name, entry);
    while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
  }

  return {
    get size() {
      return entries.size;
    },
    begin(scope, key, ttlMs): Promise<IdempotencyBegin> {
      const name = id(scope, key);
      const now = clock.now();
      const entry = entries.get(name);
      if (entry !== undefined && entry.expiresAt > now) {
        put(name, entry); // most recently used
        return Promise.resolve(entry.done ? { status: 'done', result: entry.result } : { status: 'pending' });
      }
      put(name, { done: false, result: undefined, expiresAt: now + Math.min(ttlMs, PENDING_MAX_MS) });
      return Promise.resolve({ status: 'new' });
    },
    finish(scope, key, result, ttlMs) {
      put(id(scope, key), { done: true, result, expiresAt: clock.now() + ttlMs });
      return Promise.resolve();
    },
    release(scope, key) {
      entries.delete(id(scope, key));
      return Promise.resolve();
    },
  };
}
