import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, makePrincipal, RecordingSink } from '../hub/testing.js';
import type { OutboundEvent, Session } from '../hub/types.js';
import { HubSession } from '../hub/session.js';
import { connectSqlite } from '../store/connect.js';
import { TokenBucket } from '../util/rate-limit.js';
import { createLogger } from '../util/logger.js';
import { openDeliveryStore } from './delivery-store.js';
import { DeliveryRecorder, writeSlices, type DeliveryRecordMode, type ReceiptMetrics } from './recorder.js';

const logger = createLogger('silent');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function setup(mode: DeliveryRecordMode = 'users', overrides: { retentionMs?: number; maxRows?: number } = {}) {
  const db = connectSqlite(mkdtempSync(join(tmpdir(), 'tether-recorder-')));
  closers.push(() => db.destroy());
  const store = await openDeliveryStore(db, 'sqlite');
  const clock = new FakeClock();
  const counts = { latency: 0, unacknowledged: 0, dropped: 0, reconnections: 0 };
  // Live sessions per refresh family, as the hub's indexes would answer (the test opens and closes them).
  const open = new Map<string, number>();
  const metrics: ReceiptMetrics = {
    receiptLatency: () => void counts.latency++,
    unacknowledged: (n) => void (counts.unacknowledged += n),
    awaiting: () => {},
    receiptPush: () => {},
    dropped: (n) => void (counts.dropped += n),
    reconnection: () => void counts.reconnections++,
  };
  const recorder = new DeliveryRecorder({
    store,
    settings: {
      mode,
      retentionMs: overrides.retentionMs ?? 86_400_000,
      maxRows: overrides.maxRows ?? 1_000_000,
      receiptTimeoutMs: 1000,
      pushAfterMs: undefined,
    },
    nodeId: 'n1',
    clock,
    logger,
    metrics,
    openInFamily: (family) => open.get(family) ?? 0,
  });
  /** A session opening, as the hub tells it: indexed first, then observed. */
  const opened = (session: Session) => {
    const family = session.principal.sessionFamilyId;
    if (family !== undefined) open.set(family, (open.get(family) ?? 0) + 1);
    recorder.observer.onSessionOpened!(session);
  };
  const closed = (session: Session) => {
    const family = session.principal.sessionFamilyId;
    if (family !== undefined) open.set(family, open.get(family)! - 1);
    recorder.observer.onSessionClosed!(session, 'heartbeat', null);
  };
  return { recorder, store, clock, counts, db, opened, closed };
}

function session(userId: string, family?: string, transport: 'ws' | 'socket.io' = 'ws'): Session {
  return new HubSession(
    `s-${Math.random().toString(36).slice(2)}`,
    makePrincipal({ userId, expiresAt: Date.now() + 60_000, sessionFamilyId: family }),
    new RecordingSink(transport),
    { ip: '127.0.0.1', userAgent: 'test', tokenSource: 'auth' },
    Date.now(),
    () => new TokenBucket(10, 1),
  );
}

function event(id: string, users?: string[]): OutboundEvent {
  return { id, event: 'e', data: {}, publishedAt: performance.now(), encoded: {}, ...(users ? { users } : {}) };
}

