import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublishEnvelope } from '../hub/types.js';
import { createRedisLog, offsetSeq, parseLogMessage, type RedisLogOptions } from './redis-log.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const envelope = (n: number): PublishEnvelope => ({
  id: `e${n}`,
  event: 'tick',
  data: { n },
  to: { users: ['u1'], scopes: [], channels: [] },
});

describe('the Redis Streams event log', () => {
  let redis: Redis;
  const prefixes: string[] = [];

  const open = (overrides: Partial<RedisLogOptions> = {}) => {
    const prefix = `test-log-${randomBytes(6).toString('hex')}`;
    prefixes.push(prefix);
    return createRedisLog(redis, {
      stream: `${prefix}:log`,
      meta: `${prefix}:meta`,
      maxEvents: 0,
      maxAgeSeconds: 0,
      ...overrides,
    });
  };

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    for (const prefix of prefixes) await redis.del(`${prefix}:log`, `${prefix}:meta`);
    redis.disconnect();
  });

  it('assigns offsets whose sequence grows by one, and reads back strictly after an offset, in order', async () => {
    const log = open();
    await log.init();
    const start = await log.head();
    const appended = [];
    for (let n = 1; n <= 5; n++) appended.push(await log.append(envelope(n)));
    expect(appended.map((e) => offsetSeq(e.offset))).toEqual([1, 2, 3, 4, 5]);
    expect(appended.every((e) => e.epoch === start.epoch)).toBe(true);

    const all = await log.readAfter(start.epoch, start.offset, 100);
    expect(all.complete).toBe(true);
    expect(all.events.map((e) => e.envelope.id)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    const tail = await log.readAfter(start.epoch, appended[2]!.offset, 100);
    expect(tail.events.map((e) => e.envelope.data)).toEqual([{ n: 4 }, { n: 5 }]);
    expect(await log.readAfter(start.epoch, appended[4]!.offset, 100)).toEqual({ events: [], complete: true });
    expect((await log.head()).offset).toBe(appended[4]!.offset);
  });

  it('says incomplete when the caller’s limit cuts the gap', async () => {
    const log = open();
    await log.init();
    const start = await log.head();
    for (let n = 1; n <= 4; n++) await log.append(envelope(n));
    const read = await log.readAfter(start.epoch, start.offset, 3);
    expect(read.events).toHaveLength(3);
    expect(read.complete).toBe(false);
  });

  it('says incomplete once history was trimmed past the position, complete for a position still covered', async () => {
    const log = open({ maxEvents: 1 });
    await log.init();
    const start = await log.head();
    const appended = [];
    // MAXLEN ~ trims whole radix-tree nodes (100 entries by default): append enough to drop some.
    for (let n = 1; n <= 250; n++) appended.push(await log.append(envelope(n)));
    const old = await log.readAfter(start.epoch, start.offset, 1000);
    expect(old.complete).toBe(false);
    const recent = await log.readAfter(start.epoch, appended[248]!.offset, 1000);
    expect(recent).toMatchObject({ complete: true, events: [{ envelope: { id: 'e250' } }] });
  });

  it('starts a new epoch when Redis lost its data, and refuses positions of the old one', async () => {
    const log = open();
    await log.init();
    const first = await log.append(envelope(1));
    await redis.del(prefixes.at(-1) + ':log', prefixes.at(-1) + ':meta');
    const next = await log.append(envelope(2));
    expect(next.epoch).not.toBe(first.epoch);
    expect(offsetSeq(next.offset)).toBe(1);
    expect(await log.readAfter(first.epoch, first.offset, 10)).toEqual({ events: [], complete: false });
    expect(log.epoch()).toBe(next.epoch);
  });

  it('publishes each appended event to every given channel, in log order', async () => {
    const log = open();
    await log.init();
    const sub = new Redis(REDIS_URL);
    const got: { channel: string; seq: number | undefined }[] = [];
    const channel = `${prefixes.at(-1)}:u:u1`;
    await sub.subscribe(channel, `${channel}:2`);
    const arrived = new Promise<void>((done) =>
      sub.on('message', (ch: string, text: string) => {
        got.push({ channel: ch, seq: offsetSeq(parseLogMessage(text)!.o) });
        if (got.length === 6) done();
      }),
    );
    await Promise.all([1, 2, 3].map((n) => log.appendAndPublish(envelope(n), [channel, `${channel}:2`])));
    await arrived;
    sub.disconnect();
    expect(got.map((g) => g.seq)).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it('an unreachable Redis makes append fail with PUBLISH_FAILED', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    const log = createRedisLog(dead, { stream: 'x', meta: 'y', maxEvents: 0, maxAgeSeconds: 0 });
    await expect(log.append(envelope(1))).rejects.toMatchObject({ code: 'PUBLISH_FAILED' });
  });
});
