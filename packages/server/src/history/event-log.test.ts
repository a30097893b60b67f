import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../hub/testing.js';
import type { PublishEnvelope } from '../hub/types.js';
import { connectPostgres, connectSqlite } from '../store/connect.js';
import { runMigrations } from '../store/migrations.js';
import type { Database, StoreDialect } from '../store/schema.js';
import { createLogger } from '../util/logger.js';
import { MemoryLog } from './memory-log.js';
import { createRedisLog, parseLogMessage, redisTag, type RedisEventLog } from './redis-log.js';
import { createStoreLog, type StoreEventLog } from './store-log.js';
import { HISTORY_MIGRATIONS, HISTORY_MIGRATION_TABLE } from './store-schema.js';
import { StreamLayout } from './streams.js';
import { NO_EPOCH, type Cursor, type EventLog, type LoggedEvent } from './types.js';

const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger('silent');
/** Time of the memory and store logs (Redis keeps its own). */
const clock = new FakeClock();
const START: Cursor = { epoch: NO_EPOCH, offset: 0 };

interface LogOptions {
  maxEvents?: number;
  maxAgeSeconds?: number;
  /** Store logs only. */
  commitWindowMs?: number;
  onCommit?(events: number): void;
}

/** An implementation under test: how to get a fresh, empty log, and how to clean up after. */
interface Subject<L extends EventLog = EventLog> {
  name: string;
  /** Count retention the retention tests use; Redis's `MAXLEN ~` only drops whole radix nodes. */
  retention: { maxEvents: number; busy: number; exact: boolean };
  start(): Promise<void>;
  stop(): Promise<void>;
  open(options?: LogOptions): Promise<L>;
  /** Closes the logs opened by the test and removes what they wrote. */
  cleanup(): Promise<void>;
}

interface StoreSubject extends Subject<StoreEventLog> {
  /** Opens a log on the database as it is (a restart), without emptying it first. */
  reopen(options?: LogOptions): Promise<StoreEventLog>;
  /** The database the logs are opened on. */
  db(): Kysely<Database>;
}

interface RedisSubject extends Subject<RedisEventLog> {
  /** The key prefix of the log opened last. */
  prefix(): string;
  redis(): Redis;
}

const memorySubject: Subject = {
  name: 'memory',
  retention: { maxEvents: 3, busy: 10, exact: true },
  start: () => Promise.resolve(),
  stop: () => Promise.resolve(),
  open: (options = {}) => Promise.resolve(new MemoryLog(options.maxEvents ?? 0, () => clock.now())),
  cleanup: () => Promise.resolve(),
};

function storeSubject(dialect: StoreDialect): StoreSubject {
  let db: Kysely<Database> | undefined;
  let dataDir = '';
  let dbName: string | undefined;
  const opened: StoreEventLog[] = [];
  const handle = (): Kysely<Database> => {
    if (db === undefined) throw new Error('the store is not open');
    return db;
  };
  const admin = async (statement: string): Promise<void> => {
    const client = new pg.Client({ connectionString: ADMIN_URL });
    await client.connect();
    await client.query(statement);
    await client.end();
  };
  const reopen = async (options: LogOptions = {}): Promise<StoreEventLog> => {
    const log = await createStoreLog(handle(), dialect, {
      maxEvents: options.maxEvents ?? 0,
      maxAgeSeconds: options.maxAgeSeconds ?? 0,
      clock,
      logger,
      trimIntervalMs: 0,
      ...(options.commitWindowMs === undefined ? {} : { commitWindowMs: options.commitWindowMs }),
      ...(options.onCommit === undefined ? {} : { onCommit: options.onCommit }),
    });
    opened.push(log);
    return log;
  };
  return {
    name: `store on ${dialect}`,
    retention: { maxEvents: 3, busy: 10, exact: true },
    async start() {
      dataDir = mkdtempSync(join(tmpdir(), 'tether-event-log-'));
      if (dialect === 'sqlite') {
        db = connectSqlite(dataDir);
        return;
      }
      dbName = `tether_event_log_${randomBytes(6).toString('hex')}`;
      await admin(`CREATE DATABASE ${dbName}`);
      const url = new URL(ADMIN_URL);
      url.pathname = `/${dbName}`;
      db = await connectPostgres(url.toString(), logger);
    },
    async stop() {
      await db?.destroy();
      rmSync(dataDir, { recursive: true, force: true });
      if (dbName !== undefined) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    },
    async open(options) {
      // One database per suite: each test starts from empty tables.
      await runMigrations(handle(), dialect, HISTORY_MIGRATIONS, HISTORY_MIGRATION_TABLE);
      for (const table of ['tether_log_entries', 'tether_log_events', 'tether_log_streams'])
        await sql`DELETE FROM ${sql.table(table)}`.execute(handle());
      return reopen(options);
    },
    reopen,
    db: handle,
    async cleanup() {
      for (const log of opened.splice(0)) await log.close();
    },
  };
}

