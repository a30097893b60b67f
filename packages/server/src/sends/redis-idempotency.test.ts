import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisIdempotencyStore } from './redis-idempotency.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('the Redis idempotency store', () => {
  const prefix = `test-idem-${randomBytes(6).toString('hex')}`;
  const keyOf = (scope: string, key: string) => `${prefix}:${scope}:${key}`;
  let nodeA: Redis;
  let nodeB: Redis;

  beforeAll(() => {
    nodeA = new Redis(REDIS_URL);
    nodeB = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    const keys = await nodeA.keys(`${prefix}:*`);
    if (keys.length > 0) await nodeA.del(...keys);
    nodeA.disconnect();
    nodeB.disconnect();
  });

  it('lets exactly one of many concurrent claims on two nodes run, then answers the stored result', async () => {
    const a = createRedisIdempotencyStore(nodeA, keyOf);
    const b = createRedisIdempotencyStore(nodeB, keyOf);
    const claims = await Promise.all([a, b, a, b, a, b].map((store) => store.begin('u1', 'k1', 60_000)));
    expect(claims.filter((c) => c.status === 'new')).toHaveLength(1);
    expect(claims.filter((c) => c.status === 'pending')).toHaveLength(5);
    await a.finish('u1', 'k1', { ok: true, result: { saved: 1 } }, 60_000);
    expect(await b.begin('u1', 'k1', 60_000)).toEqual({ status: 'done', result: { ok: true, result: { saved: 1 } } });
  });

  it('keeps scopes apart, frees a released key, and forgets a result after its TTL', async () => {
    const store = createRedisIdempotencyStore(nodeA, keyOf);
    expect((await store.begin('a:b', 'c', 60_000)).status).toBe('new');
    expect((await store.begin('a', 'b:c', 60_000)).status).toBe('new');
    await store.release?.('a', 'b:c');
    expect((await store.begin('a', 'b:c', 60_000)).status).toBe('new');
    await store.finish('u2', 'short', { ok: true }, 30);
    await new Promise((done) => setTimeout(done, 80)); // the TTL itself is what is tested
    expect((await store.begin('u2', 'short', 60_000)).status).toBe('new');
  });

  it('answers SEND_FAILED when Redis is unreachable', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    const store = createRedisIdempotencyStore(dead, keyOf);
    await expect(store.begin('u1', 'k', 1000)).rejects.toMatchObject({ code: 'SEND_FAILED' });
  });
});
