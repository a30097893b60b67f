import { TetherError } from '@tether/protocol';
import type { Cluster, Redis } from 'ioredis';
import type { IdempotencyBegin, IdempotencyStore } from './types.js';

/** A claimed key whose send never finished (a node died mid-handler) is freed after this at the latest. */
const PENDING_MAX_MS = 120_000;

// KEYS: the key. ARGV: pending TTL (ms). Claims the key (SET NX PX) or returns what it holds:
// "p" while a send is in progress, "d<json>" once finished.
const BEGIN_SCRIPT = `
if redis.call('SET', KEYS[1], 'p', 'NX', 'PX', ARGV[1]) then return false end
return redis.call('GET', KEYS[1])
`;

/**
 * The cluster's `IdempotencyStore`: one Redis key per `(scope, key)`, claimed with `SET NX PX` so
 * exactly one node runs a send however many nodes its retries reach, and the stored result answered
 * to every later retry until the TTL passes. Redis unreachable: `SEND_FAILED` (retryable), never
 * "run it anyway" — a retry later is safe, a double application is not.
 *
 * @example
 *   const idempotency = createRedisIdempotencyStore(bus.cmd, (scope, key) => bus.keys.idempotency(scope, key));
 */
export function createRedisIdempotencyStore(
  redis: Redis | Cluster,
  keyOf: (scope: string, key: string) => string,
): IdempotencyStore {
  // The scope's length keeps ("a:b", "c") and ("a", "b:c") apart.
  const name = (scope: string, key: string): string => keyOf(`${scope.length}:${scope}`, key);
  const unavailable = (err: unknown): TetherError =>
    new TetherError('SEND_FAILED', 'The idempotency store (Redis) is unavailable; retry with the same key', {
      cause: err,
    });

  return {
    async begin(scope, key, ttlMs): Promise<IdempotencyBegin> {
      let held: unknown;
      try {
        held = await redis.eval(BEGIN_SCRIPT, 1, name(scope, key), Math.max(1, Math.min(ttlMs, PENDING_MAX_MS)));
      } catch (err) {
        throw unavailable(err);
      }
      // null: claimed by us. The key may also have expired between SET and GET: then it is free too.
      if (typeof held !== 'string') return { status: 'new' };
      if (held === 'p') return { status: 'pending' };
      return { status: 'done', result: JSON.parse(held.slice(1)) as unknown };
    },
    async finish(scope, key, result, ttlMs) {
      try {
        await redis.set(name(scope, key), `d${JSON.stringify(result ?? null)}`, 'PX', Math.max(1, ttlMs));
      } catch (err) {
        throw unavailable(err);
      }
    },
    async release(scope, key) {
      try {
        await redis.del(name(scope, key));
      } catch (err) {
        throw unavailable(err);
      }
    },
  };
}