function redisSubject(): RedisSubject {
  let redis: Redis | undefined;
  const prefixes: string[] = [];
  const connection = (): Redis => {
    if (redis === undefined) throw new Error('Redis is not connected');
    return redis;
  };
  return {
    name: 'redis',
    retention: { maxEvents: 100, busy: 500, exact: false },
    start() {
      redis = new Redis(REDIS_URL);
      return Promise.resolve();
    },
    async stop() {
      await redis?.quit();
    },
    open(options = {}) {
      const prefix = `test-event-log-${randomBytes(6).toString('hex')}`;
      prefixes.push(prefix);
      return Promise.resolve(
        createRedisLog(connection(), {
          prefix,
          maxEvents: options.maxEvents ?? 0,
          maxAgeSeconds: options.maxAgeSeconds ?? 0,
        }),
      );
    },
    async cleanup() {
      for (const prefix of prefixes.splice(0)) {
        let cursor = '0';
        do {
          const [next, keys] = await connection().scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
          if (keys.length > 0) await connection().del(...keys);
          cursor = next;
        } while (cursor !== '0');
      }
    },
    prefix: () => prefixes.at(-1) ?? '',
    redis: connection,
  };
}

let ids = 0;
/** A publish to the given addressees, with a fresh id. */
function publish(to: Partial<PublishEnvelope['to']>): PublishEnvelope {
  const id = `e${++ids}`;
  return { id, event: 'tick', data: { id }, to: { users: [], scopes: [], channels: [], ...to } };
}

const cursorOf = (event: LoggedEvent, stream: string): Cursor => {
  const cursor = event.cursors.get(stream);
  if (cursor === undefined) throw new Error(`${event.envelope.id} has no cursor in ${stream}`);
  return cursor;
};

