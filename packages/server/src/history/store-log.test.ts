import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom } from '../config/index.js';
import type { PublishEnvelope } from '../hub/types.js';
import { openStore, type OpenStore } from '../store/index.js';
import { FakeClock } from '../hub/testing.js';
import { createLogger } from '../util/logger.js';
import { createStoreLog } from './store-log.js';

const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const logger = createLogger('silent');

const envelope = (n: number): PublishEnvelope => ({
  id: `e${n}`,
  event: 'tick',
  data: { n },
  to: { users: ['u'], scopes: [], channels: [] },
});

describe.each(['sqlite', 'postgres'] as const)('store event log on %s', (kind) => {
  let store: OpenStore;
  let dataDir: string;
  let dbName: string | undefined;
  const clock = new FakeClock();

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tether-history-'));
    let databaseUrl: string | undefined;
    if (kind === 'postgres') {
      dbName = `tether_history_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      await admin.end();
      const url = new URL(ADMIN_URL);
      url.pathname = `/${dbName}`;
      databaseUrl = url.toString();
    }
    store = await openStore(
      configFrom({ DATA_DIR: dataDir, ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }) }),
      logger,
    );
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (dbName !== undefined) {
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('assigns contiguous offsets in append order, reads after a position, and keeps its epoch and offsets across a restart', async () => {
    const log = await createStoreLog(store.db, store.kind, {
      maxEvents: 0,
      maxAgeSeconds: 0,
      clock,
      logger,
      trimIntervalMs: 0,
    });
    const appended = await Promise.all([1, 2, 3, 4, 5].map((n) => log.append(envelope(n))));
    expect(appended.map((e) => e.offset)).toEqual(['1', '2', '3', '4', '5']);
    expect(log.knownHead()).toEqual({ epoch: log.epoch(), offset: '5' });

    const read = await log.readAfter(log.epoch(), '2', 10);
    expect(read.complete).toBe(true);
    expect(read.events.map((e) => e.envelope.id)).toEqual(['e3', 'e4', 'e5']);
    expect(await log.readAfter(log.epoch(), '5', 10)).toEqual({ events: [], complete: true });
    // More than the limit, another epoch, a position from the future: not provably complete.
    expect((await log.readAfter(log.epoch(), '0', 3)).complete).toBe(false);
    expect((await log.readAfter('other-epoch', '2', 10)).complete).toBe(false);
    expect((await log.readAfter(log.epoch(), '99', 10)).complete).toBe(false);
    await log.close();

    const again = await createStoreLog(store.db, store.kind, {
      maxEvents: 0,
      maxAgeSeconds: 0,
      clock,
      logger,
      trimIntervalMs: 0,
    });
    expect(again.epoch()).toBe(log.epoch());
    expect((await again.append(envelope(6))).offset).toBe('6');
    await again.close();
  });

  it('trims by count and by age in batches, never the newest event, and reads after a trimmed position are incomplete', async () => {
    const log = await createStoreLog(store.db, store.kind, {
      maxEvents: 10,
      maxAgeSeconds: 60,
      clock,
      logger,
      trimIntervalMs: 0,
      trimBatch: 3,
    });
    const base = Number(log.knownHead().offset);
    for (let n = 0; n < 30; n++) await log.append(envelope(n));
    await log.trim();
    const head = base + 30;
    expect((await log.readAfter(log.epoch(), String(head - 10), 100)).complete).toBe(true);
    expect((await log.readAfter(log.epoch(), String(head - 11), 100)).complete).toBe(false);

    clock.advance(61_000);
    expect(await log.trim()).toBe(9);
    const tail = await log.readAfter(log.epoch(), String(head - 1), 10);
    expect(tail).toMatchObject({ complete: true, events: [{ offset: String(head) }] });
    await log.close();
  });
});
