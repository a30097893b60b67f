import { describe, expect, it } from 'vitest';
import type { RedisEventLog } from '../history/redis-log.js';
import type { Cursor, StreamEntry, StreamRead } from '../history/types.js';
import type { LocalHub } from '../hub/hub.js';
import type { PublishEnvelope } from '../hub/types.js';
import { systemClock } from '../util/clock.js';
import { createLogger } from '../util/logger.js';
import { EventReceiver } from './event-receiver.js';
import { StreamCursors } from './stream-follower.js';

const STREAM = 'u:yusuf';
const EPOCH = 'e1';

const envelope = (n: number): PublishEnvelope =>
  ({ id: `gap-${n}`, event: 'gap', data: { n }, to: { users: ['yusuf'] } }) as unknown as PublishEnvelope;
const entry = (n: number): StreamEntry => ({ offset: n, envelope: envelope(n), at: 1000 + n, seq: n });
/** A live message as an interest channel carries it. */
const live = (n: number): string =>
  JSON.stringify({ env: envelope(n), at: 1000 + n, seq: n, cur: [[STREAM, EPOCH, n]] });

/**
 * A node's receiver, a stream holding events 0 to `logged - 1` and a hub that records what it
 * delivers. The node's one connection last saw offset -1 (nothing): everything after it is missed.
 */
function node(logged = 20) {
  const delivered: string[] = [];
  let position: Cursor = { epoch: EPOCH, offset: -1 };
  const hub = {
    deliverLocal(env: PublishEnvelope, _at: number, cursors?: ReadonlyMap<string, Cursor>): number {
      const cursor = cursors?.get(STREAM);
      // A connection's cursor only moves forward: an older event is one it already has.
      if (cursor === undefined || cursor.offset <= position.offset) return 0;
      position = cursor;
      delivered.push(env.id);
      return 1;
    },
    readPoints: () => new Map([[STREAM, position]]),
    resetStreams: () => 0,
  };
  const entries = Array.from({ length: logged }, (_, n) => entry(n));
  const log = {
    read: async (_stream: string, from: Cursor, limit: number): Promise<StreamRead> => ({
      entries: entries.filter((e) => e.offset > from.offset).slice(0, limit),
      complete: true,
      head: { epoch: EPOCH, offset: entries.length - 1 },
    }),
  };
  const cursors = new StreamCursors(log as unknown as RedisEventLog, () => true);
  cursors.saw(STREAM, { epoch: EPOCH, offset: -1 });
  const receiver = new EventReceiver(
    hub as unknown as LocalHub,
    log as unknown as RedisEventLog,
    systemClock,
    createLogger('silent'),
    1000,
    cursors,
  );
  const append = (n: number): void => void entries.push(entry(n));
  return { receiver, delivered, append };
}

describe('EventReceiver catch-up after a Redis outage', () => {
  it('holds live messages from the outage on, so one that comes before the catch-up cannot pass it', async () => {
    const { receiver, delivered } = node();
    receiver.suspend(); // the connection to Redis dropped; 0–19 were published meanwhile
    // ioredis re-subscribed before the node heard Redis was back: 15–19 arrive live first.
    for (let n = 15; n < 20; n++) receiver.onMessage(live(n));
    expect(delivered).toEqual([]);
    await receiver.catchUp();
    expect(delivered).toEqual(Array.from({ length: 20 }, (_, n) => `gap-${n}`));
  });

  it('delivers live messages at once when no outage is under way', () => {
    const { receiver, delivered } = node();
    receiver.onMessage(live(0));
    expect(delivered).toEqual(['gap-0']);
  });

  it('keeps holding when Redis is lost again during a catch-up, until the next one', async () => {
    const { receiver, delivered, append } = node(10);
    receiver.suspend();
    const first = receiver.catchUp();
    receiver.suspend(); // lost again before the first catch-up finished; 10–19 published meanwhile
    for (let n = 10; n < 20; n++) append(n);
    receiver.onMessage(live(15)); // re-subscribed before the node heard Redis was back
    await first;
    expect(delivered).toEqual(Array.from({ length: 10 }, (_, n) => `gap-${n}`));
    await receiver.catchUp();
    expect(delivered).toEqual(Array.from({ length: 20 }, (_, n) => `gap-${n}`));
  });
});