describe('delivery recorder', () => {
  it('records the deliveries of user-addressed events to their users only, and their receipts', async () => {
    const { recorder } = await setup('users');
    const alice = session('alice', 'phone');
    const bob = session('bob', 'laptop');
    recorder.addressed({ id: 'e1', event: 'ticket', users: ['alice'] });
    recorder.sent(alice, event('e1', ['alice']), 'live');
    // Bob received it through a scope: not an addressed user, not recorded.
    recorder.sent(bob, event('e1', ['alice']), 'live');
    // A scope event: not recorded at all, nor its receipt.
    recorder.sent(alice, event('scope-event'), 'live');
    recorder.receipt(alice, ['e1', 'scope-event']);
    const report = (await recorder.deliveries('e1'))!;
    expect(report.event).toBe('ticket');
    expect(report.users).toHaveLength(1);
    expect(report.users[0]).toMatchObject({ userId: 'alice', acknowledged: true });
    expect(report.users[0]!.devices).toEqual([
      expect.objectContaining({
        device: 'phone',
        transport: 'ws',
        node: 'n1',
        path: 'live',
        acknowledgedAt: expect.any(Number),
      }),
    ]);
    expect(report.unacknowledged).toBe(0);
    expect(await recorder.deliveries('scope-event')).toBeUndefined();
  });

  it('finds the addressed user in a long list, and records every recipient with mode all', async () => {
    const users = Array.from({ length: 50 }, (_, i) => `u${i}`);
    const { recorder } = await setup('users');
    const e = event('e2', users);
    recorder.sent(session('u42'), e, 'live');
    recorder.sent(session('outsider'), e, 'live');
    expect((await recorder.deliveries('e2'))!.users.map((u) => u.userId)).toEqual(['u42']);

    const all = (await setup('all')).recorder;
    all.sent(session('x'), event('e3'), 'live');
    expect((await all.deliveries('e3'))!.users.map((u) => u.userId)).toEqual(['x']);
  });

  it('matches a receipt sent on a later connection to the same device', async () => {
    const { recorder, counts } = await setup();
    const before = session('alice', 'phone');
    recorder.sent(before, event('e4', ['alice']), 'live');
    const after = session('alice', 'phone'); // reconnected: a new connection of the same login
    recorder.receipt(after, ['e4']);
    const device = (await recorder.deliveries('e4'))!.users[0]!.devices[0]!;
    expect(device.sessionId).toBe(before.id);
    expect(device.acknowledgedAt).not.toBeNull();
    // No latency sample: the receipt did not come from the connection the event was written to.
    expect(counts.latency).toBe(0);
  });

  it('counts deliveries without a receipt within the timeout as unacknowledged', async () => {
    const { recorder, clock, counts } = await setup();
    recorder.start();
    const alice = session('alice');
    recorder.sent(alice, event('e5', ['alice']), 'live');
    recorder.sent(alice, event('e6', ['alice']), 'live');
    recorder.receipt(alice, ['e6']);
    clock.advance(2500);
    await recorder.close();
    expect(counts).toMatchObject({ unacknowledged: 1, latency: 1 });
  });

  it('writes a timeline from the lifecycle and counts a device connecting again within the hour', async () => {
    const { recorder, clock, counts } = await setup();
    const first = session('alice', 'phone');
    recorder.observer.onSessionOpened!(first);
    recorder.observer.onExpiryWarning!(first);
    recorder.observer.onReauth!(first, false, 'AUTH_INVALID', { check: 'signature' });
    recorder.observer.onSessionClosed!(first, 'heartbeat', null);
    clock.advance(5000);
    const second = session('alice', 'phone');
    recorder.observer.onSessionOpened!(second);
    recorder.observer.onSessionClosed!(second, 'expired', 'AUTH_EXPIRED');
    const { entries, reconnectsLastHour } = await recorder.timelineOf('alice', { limit: 100 });
    expect(entries.map((e) => [e.kind, e.code, e.reason])).toEqual([
      ['connect', null, null],
      ['warning', null, null],
      ['reauth_failed', 'AUTH_INVALID', 'signature'],
      ['disconnect', null, 'heartbeat'],
      ['connect', null, null],
      ['expired', 'AUTH_EXPIRED', 'expired'],
    ]);
    expect(reconnectsLastHour).toBe(1);
    expect(counts.reconnections).toBe(1);
    // Paging back from an entry.
    const older = await recorder.timelineOf('alice', { limit: 2, before: entries[4]!.id });
    expect(older.entries.map((e) => e.kind)).toEqual(['reauth_failed', 'disconnect']);
  });

  it('counts a device back while its old connection is still open, or within an hour after it closed', async () => {
    const { recorder, clock, counts, opened, closed } = await setup();
    const phone = session('alice', 'phone');
    opened(phone);
    expect(counts.reconnections).toBe(0);
    // Back on another network before the old connection is found dead.
    const again = session('alice', 'phone');
    opened(again);
    expect(counts.reconnections).toBe(1);
    closed(phone);
    // Connected for two hours, then dropped: back within seconds is a reconnection.
    clock.advance(2 * 3_600_000);
    closed(again);
    clock.advance(5_000);
    const third = session('alice', 'phone');
    opened(third);
    expect(counts.reconnections).toBe(2);
    closed(third);
    // Back more than an hour after the last connection closed: a new visit, not a reconnection.
    clock.advance(3_601_000);
    opened(session('alice', 'phone'));
    expect(counts.reconnections).toBe(2);
    // Without a refresh family a connection is never recognised as the same device.
    const bare = session('bob');
    opened(bare);
    closed(bare);
    opened(session('bob'));
    expect(counts.reconnections).toBe(2);
    await recorder.close();
  });

  it('deletes rows past the retention age and beyond the row cap', async () => {
    const { recorder, store, clock } = await setup('users', { retentionMs: 10_000, maxRows: 1000 });
    const alice = session('alice');
    recorder.sent(alice, event('old', ['alice']), 'live');
    await recorder.flush();
    clock.advance(20_000);
    for (let i = 0; i < 1500; i++) recorder.sent(alice, event(`n${i}`, ['alice']), 'live');
    await recorder.flush();
    const deleted = await store.prune(clock.now() - 10_000, 1000);
    expect(deleted).toBe(1 + 500);
    expect(await store.prune(clock.now() - 10_000, 1000)).toBe(0);
    expect(await recorder.deliveries('old')).toBeUndefined();
    expect(await recorder.deliveries('n0')).toBeUndefined();
    expect(await recorder.deliveries('n1499')).toBeDefined();
  });

  it("keeps no index on the timeline's time: pruning walks ids, reads go by user", async () => {
    const { db } = await setup();
    const indexes = await sql<{
      name: string;
    }>`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tether_timeline'`.execute(db);
    expect(indexes.rows.map((row) => row.name)).toEqual(['tether_timeline_user']);
  });

  it('records nothing with mode off', async () => {
    const { recorder } = await setup('off');
    const alice = session('alice');
    recorder.addressed({ id: 'e7', event: 'x', users: ['alice'] });
    recorder.sent(alice, event('e7', ['alice']), 'live');
    recorder.observer.onSessionOpened!(alice);
    expect(await recorder.deliveries('e7')).toBeUndefined();
    expect((await recorder.timelineOf('alice', { limit: 10 })).entries).toEqual([]);
  });
});

