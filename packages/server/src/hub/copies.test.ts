import { describe, expect, it } from 'vitest';
import { configFrom } from '../config/index.js';
import { MemoryLog } from '../history/memory-log.js';
import { decodePosition, streamKey } from '../history/streams.js';
import { createLogger } from '../util/logger.js';
import { createHub } from './hub.js';
import { FakeClock, makePrincipal, RecordingSink, TableAuthenticator } from './testing.js';
import type { PublishEnvelope } from './types.js';

/** Per-stream copies, as a Redis Cluster delivers them: each stream's shard publishes its own. */
function setup() {
  const clock = new FakeClock();
  const log = new MemoryLog(0, () => clock.now());
  const hub = createHub({
    config: configFrom({}),
    authenticator: new TableAuthenticator(clock),
    clock,
    logger: createLogger('silent'),
    log,
  });
  const connect = (userId: string, scopes: string[]) => {
    const sink = new RecordingSink();
    hub.register(makePrincipal({ userId, expiresAt: clock.now() + 600_000, scopes }), sink, {
      ip: '127.0.0.1',
      userAgent: undefined,
      tokenSource: 'auth',
    });
    return sink;
  };
  /** Appends to the log and returns one copy per stream, as the shards would publish them. */
  const copiesOf = async (envelope: PublishEnvelope) => {
    const logged = await log.append(envelope);
    return [...logged.cursors].map(
      ([stream, cursor]) =>
        () =>
          hub.deliverCopy(envelope, stream, cursor),
    );
  };
  return { hub, connect, copiesOf };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const event = (n: number, to: PublishEnvelope['to']): PublishEnvelope => ({
  id: `e${n}`,
  event: 'tick',
  data: { n },
  to,
});

describe('per-stream copies (Redis Cluster delivery)', () => {
  it('a connection reading two of the streams gets the event once, and its position covers both', async () => {
    const { connect, copiesOf } = setup();
    const sink = connect('u', ['ke/a']);
    await settle();
    const copies = await copiesOf(event(1, { users: ['u'], scopes: ['ke/a/w1'], channels: [] }));
    expect(copies).toHaveLength(5); // u:u, s:ke/a/w1, s:ke/a, s:ke, s:*
    for (const deliver of copies) deliver();
    expect(sink.events.map((e) => e.id)).toEqual(['e1']);
    // The first copy (u:u) is sent; the s:ke/a copy then moves that cursor silently: the next
    // event's position carries both.
    const next = await copiesOf(event(2, { users: ['u'], scopes: [], channels: [] }));
    for (const deliver of next) deliver();
    const position = decodePosition(sink.positions.at(-1)!)!;
    expect(position.get(streamKey('u:u'))?.offset).toBe(2);
    expect(position.get(streamKey('s:ke/a'))?.offset).toBe(1);
  });

  it('each copy reaches only the connections reading its stream, and a repeated copy is not sent twice', async () => {
    const { connect, copiesOf } = setup();
    const admin = connect('admin', ['*']);
    const officer = connect('eo', ['ke/a']);
    const other = connect('eo2', ['ke/b']);
    await settle();
    const copies = await copiesOf(event(1, { users: [], scopes: ['ke/a/w1'], channels: [] }));
    for (const deliver of [...copies, ...copies]) deliver();
    expect(admin.events.map((e) => e.id)).toEqual(['e1']);
    expect(officer.events.map((e) => e.id)).toEqual(['e1']);
    expect(other.events).toEqual([]);
    // One encoding shared by every copy of the event.
    expect(admin.events[0]?.encoded).toBe(officer.events[0]?.encoded);
  });
});

describe('read points (where a catch-up after a Redis outage starts)', () => {
  it('gives, per stream read, the earliest cursor any local connection holds', async () => {
    const { hub, connect, copiesOf } = setup();
    connect('missed', ['ke/a']);
    await settle();
    // Appended to the log but never delivered here (the node was cut off): 'missed' stays before it,
    // while 'later' connects after it and starts at the head.
    await copiesOf(event(1, { users: [], scopes: ['ke/a'], channels: [] }));
    connect('later', ['ke/a']);
    await settle();
    const points = hub.readPoints();
    expect(points.get('s:ke/a')?.offset).toBe(0);
    expect(points.get('u:missed')?.offset).toBe(0);
    expect(hub.readPoints().get('s:ke/a')).toEqual(points.get('s:ke/a'));
    for (const deliver of await copiesOf(event(2, { users: [], scopes: ['ke/a'], channels: [] }))) deliver();
    // Both got event 2: the earliest is now where both stand.
    expect(hub.readPoints().get('s:ke/a')?.offset).toBe(2);
  });
});
