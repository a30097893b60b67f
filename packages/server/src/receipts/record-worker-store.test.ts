import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectSqlite, sqliteHandle } from '../store/connect.js';
import { createLogger } from '../util/logger.js';
import { openDeliveryStore, type DeliveryRow, type TimelineRow } from './delivery-store.js';
import { openRecordWorker, RECORD_FILE, type RecordWorkerStore } from './record-worker-store.js';

// The worker runs the build (`npm test` builds first); these tests run against it.
const logger = createLogger('silent');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function open(dir: string, main?: Parameters<typeof openRecordWorker>[1]): Promise<RecordWorkerStore> {
  const store = await openRecordWorker(dir, main, logger);
  closers.push(() => store.close());
  return store;
}

const timelineRow = (n: number, userId = `u${n % 50}`): TimelineRow => ({
  user_id: userId,
  session_id: `s${n}`,
  device: `d${n % 7}`,
  kind: n % 2 === 0 ? 'connect' : 'reauth',
  code: null,
  reason: null,
  transport: 'ws',
  node: 'n1',
  at: 1_000 + n,
  detail: n % 2 === 0 ? '{"userAgent":"test"}' : null,
});

const deliveryRow = (eventId: string, kind: DeliveryRow['kind'], sessionId: string, ackedAt: number | null = null) => ({
  event_id: eventId,
  user_id: 'alice',
  session_id: sessionId,
  device: sessionId === '' ? '' : `dev-${sessionId}`,
  kind,
  at: 5_000,
  transport: sessionId === '' ? '' : 'ws',
  node: 'n1',
  detail: kind === 'addressed' ? 'order_ready' : null,
  acked_at: ackedAt,
});