describe('writing the record in slices', () => {
  it('cuts the rows into slices of at most the size, in order, losing none', () => {
    const rows = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ tag, i }));
    const deliveries = rows(3, 'd');
    const timeline = rows(4, 't');
    const pending = rows(2, 'p');
    const slices = writeSlices({ deliveries, timeline, pending } as never, 4) as unknown as {
      deliveries: unknown[];
      timeline: unknown[];
      pending: unknown[];
    }[];
    expect(slices.map((s) => [s.deliveries.length, s.timeline.length, s.pending.length])).toEqual([
      [3, 1, 0],
      [0, 3, 1],
      [0, 0, 1],
    ]);
    expect(slices.flatMap((s) => s.deliveries)).toEqual(deliveries);
    expect(slices.flatMap((s) => s.timeline)).toEqual(timeline);
    expect(slices.flatMap((s) => s.pending)).toEqual(pending);
  });

  it('a busy flush is written as several transactions, with the event loop free between them', async () => {
    const { recorder, store } = await setup();
    const writes: number[] = [];
    let timerRanBetween = false;
    const write = store.write.bind(store);
    store.write = async (rows) => {
      writes.push(rows.deliveries.length + rows.timeline.length + rows.pending.length);
      if (writes.length === 1) setTimeout(() => void (timerRanBetween = writes.length < 4), 0);
      return write(rows);
    };
    const one = session('storm');
    for (let i = 0; i < 900; i++) recorder.observer.onReauth!(one, true, undefined, undefined);
    await recorder.flush();
    expect(writes).toEqual([250, 250, 250, 150]);
    expect(timerRanBetween).toBe(true);
    expect((await recorder.timelineOf('storm', { limit: 1000 })).entries).toHaveLength(900);
  });
});