/** Yields the event loop `n` times, so appends land in different store batches. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

function withLifecycle(subject: Subject): void {
  beforeAll(() => subject.start());
  afterEach(() => subject.cleanup());
  afterAll(() => subject.stop());
}

const sqlite = storeSubject('sqlite');
const postgres = storeSubject('postgres');
const redis = redisSubject();

describe.each<Subject>([memorySubject, sqlite, postgres, redis])('the event log contract ($name)', (subject) => {
  withLifecycle(subject);

  it('an event gets a cursor in exactly its streams, each stream with its own epoch and offsets 1, 2, 3…', async () => {
    const log = await subject.open();
    const envelope = publish({ users: ['u1'], scopes: ['ke/a/b'] });
    const first = await log.append(envelope);
    expect([...first.cursors.keys()].sort()).toEqual(StreamLayout.SINGLE.streamsOf(envelope).sort());
    expect([...first.cursors.keys()].sort()).toEqual(['s:*', 's:ke', 's:ke/a', 's:ke/a/b', 'u:u1']);
    const epochs = [...first.cursors.values()].map((c) => c.epoch);
    for (const cursor of first.cursors.values())
      expect(cursor).toEqual({ epoch: expect.stringMatching(/^[A-Za-z0-9_-]{8}$/), offset: 1 });
    expect(new Set(epochs).size).toBe(5);

    const second = await log.append(publish({ scopes: ['ke/a'] }));
    expect(second.cursors).toEqual(
      new Map(['s:ke/a', 's:ke', 's:*'].map((s) => [s, { epoch: cursorOf(first, s).epoch, offset: 2 }])),
    );
    const third = await log.append(publish({ users: ['u1'] }));
    expect(third.cursors).toEqual(new Map([['u:u1', { epoch: cursorOf(first, 'u:u1').epoch, offset: 2 }]]));

    const heads = await log.heads(['u:u1', 's:ke/a/b', 's:ke/a', 's:ke', 's:*']);
    expect([...heads.values()].map((h) => h.offset)).toEqual([2, 1, 2, 2, 2]);
    for (const [stream, head] of heads) expect(head.epoch).toBe(cursorOf(first, stream).epoch);
  });

  it('a stream nobody appended to has offset 0 and no epoch, and reads as empty and complete', async () => {
    const log = await subject.open();
    await log.append(publish({ users: ['u1'] }));
    expect(await log.heads(['u:nobody'])).toEqual(new Map([['u:nobody', START]]));
    expect(await log.read('u:nobody', START, 10)).toEqual({ entries: [], complete: true, head: START });
  });

  it('read returns the entries strictly after the cursor in offset order, with envelope, time and append order', async () => {
    const log = await subject.open();
    const appended: LoggedEvent[] = [];
    for (let n = 0; n < 6; n++) {
      clock.advance(10);
      appended.push(await log.append(publish({ users: [n % 2 === 0 ? 'u1' : 'u2'] })));
    }
    const mine = appended.filter((e) => e.cursors.has('u:u1'));
    const epoch = cursorOf(mine[0]!, 'u:u1').epoch;
    const read = await log.read('u:u1', { epoch, offset: 1 }, 10);
    expect(read.complete).toBe(true);
    expect(read.head).toEqual({ epoch, offset: 3 });
    expect(read.entries).toEqual(
      mine.slice(1).map((e) => ({ offset: cursorOf(e, 'u:u1').offset, envelope: e.envelope, at: e.at, seq: e.seq })),
    );
    expect(read.entries.map((e) => e.offset)).toEqual([2, 3]);
    // seq counts appends across streams: u2's event between them took one.
    expect(read.entries[1]!.seq).toBeGreaterThan(read.entries[0]!.seq + 1);
    expect(appended.map((e) => e.seq)).toEqual([...appended.map((e) => e.seq)].sort((a, b) => a - b));
    expect(new Set(appended.map((e) => e.seq)).size).toBe(appended.length);
    for (let i = 1; i < appended.length; i++) expect(appended[i]!.at).toBeGreaterThanOrEqual(appended[i - 1]!.at);
    expect(await log.read('u:u1', { epoch, offset: 3 }, 10)).toEqual({ entries: [], complete: true, head: read.head });
  });

  it('a reader that saw a stream before it existed reads all of it, complete, from offset 0 and no epoch', async () => {
    const log = await subject.open();
    const before = (await log.heads(['c:room'])).get('c:room')!;
    expect(before).toEqual(START);
    for (let n = 0; n < 3; n++) await log.append(publish({ channels: ['room'] }));
    const read = await log.read('c:room', before, 10);
    expect(read.complete).toBe(true);
    expect(read.entries.map((e) => e.offset)).toEqual([1, 2, 3]);
  });

  it('a cursor of another epoch, or beyond the head, is not complete', async () => {
    const log = await subject.open();
    const event = await log.append(publish({ users: ['u1'], channels: ['room'] }));
    await log.append(publish({ users: ['u1'] }));
    const head: Cursor = { epoch: cursorOf(event, 'u:u1').epoch, offset: 2 };
    const otherEpoch = cursorOf(event, 'c:room').epoch;
    expect(await log.read('u:u1', { epoch: otherEpoch, offset: 1 }, 10)).toEqual({
      entries: [],
      complete: false,
      head,
    });
    expect(await log.read('u:u1', { epoch: NO_EPOCH, offset: 1 }, 10)).toEqual({ entries: [], complete: false, head });
    expect(await log.read('u:u1', { epoch: head.epoch, offset: 3 }, 10)).toEqual({
      entries: [],
      complete: false,
      head,
    });
  });

  it('a read cut by the limit is not complete; one that reaches the head is', async () => {
    const log = await subject.open();
    for (let n = 0; n < 3; n++) await log.append(publish({ users: ['u1'] }));
    const cut = await log.read('u:u1', START, 2);
    expect(cut.entries.map((e) => e.offset)).toEqual([1, 2]);
    expect(cut.complete).toBe(false);
    expect((await log.read('u:u1', START, 3)).complete).toBe(true);
    const rest = await log.read('u:u1', { epoch: cut.head.epoch, offset: 2 }, 1);
    expect(rest.entries.map((e) => e.offset)).toEqual([3]);
    expect(rest.complete).toBe(true);
  });

  it('a cursor whose successors were trimmed by count retention is not complete; one within the kept entries is', async () => {
    const { maxEvents, busy, exact } = subject.retention;
    const log = await subject.open({ maxEvents });
    await Promise.all(Array.from({ length: busy }, () => log.append(publish({ users: ['busy'] }))));
    await log.trim();
    const all = await log.read('u:busy', START, busy);
    expect(all.head.offset).toBe(busy);
    expect(all.complete).toBe(false);
    expect(all.entries[0]!.offset).toBeGreaterThan(1);
    const kept = await log.read('u:busy', { epoch: all.head.epoch, offset: busy - maxEvents }, busy);
    expect(kept.complete).toBe(true);
    expect(kept.entries.map((e) => e.offset)).toEqual(
      Array.from({ length: maxEvents }, (_, i) => busy - maxEvents + 1 + i),
    );
    if (exact) {
      expect(all.entries).toHaveLength(maxEvents);
      expect((await log.read('u:busy', { epoch: all.head.epoch, offset: busy - maxEvents - 1 }, busy)).complete).toBe(
        false,
      );
    }
  });

  it('count retention is per stream: a quiet stream keeps its entries while a busy one is trimmed', async () => {
    const { maxEvents, busy } = subject.retention;
    const log = await subject.open({ maxEvents });
    await log.append(publish({ users: ['quiet'] }));
    await Promise.all(Array.from({ length: busy }, () => log.append(publish({ users: ['busy'] }))));
    await log.append(publish({ users: ['quiet'] }));
    await log.trim();
    const quiet = await log.read('u:quiet', START, 10);
    expect(quiet.complete).toBe(true);
    expect(quiet.entries.map((e) => e.offset)).toEqual([1, 2]);
    expect((await log.read('u:busy', START, busy)).complete).toBe(false);
  });

  it('appending the same id again (a retried publish) returns the first cursors and appends nothing', async () => {
    const log = await subject.open();
    const envelope = publish({ users: ['u1'], scopes: ['ke'] });
    const first = await log.append(envelope);
    const heads = await log.heads(['u:u1', 's:ke', 's:*']);
    const retried = await log.append({ ...envelope });
    expect(retried.cursors).toEqual(first.cursors);
    expect(retried.seq).toBe(first.seq);
    expect(await log.heads(['u:u1', 's:ke', 's:*'])).toEqual(heads);
    expect((await log.read('u:u1', START, 10)).entries.map((e) => e.envelope.id)).toEqual([envelope.id]);
    expect(cursorOf(await log.append(publish({ users: ['u1'] })), 'u:u1').offset).toBe(2);
  });

  it('the same id appended twice in one turn is appended once', async () => {
    const log = await subject.open();
    const envelope = publish({ users: ['u1'] });
    const [a, b] = await Promise.all([log.append(envelope), log.append({ ...envelope })]);
    expect(b.cursors).toEqual(a.cursors);
    expect(b.seq).toBe(a.seq);
    expect(cursorOf(a, 'u:u1').offset).toBe(1);
    const read = await log.read('u:u1', START, 10);
    expect(read.entries.map((e) => e.envelope.id)).toEqual([envelope.id]);
    expect(read.head.offset).toBe(1);
  });

  it('heads returns every stream asked for, known or not', async () => {
    const log = await subject.open();
    const event = await log.append(publish({ users: ['u1'], channels: ['room'] }));
    const heads = await log.heads(['u:u1', 'c:room', 'u:nobody', 's:*']);
    expect(heads).toEqual(
      new Map([
        ['u:u1', cursorOf(event, 'u:u1')],
        ['c:room', cursorOf(event, 'c:room')],
        ['u:nobody', START],
        ['s:*', START],
      ]),
    );
  });

  it('50 concurrent appends to overlapping streams keep every stream contiguous and seq increasing', async () => {
    const log = await subject.open();
    const appended = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        await turns(i % 4);
        return log.append(
          publish({
            users: [`u${i % 3}`],
            scopes: [i % 2 === 0 ? 'ke/a' : 'ke/b'],
            channels: i % 5 === 0 ? ['room'] : [],
          }),
        );
      }),
    );
    expect(new Set(appended.map((e) => e.seq)).size).toBe(50);
    const streams = new Set(appended.flatMap((e) => [...e.cursors.keys()]));
    expect(streams.size).toBe(8); // u:u0…u:u2, s:ke/a, s:ke/b, s:ke, s:*, c:room
    for (const stream of streams) {
      const addressed = appended.filter((e) => e.cursors.has(stream));
      const read = await log.read(stream, START, 100);
      expect(read.complete).toBe(true);
      expect(read.entries.map((e) => e.offset)).toEqual(addressed.map((_, i) => i + 1));
      const byOffset = new Map(addressed.map((e) => [cursorOf(e, stream).offset, e.envelope.id]));
      for (const entry of read.entries) expect(entry.envelope.id).toBe(byOffset.get(entry.offset));
      for (let i = 1; i < read.entries.length; i++) {
        expect(read.entries[i]!.seq).toBeGreaterThan(read.entries[i - 1]!.seq);
        expect(read.entries[i]!.at).toBeGreaterThanOrEqual(read.entries[i - 1]!.at);
      }
    }
  });
});

describe.each<StoreSubject>([sqlite, postgres])('the event log in the store ($name)', (subject) => {
  withLifecycle(subject);

  it('a restart keeps each stream’s epoch and head, and continues its offsets', async () => {
    const before = await subject.open();
    let last: LoggedEvent | undefined;
    for (let n = 0; n < 3; n++) last = await before.append(publish({ users: ['u1'], scopes: ['ke'] }));
    const heads = await before.heads(['u:u1', 's:ke', 's:*']);
    await before.close();

    const after = await subject.reopen();
    expect(await after.heads(['u:u1', 's:ke', 's:*'])).toEqual(heads);
    const next = await after.append(publish({ users: ['u1'] }));
    expect(next.cursors).toEqual(new Map([['u:u1', { epoch: heads.get('u:u1')!.epoch, offset: 4 }]]));
    expect(next.seq).toBeGreaterThan(last!.seq);
    const read = await after.read('u:u1', START, 10);
    expect(read.complete).toBe(true);
    expect(read.entries.map((e) => e.offset)).toEqual([1, 2, 3, 4]);
  });

  it('group commit: appends arriving within the window after a commit share one transaction; an idle append does not wait', async () => {
    const commits: number[] = [];
    const windowMs = 1_000;
    const log = await subject.open({ commitWindowMs: windowMs, onCommit: (events) => commits.push(events) });
    await log.append(publish({ users: ['u1'] }));
    expect(commits).toEqual([1]);
    // Busy: three appends in three turns right after that commit are held for the window, then written together.
    const held: Promise<LoggedEvent>[] = [];
    for (let n = 0; n < 3; n++) {
      held.push(log.append(publish({ users: ['u1'] })));
      await turns(1);
    }
    expect(commits).toEqual([1]);
    const offsets = (await Promise.all(held)).map((event) => cursorOf(event, 'u:u1').offset);
    expect(offsets).toEqual([2, 3, 4]);
    expect(commits).toEqual([1, 3]);
    // Idle again (the window has passed): an append is written at once, not after a window.
    await new Promise((resolve) => setTimeout(resolve, windowMs + 50));
    const started = performance.now();
    expect(cursorOf(await log.append(publish({ users: ['u1'] })), 'u:u1').offset).toBe(5);
    expect(performance.now() - started).toBeLessThan(windowMs * 0.9);
    expect(commits).toEqual([1, 3, 1]);
  });

  it('a stream found absent is not asked for again until this log appends to it', async () => {
    const log = await subject.open();
    const none = { epoch: NO_EPOCH, offset: 0 };
    // Its own append makes a stream found absent present.
    expect((await log.heads(['u:u8'])).get('u:u8')).toEqual(none);
    const own = cursorOf(await log.append(publish({ users: ['u8'] })), 'u:u8');
    expect(own.offset).toBe(1);
    expect((await log.heads(['u:u8'])).get('u:u8')).toEqual(own);
    // A second writer (which the store log does not support) is the only way the store can change
    // behind it: the first log still answers from memory, so it did not ask the store again.
    expect((await log.heads(['u:u9'])).get('u:u9')).toEqual(none);
    const other = await subject.reopen();
    const written = cursorOf(await other.append(publish({ users: ['u9'] })), 'u:u9');
    expect((await log.heads(['u:u9'])).get('u:u9')).toEqual(none);
    expect((await (await subject.reopen()).heads(['u:u9'])).get('u:u9')).toEqual(written);
  });

  it('a publish retried after a restart is still appended once', async () => {
    const before = await subject.open();
    const envelope = publish({ users: ['u1'] });
    const first = await before.append(envelope);
    await before.close();
    const after = await subject.reopen();
    const retried = await after.append({ ...envelope });
    expect(retried.cursors).toEqual(first.cursors);
    expect(retried.seq).toBe(first.seq);
    expect((await after.read('u:u1', START, 10)).entries).toHaveLength(1);
  });

  it('age retention removes old entries but keeps head and epoch: a cursor before them is incomplete, one after complete', async () => {
    const log = await subject.open({ maxAgeSeconds: 60 });
    await log.append(publish({ users: ['u1'] }));
    await log.append(publish({ users: ['u1'] }));
    clock.advance(61_000);
    const young = await log.append(publish({ users: ['u1'] }));
    const { epoch } = cursorOf(young, 'u:u1');
    expect(await log.trim()).toBe(2);

    expect((await log.heads(['u:u1'])).get('u:u1')).toEqual({ epoch, offset: 3 });
    expect(await log.read('u:u1', START, 10)).toMatchObject({ complete: false, head: { epoch, offset: 3 } });
    expect((await log.read('u:u1', { epoch, offset: 1 }, 10)).complete).toBe(false);
    const tail = await log.read('u:u1', { epoch, offset: 2 }, 10);
    expect(tail).toMatchObject({ complete: true, entries: [{ offset: 3, envelope: young.envelope }] });

    clock.advance(61_000);
    expect(await log.trim()).toBe(1);
    expect(await log.read('u:u1', { epoch, offset: 3 }, 10)).toEqual({
      entries: [],
      complete: true,
      head: { epoch, offset: 3 },
    });
    expect((await log.read('u:u1', { epoch, offset: 2 }, 10)).complete).toBe(false);
    expect(cursorOf(await log.append(publish({ users: ['u1'] })), 'u:u1')).toEqual({ epoch, offset: 4 });
  });

  it('a stream that retention emptied keeps its head across a restart: its offsets are never reused', async () => {
    const log = await subject.open({ maxAgeSeconds: 60, maxEvents: 2 });
    for (let n = 0; n < 3; n++) await log.append(publish({ users: ['u1', 'u2'] }));
    await log.append(publish({ users: ['u2'] }));
    const { epoch } = (await log.heads(['u:u1'])).get('u:u1')!;
    expect(await log.trim()).toBe(3); // by count: u1's first, u2's first two
    clock.advance(61_000);
    await log.append(publish({ users: ['u3'] }));
    expect(await log.trim()).toBe(4); // by age: every entry of u1 and u2
    await log.close();

    const after = await subject.reopen({ maxAgeSeconds: 60, maxEvents: 2 });
    const heads = await after.heads(['u:u1', 'u:u2']);
    expect(heads.get('u:u1')).toEqual({ epoch, offset: 3 });
    expect(heads.get('u:u2')?.offset).toBe(4);
    expect(await after.read('u:u1', { epoch, offset: 1 }, 10)).toMatchObject({ entries: [], complete: false });
    expect(cursorOf(await after.append(publish({ users: ['u1'] })), 'u:u1')).toEqual({ epoch, offset: 4 });
  });
});

describe.each<StoreSubject & { dialect: StoreDialect }>([
  { ...sqlite, dialect: 'sqlite' },
  { ...postgres, dialect: 'postgres' },
])('the event log in the store, migrated ($name)', (subject) => {
  withLifecycle(subject);

  it('a log written before 0003-lean-log keeps its epochs, heads, entries and ids', async () => {
    await subject.open();
    const db = subject.db();
    // Back to the schema of 0002, with a log written in it.
    await sql`DROP TABLE tether_log_entries`.execute(db);
    await sql`DROP TABLE tether_log_events`.execute(db);
    await sql`DROP TABLE tether_log_streams`.execute(db);
    await sql`DELETE FROM tether_history_migrations`.execute(db);
    const { '0001-history': first, '0002-streams': second } = HISTORY_MIGRATIONS;
    await runMigrations(
      db,
      subject.dialect,
      { '0001-history': first!, '0002-streams': second! },
      HISTORY_MIGRATION_TABLE,
    );
    const old = [publish({ users: ['u1'], scopes: ['ke'] }), publish({ users: ['u1'] })];
    await sql`INSERT INTO tether_log_streams (name, epoch, head) VALUES
      ('u:u1', 'EpOcH_01', 2), ('s:ke', 'EpOcH_02', 1), ('s:*', 'EpOcH_03', 1), ('u:u2', 'EpOcH_04', 5)`.execute(db);
    await sql`INSERT INTO tether_log_events (seq, id, body, at) VALUES
      (1, ${old[0]!.id}, ${JSON.stringify(old[0])}, 1000), (2, ${old[1]!.id}, ${JSON.stringify(old[1])}, 2000)`.execute(
      db,
    );
    await sql`INSERT INTO tether_log_entries (stream, off, seq) VALUES
      ('u:u1', 1, 1), ('s:ke', 1, 1), ('s:*', 1, 1), ('u:u1', 2, 2)`.execute(db);

    const log = await subject.reopen();
    expect(await log.heads(['u:u1', 's:ke', 's:*', 'u:u2'])).toEqual(
      new Map([
        ['u:u1', { epoch: 'EpOcH_01', offset: 2 }],
        ['s:ke', { epoch: 'EpOcH_02', offset: 1 }],
        ['s:*', { epoch: 'EpOcH_03', offset: 1 }],
        ['u:u2', { epoch: 'EpOcH_04', offset: 5 }], // its entries were trimmed: the row's head stands
      ]),
    );
    const read = await log.read('u:u1', START, 10);
    expect(read.complete).toBe(true);
    expect(read.entries.map((e) => [e.offset, e.seq, e.at, e.envelope.id])).toEqual([
      [1, 1, 1000, old[0]!.id],
      [2, 2, 2000, old[1]!.id],
    ]);
    expect((await log.append({ ...old[0]! })).seq).toBe(1); // a retry is still found by its id
    const next = await log.append(publish({ users: ['u1', 'u2'] }));
    expect(next.seq).toBe(3);
    expect(next.cursors).toEqual(
      new Map([
        ['u:u1', { epoch: 'EpOcH_01', offset: 3 }],
        ['u:u2', { epoch: 'EpOcH_04', offset: 6 }],
      ]),
    );
    const atIndex =
      subject.dialect === 'sqlite'
        ? sql`SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'tether_log_events_at'`
        : sql`SELECT indexname FROM pg_indexes WHERE indexname = 'tether_log_events_at' AND schemaname = current_schema()`;
    expect((await atIndex.execute(db)).rows).toEqual([]);
  });
});

describe('the event log in Redis', () => {
  const subject = redisSubject();
  withLifecycle(subject);

  it('appendAndPublish publishes the logged event, with the cursors it returned, to a subscriber of the channel', async () => {
    const log = await subject.open();
    const channel = `${subject.prefix()}:interest`;
    const subscriber = new Redis(REDIS_URL);
    try {
      await subscriber.subscribe(channel);
      const received = new Promise<string>((resolve) =>
        subscriber.once('message', (_: string, text: string) => resolve(text)),
      );
      const envelope = publish({ users: ['u1'], scopes: ['ke/a'] });
      const logged = await log.appendAndPublish(envelope, [channel]);
      const message = parseLogMessage(await received);
      expect(message).toEqual({
        env: envelope,
        at: logged.at,
        seq: logged.seq,
        cur: [...logged.cursors].map(([stream, { epoch, offset }]) => [stream, epoch, offset]),
      });
    } finally {
      await subscriber.quit();
    }
  });

  it('a stream whose keys Redis lost starts a new epoch, and cursors of the old one are incomplete', async () => {
    const log = await subject.open();
    const first = await log.append(publish({ users: ['u1'] }));
    const tag = redisTag(subject.prefix(), 'u:u1');
    await subject.redis().del(`${tag}:x`, `${tag}:m`);
    const next = await log.append(publish({ users: ['u1'] }));
    const old = cursorOf(first, 'u:u1');
    expect(cursorOf(next, 'u:u1').offset).toBe(1);
    expect(cursorOf(next, 'u:u1').epoch).not.toBe(old.epoch);
    expect((await log.read('u:u1', old, 10)).complete).toBe(false);
  });

  // What a promoted replica (or a master restarted from an older snapshot) sees: the stream's hash,
  // written by another Redis process, possibly short of appends that process acknowledged.
  it.each(['append', 'heads'] as const)(
    'a stream last written by another Redis process gets a new epoch at its head (found by %s)',
    async (first) => {
      const log = await subject.open();
      const before = cursorOf(await log.append(publish({ users: ['u1'] })), 'u:u1');
      cursorOf(await log.append(publish({ users: ['u1'] })), 'u:u1');
      await subject.redis().hset(`${redisTag(subject.prefix(), 'u:u1')}:m`, 'run', 'a-failed-master');
      let epoch: string;
      if (first === 'heads') {
        const head = (await log.heads(['u:u1'])).get('u:u1')!;
        expect(head.offset).toBe(2);
        epoch = head.epoch;
        expect((await log.heads(['u:u1'])).get('u:u1')).toEqual(head);
        expect(cursorOf(await log.append(publish({ users: ['u1'] })), 'u:u1')).toEqual({ epoch, offset: 3 });
      } else {
        const next = cursorOf(await log.append(publish({ users: ['u1'] })), 'u:u1');
        expect(next.offset).toBe(3);
        epoch = next.epoch;
      }
      expect(epoch).not.toBe(before.epoch);
      // Nobody continues the old epoch, from before or after the old head.
      for (const offset of [1, 2, 3]) {
        expect((await log.read('u:u1', { epoch: before.epoch, offset }, 10)).complete).toBe(false);
      }
      const after = cursorOf(await log.append(publish({ users: ['u1'] })), 'u:u1');
      expect(after).toEqual({ epoch, offset: 4 });
      expect(await log.read('u:u1', { epoch, offset: 3 }, 10)).toMatchObject({ complete: true, head: after });
    },
  );

  it('age retention keeps up with a stream that holds many expired entries, 8 per append, then scans no more', async () => {
    const log = await subject.open({ maxAgeSeconds: 60 });
    const redis = subject.redis();
    const tag = redisTag(subject.prefix(), 'u:old');
    // 20 entries appended two minutes ago (as a stream looks after a quiet spell with the age limit
    // at 60 s), by this Redis process.
    const run = /run_id:(\w+)/.exec(await redis.info('server'))![1]!;
    const then = Date.now() - 120_000;
    for (let off = 1; off <= 20; off++) await redis.xadd(`${tag}:x`, `0-${off}`, 'e', '{}', 't', then, 'q', off);
    await redis.hset(`${tag}:m`, 'epoch', 'oldepoch', 'head', 20, 'run', run);

    const lengths: number[] = [];
    for (let i = 0; i < 4; i++) {
      await log.append(publish({ users: ['old'] }));
      lengths.push(await redis.xlen(`${tag}:x`));
    }
    // Each append drops 8 expired entries until none is left; its own entry stays.
    expect(lengths).toEqual([12 + 1, 4 + 2, 3, 4]);
    expect(Number(await redis.hget(`${tag}:m`, 't0'))).toBeGreaterThan(then);
    expect((await log.read('u:old', { epoch: 'oldepoch', offset: 20 }, 10)).entries).toHaveLength(4);
    expect((await log.read('u:old', { epoch: 'oldepoch', offset: 19 }, 10)).complete).toBe(false);
  });

  it('an unreachable Redis makes append fail with PUBLISH_FAILED', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    const log = createRedisLog(dead, { prefix: 'unreachable', maxEvents: 0, maxAgeSeconds: 0 });
    await expect(log.append(publish({ users: ['u1'] }))).rejects.toMatchObject({ code: 'PUBLISH_FAILED' });
  });
});