describe('the embedded delivery record on its own thread', () => {
  it('writes and reads every kind of row in its own file, as the in-thread store does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tether-record-'));
    const store = await open(dir);
    expect(existsSync(join(dir, RECORD_FILE))).toBe(true);
    const rows = [
      deliveryRow('e1', 'addressed', ''),
      deliveryRow('e1', 'live', 'c1', 5_010),
      deliveryRow('e1', 'recovery', 'c2'),
      deliveryRow('e2', 'live', 'c1'),
    ];
    await store.write({
      deliveries: rows,
      timeline: [timelineRow(1, 'alice'), timelineRow(2, 'alice'), timelineRow(3, 'bob')],
      pending: [{ event_id: 'e1', user_id: 'alice', due_at: 9_000, body: '{"event":"order_ready","data":{}}' }],
    });
    // The same pending push again keeps its first due time.
    await store.write({
      deliveries: [],
      timeline: [],
      pending: [{ event_id: 'e1', user_id: 'alice', due_at: 99_000, body: '{}' }],
    });

    expect(await store.deliveriesOf('e1', 100)).toEqual(rows.slice(0, 3));
    expect(await store.acknowledged('e1', 'alice')).toBe(true);
    expect(await store.acknowledged('e2', 'alice')).toBe(false);
    const timeline = await store.timelineOf('alice', 10);
    expect(timeline.map((row) => [row.kind, row.session_id])).toEqual([
      ['connect', 's2'],
      ['reauth', 's1'],
    ]);
    expect(await store.connectsSince('alice', 0)).toEqual({ connects: 1, devices: 1 });
    expect(await store.duePushes(10_000, 10)).toEqual([
      { event_id: 'e1', user_id: 'alice', due_at: 9_000, body: '{"event":"order_ready","data":{}}' },
    ]);
    expect(await store.claimPush('e1', 'alice')).toBe(true);
    expect(await store.claimPush('e1', 'alice')).toBe(false);
    // Older than 1002.5: alice's two timeline rows (at 1001, 1002); deliveries are at 5000.
    expect(await store.prune(1_002.5, 1_000)).toBe(2);
    expect(await store.timelineOf('alice', 10)).toEqual([]);
    expect(await store.timelineOf('bob', 10)).toHaveLength(1);
  });

  it('keeps the event loop free while it writes a big flush', async () => {
    const store = await open(mkdtempSync(join(tmpdir(), 'tether-record-')));
    const timeline = Array.from({ length: 20_000 }, (_, n) => timelineRow(n, `user-${n}`));
    // Timers that run while the write is in flight. Written on this thread (the in-thread store:
    // better-sqlite3 is synchronous), none would: the rows take 100–600 ms here and hold the loop.
    let ticks = 0;
    const ticker = setInterval(() => void ticks++, 1);
    try {
      await store.write({ deliveries: [], timeline, pending: [] });
    } finally {
      clearInterval(ticker);
    }
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(await store.timelineOf('user-7', 10)).toHaveLength(1);
  });

  it('moves the rows an earlier release kept in the main store, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tether-record-'));
    const main = connectSqlite(dir);
    closers.push(() => main.destroy());
    const legacy = await openDeliveryStore(main, 'sqlite');
    await legacy.write({
      deliveries: [deliveryRow('e1', 'addressed', ''), deliveryRow('e1', 'live', 'c1', 5_010)],
      timeline: [timelineRow(1, 'alice'), timelineRow(2, 'alice')],
      pending: [{ event_id: 'e1', user_id: 'alice', due_at: 9_000, body: '{}' }],
    });

    const store = await open(dir, sqliteHandle(main));
    expect((await store.timelineOf('alice', 10)).map((row) => row.session_id)).toEqual(['s2', 's1']);
    expect(await store.deliveriesOf('e1', 10)).toHaveLength(2);
    expect(await store.duePushes(10_000, 10)).toHaveLength(1);
    const tables = sqliteHandle(main)!
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tether_%'")
      .pluck()
      .all();
    expect(tables).not.toContain('tether_timeline');
    expect(tables).not.toContain('tether_deliveries');
    expect(tables).not.toContain('tether_pending_pushes');
    expect(tables).not.toContain('tether_receipt_migrations');
    // New ids follow the copied ones.
    await store.write({ deliveries: [], timeline: [timelineRow(3, 'alice')], pending: [] });
    const ids = (await store.timelineOf('alice', 10)).map((row) => row.id);
    expect(ids[0]).toBeGreaterThan(ids[1]!);

    // A second start finds nothing left to move and copies nothing twice.
    await store.close();
    const again = await open(dir, sqliteHandle(main));
    expect(await again.timelineOf('alice', 10)).toHaveLength(3);
  });

  it('starts in a process run with Node options a worker refuses (--expose-gc)', () => {
    const dist = new URL('../../dist/receipts/record-worker-store.js', import.meta.url).href;
    const script = `
      const { openRecordWorker } = await import(${JSON.stringify(dist)});
      const silent = { info() {}, error() {}, warn() {}, debug() {}, child() { return silent; } };
      const store = await openRecordWorker(process.argv[1], undefined, silent);
      await store.write({ deliveries: [], timeline: [], pending: [{ event_id: 'e', user_id: 'u', due_at: 1, body: '{}' }] });
      console.log(JSON.stringify(await store.duePushes(2, 10)));
      await store.close();`;
    const run = spawnSync(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', script, mkdtempSync(join(tmpdir(), 'tether-record-'))],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual([{ event_id: 'e', user_id: 'u', due_at: 1, body: '{}' }]);
  });

  it('fails the calls in flight when its worker dies, and starts a new one at the next call', async () => {
    // The worker is reached only through postMessage: note the instance each call is posted to.
    const posted = vi.spyOn(Worker.prototype, 'postMessage');
    const workerOfLastCall = () => posted.mock.contexts.at(-1) as Worker;
    const errors: unknown[] = [];
    const watching = createLogger('silent');
    watching.error = ((obj: unknown) => void errors.push(obj)) as typeof watching.error;
    const dir = mkdtempSync(join(tmpdir(), 'tether-record-'));
    const store = await openRecordWorker(dir, undefined, watching);
    closers.push(() => store.close());
    try {
      await store.write({ deliveries: [], timeline: [timelineRow(1, 'alice')], pending: [] });
      const first = workerOfLastCall();
      // A big write (100 ms and more of the worker's time), and the thread ends under it.
      const inFlight = store.write({
        deliveries: [],
        timeline: Array.from({ length: 20_000 }, (_, n) => timelineRow(n, `user-${n}`)),
        pending: [],
      });
      const exited = new Promise((resolve) => first.once('exit', resolve));
      void first.terminate();
      await expect(inFlight).rejects.toThrow('delivery record worker stopped');
      await exited;
      expect(errors).toContainEqual(expect.objectContaining({ code: 1 }));

      // The next call starts a new worker on the same file: what was committed before is there.
      expect((await store.timelineOf('alice', 10)).map((row) => row.session_id)).toEqual(['s1']);
      expect(workerOfLastCall()).not.toBe(first);
      await store.write({ deliveries: [], timeline: [timelineRow(2, 'alice')], pending: [] });
      expect(await store.timelineOf('alice', 10)).toHaveLength(2);
    } finally {
      posted.mockRestore();
    }
  });

  it('refuses calls after close', async () => {
    const store = await open(mkdtempSync(join(tmpdir(), 'tether-record-')));
    await store.close();
    await expect(store.timelineOf('alice', 1)).rejects.toThrow(/closed/);
  });
});
