import { describe, expect, it } from 'vitest';
import { configFrom } from '../config/index.js';
import { MemoryLog } from '../history/memory-log.js';
import { StreamLayout, decodePosition } from '../history/streams.js';
import type { Cursor, StreamRead } from '../history/types.js';
import { createLogger } from '../util/logger.js';
import { createHub } from './hub.js';
import { FakeClock, makePrincipal, RecordingSink, TableAuthenticator } from './testing.js';
import type { PublishEnvelope } from './types.js';

/** The memory log, with reads that wait until the test releases them (to hold a handshake mid-replay). */
class GatedLog extends MemoryLog {
  gate: Promise<void> = Promise.resolve();
  readonly reads: string[] = [];
  override async read(stream: string, from: Cursor, limit: number): Promise<StreamRead> {
    this.reads.push(stream);
    await this.gate;
    return super.read(stream, from, limit);
  }
  override async heads(streams: readonly string[]): Promise<Map<string, Cursor>> {
    await this.gate;
    return super.heads(streams);
  }
}

function setupWith(env: Record<string, string>, layout: StreamLayout) {
  const clock = new FakeClock();
  const log = new GatedLog(0, () => clock.now(), layout);
  const hub = createHub({
    config: configFrom({ RECOVERY_MAX_EVENTS: '50', ...env }),
    authenticator: new TableAuthenticator(clock),
    clock,
    logger: createLogger('silent'),
    log,
  });
  const info = { ip: '127.0.0.1', userAgent: undefined, tokenSource: 'auth' as const };
  const connect = (userId: string, position?: string, options: { scopes?: string[]; narrow?: string[] } = {}) => {
    const sink = new RecordingSink();
    const resume = {
      ...(position === undefined ? {} : { position }),
      ...(options.narrow ? { narrow: options.narrow } : {}),
    };
    const session = hub.register(
      makePrincipal({ userId, expiresAt: clock.now() + 600_000, scopes: options.scopes ?? [] }),
      sink,
      info,
      resume,
    );
    return { sink, session };
  };
  const toUser = (n: number, user = 'u'): PublishEnvelope => ({
    id: `e${n}`,
    event: 'tick',
    data: { n },
    to: { users: [user], scopes: [], channels: [] },
  });
  return { hub, log, clock, connect, toUser };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const ns = (sink: RecordingSink) => sink.events.map((e) => (e.data as { n: number }).n);
const lastPosition = (sink: RecordingSink) => sink.positions.at(-1) ?? created(sink).position;
const created = (sink: RecordingSink) =>
  sink.systemOf('session_created')[0]!.payload as { recovered?: boolean; position?: string; narrow?: string[] };

// Spread 1: one stream per scope (the store, a standalone Redis). Spread 8: `*` and top-level scopes
// are 8 sub-streams each, read together (a Redis Cluster's default).
describe.each([1, 8])('recovery over per-addressee streams (HISTORY_SPREAD %i)', (spread) => {
  const layout = new StreamLayout(spread);
  const star = [...layout.scopeStreams('*')];
  const setup = (env: Record<string, string> = {}) => setupWith(env, layout);

  it('live events arriving while the replay is read follow it, in order, and the ones the replay sent are dropped', async () => {
    const { hub, log, connect, toUser } = setup();
    const first = connect('u');
    await settle();
    for (let n = 1; n <= 2; n++) await hub.publish(toUser(n));
    const position = lastPosition(first.sink)!;
    hub.unregister(first.session, 'client');
    for (let n = 3; n <= 5; n++) await hub.publish(toUser(n));

    let release!: () => void;
    log.gate = new Promise((resolve) => (release = resolve));
    const { sink } = connect('u', position);
    // Published while the read is pending: 6 and 7 are in the log (the read will see them) and
    // delivered live too; the session must get each once.
    await hub.publish(toUser(6));
    await hub.publish(toUser(7));
    expect(sink.events).toEqual([]);
    release();
    await settle();
    await hub.publish(toUser(8));

    expect(ns(sink)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(created(sink)).toMatchObject({ recovered: true, position });
    // Every event carries the position to store next: its own offset in the user's stream.
    expect(sink.positions.map((p) => [...decodePosition(p!, layout)!.values()][0]!.offset)).toEqual([3, 4, 5, 6, 7, 8]);
  });

  it('a live copy delivered again by a broker after the replay is not sent twice', async () => {
    const { hub, log, connect, toUser } = setup();
    const { sink } = connect('u');
    await settle();
    const logged = await log.append(toUser(1));
    hub.deliverLocal(toUser(1), undefined, logged.cursors);
    hub.deliverLocal(toUser(1), undefined, logged.cursors); // e.g. a late pub/sub copy
    expect(ns(sink)).toEqual([1]);
  });

  it('counts RECOVERY_MAX_EVENTS against its own events only: 400 foreign events and 3 of its own recover', async () => {
    const { hub, connect, toUser } = setup({ RECOVERY_MAX_EVENTS: '300' });
    const first = connect('u', undefined, { scopes: ['ke/a'] });
    await settle();
    const position = created(first.sink).position!;
    hub.unregister(first.session, 'client');
    for (let n = 1; n <= 400; n++) {
      await hub.publish(n % 2 === 0 ? toUser(n, `other-${n}`) : { ...toUser(n), to: { scopes: ['ke/b/x'] } });
    }
    for (let n = 401; n <= 403; n++) await hub.publish(toUser(n));
    const { sink } = connect('u', position, { scopes: ['ke/a'] });
    await settle();
    expect(created(sink).recovered).toBe(true);
    expect(ns(sink)).toEqual([401, 402, 403]);
  });

  it('a gap larger than RECOVERY_MAX_EVENTS replays nothing and says recovered:false with the heads', async () => {
    const { hub, connect, toUser } = setup({ RECOVERY_MAX_EVENTS: '3' });
    const first = connect('u');
    await settle();
    const position = created(first.sink).position!;
    hub.unregister(first.session, 'client');
    for (let n = 1; n <= 6; n++) await hub.publish(toUser(n));
    const { sink } = connect('u', position);
    await settle();
    expect(sink.events).toEqual([]);
    expect(created(sink).recovered).toBe(false);
    expect([...decodePosition(created(sink).position!, layout)!.values()][0]?.offset).toBe(6);
  });

  it('an event to a user and to a scope the same connection holds arrives once, live and in replay', async () => {
    const { hub, connect } = setup();
    const { sink, session } = connect('u', undefined, { scopes: ['ke/a'] });
    await settle();
    const both = { event: 'tick', data: { n: 1 }, to: { users: ['u'], scopes: ['ke/a/w1'] } };
    await hub.publish({ ...both, id: 'b1' });
    expect(ns(sink)).toEqual([1]);
    const position = lastPosition(sink)!;
    hub.unregister(session, 'client');
    await hub.publish({ ...both, id: 'b2', data: { n: 2 } });
    const again = connect('u', position, { scopes: ['ke/a'] });
    await settle();
    expect(created(again.sink).recovered).toBe(true);
    expect(ns(again.sink)).toEqual([2]);
  });

  it("an admin holding * recovers 500 events to 50 wards, each ward in order, reading only *'s stream(s)", async () => {
    const { hub, log, connect } = setup({ RECOVERY_MAX_EVENTS: '1000' });
    const first = connect('admin', undefined, { scopes: ['*'] });
    await settle();
    const position = created(first.sink).position!;
    hub.unregister(first.session, 'client');
    for (let n = 0; n < 500; n++)
      await hub.publish({ event: 'tick', data: { n, ward: n % 50 }, to: { scopes: [`ke/d${n % 5}/w${n % 50}`] } });
    log.reads.length = 0;
    const { sink } = connect('admin', position, { scopes: ['*'] });
    await settle();
    expect(created(sink).recovered).toBe(true);
    expect(ns(sink)).toEqual([...Array(500).keys()]);
    expect(log.reads.sort()).toEqual([...star, 'u:admin'].sort());
    // Spread: the 50 wards' events went to several of *'s sub-streams, each ward's to one.
    const heads = await log.heads(star);
    expect([...heads.values()].filter((h) => h.offset > 0).length).toBeGreaterThan(spread === 1 ? 0 : 3);
    expect([...heads.values()].reduce((sum, h) => sum + h.offset, 0)).toBe(500);
  });

  it('a phone narrowed to two wards receives only theirs, live and after a reconnect, and reads only their streams', async () => {
    const { hub, log, connect } = setup();
    const narrow = ['ke/d0/w1', 'ke/d0/w2'];
    const phone = connect('admin', undefined, { scopes: ['*'], narrow });
    const desk = connect('admin', undefined, { scopes: ['*'] });
    await settle();
    expect(created(phone.sink).narrow).toEqual(narrow);
    const ward = (n: number, w: string) => ({ event: 'tick', data: { n }, to: { scopes: [`ke/d0/${w}`] } });
    await hub.publish(ward(1, 'w1'));
    await hub.publish(ward(2, 'w3'));
    await hub.publish(ward(3, 'w2'));
    expect(ns(phone.sink)).toEqual([1, 3]);
    expect(ns(desk.sink)).toEqual([1, 2, 3]);

    const position = lastPosition(phone.sink)!;
    hub.unregister(phone.session, 'client');
    await hub.publish(ward(4, 'w2'));
    await hub.publish(ward(5, 'w3'));
    log.reads.length = 0;
    const again = connect('admin', position, { scopes: ['*'], narrow });
    await settle();
    expect(created(again.sink).recovered).toBe(true);
    expect(ns(again.sink)).toEqual([4]);
    expect(log.reads.sort()).toEqual(['s:ke/d0/w1', 's:ke/d0/w2', 'u:admin']);
  });

  it('a phone that narrows from * to two wards while away recovers their events from the * stream it was reading', async () => {
    const { hub, log, connect } = setup();
    const first = connect('admin', undefined, { scopes: ['*'] });
    await settle();
    const position = created(first.sink).position!;
    hub.unregister(first.session, 'client');
    const ward = (n: number, w: string) => ({ event: 'tick', data: { n }, to: { scopes: [`ke/d0/${w}`] } });
    await hub.publish(ward(1, 'w1'));
    await hub.publish(ward(2, 'w3'));
    await hub.publish(ward(3, 'w2'));
    log.reads.length = 0;
    const phone = connect('admin', position, { scopes: ['*'], narrow: ['ke/d0/w1', 'ke/d0/w2'] });
    await settle();
    expect(created(phone.sink).recovered).toBe(true);
    expect(ns(phone.sink)).toEqual([1, 3]);
    expect(log.reads.sort()).toEqual([...star, 'u:admin'].sort());
    await hub.publish(ward(4, 'w2'));
    await hub.publish(ward(5, 'w3'));
    expect(ns(phone.sink)).toEqual([1, 3, 4]);
  });

  it('narrowing never widens past the grants, and a grant change re-checks it', async () => {
    const { hub, connect } = setup();
    const { sink, session } = connect('eo', undefined, { scopes: ['ke/d0'] });
    await settle();
    expect(hub.narrow(session, ['ke/d0/w1', 'ke/d1/w9', '*'])).toEqual({ ok: true, scopes: ['ke/d0/w1'] });
    await hub.publish({ event: 'tick', data: { n: 1 }, to: { scopes: ['ke/d1/w9'] } });
    await hub.publish({ event: 'tick', data: { n: 2 }, to: { scopes: ['ke/d0/w1'] } });
    hub.updateGrants('eo', { scopes: ['ke/d1'] });
    await hub.publish({ event: 'tick', data: { n: 3 }, to: { scopes: ['ke/d0/w1'] } });
    await hub.publish({ event: 'tick', data: { n: 4 }, to: { scopes: ['ke/d1/w9'] } });
    expect(ns(sink)).toEqual([2]);
    expect(hub.narrow(session, null)).toEqual({ ok: true });
    await hub.publish({ event: 'tick', data: { n: 5 }, to: { scopes: ['ke/d1/w9'] } });
    expect(ns(sink)).toEqual([2, 5]);
    expect(hub.narrow(session, ['not a scope'])).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
  });

  it('a position made under another stream layout gets recovered:false, never a silent gap', async () => {
    const other = new StreamLayout(spread === 1 ? 8 : 1);
    const { hub: before, connect: connectBefore } = setupWith({}, other);
    const first = connectBefore('admin', undefined, { scopes: ['*'] });
    await settle();
    const position = created(first.sink).position!;
    expect(decodePosition(position, layout)).toBeUndefined();
    before.unregister(first.session, 'client');
    const { hub, connect } = setup();
    await hub.publish({ event: 'tick', data: { n: 1 }, to: { scopes: ['ke/d0/w1'] } });
    const { sink } = connect('admin', position, { scopes: ['*'] });
    await settle();
    expect(created(sink).recovered).toBe(false);
    expect(decodePosition(created(sink).position!, layout)!.size).toBe(star.length + 1);
  });

  it('a position of the old format, or garbage, gets recovered:false and the heads, never an error', async () => {
    const { hub, connect, toUser } = setup();
    await hub.publish(toUser(1));
    for (const position of ['a1b2c3d4e5f6a7b8:42', '2.garbage', 'x'.repeat(5000)]) {
      const { sink } = connect('u', position);
      await settle();
      expect(created(sink).recovered, position).toBe(false);
      expect(sink.events).toEqual([]);
    }
  });

  it('a channel joined since the client left starts at its head; the rest recovers', async () => {
    const { hub, connect, toUser, clock } = setup();
    const first = connect('u');
    await settle();
    const position = created(first.sink).position!;
    hub.unregister(first.session, 'client');
    await hub.publish({ event: 'tick', data: { n: 1 }, to: { channels: ['room:1'] } });
    await hub.publish(toUser(2));
    const sink = new RecordingSink();
    hub.register(
      makePrincipal({ userId: 'u', expiresAt: clock.now() + 600_000, channels: ['room:*'] }),
      sink,
      { ip: '127.0.0.1', userAgent: undefined, tokenSource: 'auth' },
      { position, channels: ['room:1'] },
    );
    await settle();
    expect(created(sink).recovered).toBe(true);
    expect(ns(sink)).toEqual([2]);
    await hub.publish({ event: 'tick', data: { n: 3 }, to: { channels: ['room:1'] } });
    expect(ns(sink)).toEqual([2, 3]);
  });

  it('a session closed while its replay is read gets nothing', async () => {
    const { hub, log, connect, toUser } = setup();
    await hub.publish(toUser(1));
    let release!: () => void;
    log.gate = new Promise((resolve) => (release = resolve));
    const { sink, session } = connect('u');
    hub.disconnectUser('u');
    release();
    await settle();
    expect(session.closed).toBe(true);
    expect(sink.events).toEqual([]);
    expect(sink.systemOf('session_created')).toEqual([]);
  });
});
