import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, ensureBuilt, pollUntil, REDIS_URL, TestCluster } from './helpers/cluster.js';
import { TetherError, type PublishRequest } from '@tether/protocol';
import { pino } from 'pino';
import { createOutboxIngest, type OutboxIngest } from '../packages/server/src/ingest/outbox.js';
import { systemClock } from '../packages/server/src/util/clock.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { leaderOf, leads } from './helpers/pg-ingest.js';
import { SioClient, WsClient, waitUntil } from './helpers/realtime.js';
import { connect } from './helpers/resumable.js';

/**
 * The transactional outbox (PG_OUTBOX_URL): an app inserts rows in its own transactions; Tether
 * publishes each committed row once, in order, from one node at a time, and never a rolled-back one.
 */

type Db = Awaited<ReturnType<typeof createDatabase>>;

/** A client of either transport, seen as the `n` of every `note` it received, in order. */
interface Receiver {
  notes(): number[];
  /** Resolves once a `done` event arrived (sent after everything else to the same user). */
  done(ms?: number): Promise<unknown>;
  close(): void;
}

function wsReceiver(url: string, token: string): { receiver: Receiver; ready: Promise<unknown> } {
  const c = new WsClient(url, { headers: { authorization: `Bearer ${token}` } });
  const events = (name: string) => c.frames.filter((f) => f.type === 'event' && f.event === name);
  return {
    ready: c.next((f) => f.type === 'session_created'),
    receiver: {
      notes: () => events('note').map((f) => (f.data as { n: number }).n),
      done: (ms) => c.next((f) => f.type === 'event' && f.event === 'done', ms),
      close: () => c.close(),
    },
  };
}

function sioReceiver(url: string, token: string): { receiver: Receiver; ready: Promise<unknown> } {
  const c = new SioClient(url, { auth: { token } });
  return {
    ready: c.session(),
    receiver: {
      notes: () => c.all<{ n: number }>('note').map((d) => d.n),
      done: (ms) => c.first('done', ms),
      close: () => c.close(),
    },
  };
}

const publishRow = (sql: pg.ClientBase, event: string, data: unknown, to: unknown, id?: string) =>
  sql.query<{ id: string }>('SELECT tether.publish($1, $2::jsonb, $3::jsonb, $4) AS id', [
    event,
    JSON.stringify(data),
    JSON.stringify(to),
    id ?? null,
  ]);

const outboxSize = async (sql: pg.ClientBase): Promise<number> =>
  (await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM tether.outbox')).rows[0]!.n;

describe('outbox on one node without Redis', () => {
  let db: Db;
  let t: TestGateway;
  let sql: pg.Client;
  const clients: { close(): void }[] = [];

  beforeAll(async () => {
    db = await createDatabase();
    // No safety-net poll within the test's time: every delivery after the first read is woken by a NOTIFY.
    t = await startGateway({ PG_OUTBOX_URL: db.url, PG_OUTBOX_POLL_MS: '600000' });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await sql?.end();
    await t?.close();
    await db?.drop();
  });

  it('committed rows reach their addressee in insert order; a rolled-back transaction reaches nobody', async () => {
    const { receiver: ann, ready } = wsReceiver(t.url, t.sign({ sub: 'ann' }));
    clients.push(ann);
    await ready;

    await sql.query('BEGIN');
    for (const n of [0, 1, 2]) await publishRow(sql, 'note', { n }, { users: ['ann'] });
    await sql.query('COMMIT');
    await sql.query('BEGIN');
    await publishRow(sql, 'note', { n: 99 }, { users: ['ann'] });
    await sql.query('ROLLBACK');
    // A plain INSERT works as well as the function (the trigger wakes the consumer either way).
    await sql.query(
      `INSERT INTO tether.outbox (event, data, recipients, event_id) VALUES ('note', '{"n":3}', '{"users":["ann"]}', 'app-3'),
       ('done', '{}', '{"users":["ann"]}', NULL)`,
    );
    await ann.done();
    expect(ann.notes()).toEqual([0, 1, 2, 3]);
    // Rows are deleted when their batch commits, just after they were published.
    await pollUntil('the outbox to empty', async () => (await outboxSize(sql)) === 0);
  });

  it('a row keeps its event id: the app-given one, else outbox-<row id>-…', async () => {
    const c = new WsClient(t.url, { headers: { authorization: `Bearer ${t.sign({ sub: 'ids' })}` } });
    clients.push(c);
    await c.next((f) => f.type === 'session_created');
    const { rows } = await publishRow(sql, 'tick', {}, { users: ['ids'] });
    await publishRow(sql, 'tick', {}, { users: ['ids'] }, 'order-42-created');
    const frames = await waitUntil(
      'two ticks',
      () => {
        const ticks = c.frames.filter((f) => f.type === 'event' && f.event === 'tick');
        return ticks.length >= 2 ? ticks : undefined;
      },
      (poke) => c.subscribe(poke),
    );
    expect(frames[0]!.id).toMatch(new RegExp(`^outbox-${rows[0]!.id}-[0-9a-z]+$`));
    expect(frames[1]!.id).toBe('order-42-created');
  });

  it('an invalid row is set aside with its id and reason in the log (never its data), and the rows after it flow', async () => {
    const { receiver: bo, ready } = sioReceiver(t.url, t.sign({ sub: 'bo' }));
    clients.push(bo);
    await ready;
    const secret = 'do-not-log-7f3a';
    await sql.query('BEGIN');
    await publishRow(sql, 'note', { n: 10 }, { users: ['bo'] });
    const reserved = await publishRow(sql, 'session_created', { secret }, { users: ['bo'] });
    const empty = await publishRow(sql, 'note', { secret }, { users: [''] });
    await publishRow(sql, 'note', { n: 11 }, { users: ['bo'] });
    await publishRow(sql, 'done', {}, { users: ['bo'] });
    await sql.query('COMMIT');
    await bo.done();
    expect(bo.notes()).toEqual([10, 11]);

    const logs = t.logs();
    expect(logs).toContain('invalid outbox row set aside');
    expect(logs).toContain(`"row":${reserved.rows[0]!.id}`);
    expect(logs).toContain(`"row":${empty.rows[0]!.id}`);
    expect(logs).not.toContain(secret);
    await pollUntil('the batch to commit', async () => (await outboxSize(sql)) === 0);
    const rejected = await sql.query<{ id: string; reason: string; data: { secret: string } }>(
      'SELECT id, reason, data FROM tether.outbox_rejected ORDER BY id',
    );
    expect(rejected.rows.map((r) => r.id)).toEqual([reserved.rows[0]!.id, empty.rows[0]!.id]);
    expect(rejected.rows[0]!.reason).toContain('reserved');
    expect(rejected.rows[1]!.reason).toContain('to.users[0]');
    // Kept for whoever fixes it.
    expect(rejected.rows[0]!.data.secret).toBe(secret);
  });

  it('data or recipients that are not JSON objects are refused in the app transaction itself', async () => {
    await expect(publishRow(sql, 'note', [1, 2], { users: ['ann'] })).rejects.toThrow(/outbox_data_check/);
    await expect(publishRow(sql, 'note', {}, ['ann'])).rejects.toThrow(/outbox_recipients_check/);
  });

  it('reports rows published, leadership and lag in /metrics', async () => {
    const { body } = await t.http('GET', '/metrics');
    expect(body).toMatch(/tether_pg_leader\{role="outbox"\} 1/);
    expect(body).toMatch(/tether_outbox_rows_total [1-9]/);
    expect(body).toMatch(/tether_outbox_failures_total\{reason="rejected"\} 2/);
    expect(body).toMatch(/tether_outbox_lag_seconds \d/);
  });
});

describe('outbox consumer with a recording publish', () => {
  let db: Db;
  let sql: pg.Client;
  let consumer: OutboxIngest | undefined;
  const published: number[] = [];
  /** The publish of the row with this `n` fails once (the log unavailable). */
  let failAt: number | undefined;
  /** While the row with this `n` is published, the consumer's database session is terminated once. */
  let cutAt: number | undefined;
  const lines: string[] = [];

  const start = async (): Promise<OutboxIngest> => {
    const outbox = createOutboxIngest({
      url: db.url,
      schema: 'tether',
      batchSize: 50,
      pollMs: 600_000,
      async publish(request: PublishRequest) {
        await new Promise((resolve) => setImmediate(resolve));
        const { n } = request.data as { n: number };
        if (n === failAt) {
          failAt = undefined;
          throw new TetherError('PUBLISH_FAILED', 'the log is down');
        }
        if (n === cutAt) {
          cutAt = undefined;
          await sql.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND state = 'idle in transaction'`,
          );
        }
        published.push(n);
        return { id: request.id!, delivered: 0 };
      },
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
      clock: systemClock,
    });
    await outbox.start();
    return outbox;
  };

  beforeAll(async () => {
    db = await createDatabase();
    consumer = await start();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });

  afterAll(async () => {
    await consumer?.stop();
    await sql?.end();
    await db?.drop();
  });

  it('a row that commits after higher ids were published is published then, not skipped', async () => {
    published.length = 0;
    const slow = new pg.Client({ connectionString: db.url });
    await slow.connect();
    await slow.query('BEGIN');
    const early = await publishRow(slow, 'note', { n: 1 }, { users: ['x'] });
    const late = await publishRow(sql, 'note', { n: 2 }, { users: ['x'] });
    expect(Number(early.rows[0]!.id)).toBeLessThan(Number(late.rows[0]!.id));
    await pollUntil('the committed row', () => Promise.resolve(published.includes(2)));
    await slow.query('COMMIT');
    await slow.end();
    await pollUntil('the row committed late', () => Promise.resolve(published.includes(1)));
    expect(published).toEqual([2, 1]);
  });

  it('a failed publish stops the batch there: the rows before it are not published again, the rest follow in order', async () => {
    published.length = 0;
    await sql.query('BEGIN');
    for (let n = 10; n < 20; n++) await publishRow(sql, 'note', { n }, { users: ['x'] });
    failAt = 14;
    await sql.query('COMMIT');
    await pollUntil('every row', () => Promise.resolve(published.includes(19)));
    expect(published).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(lines.join('')).toContain('outbox row not published; retrying later');
    await pollUntil('the outbox to empty', async () => (await outboxSize(sql)) === 0);
  });

  it('rows published by a batch that could not commit are deleted by the retry, not published again', async () => {
    published.length = 0;
    await sql.query('BEGIN');
    for (let n = 40; n < 50; n++) await publishRow(sql, 'note', { n }, { users: ['x'] });
    cutAt = 44;
    await sql.query('COMMIT');
    await pollUntil('the outbox to empty', async () => (await outboxSize(sql)) === 0);
    expect(lines.join('')).toContain('outbox batch failed; retrying later');
    expect(published).toEqual([40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
  });

  it('a second consumer on the same outbox waits, and takes over when the first stops', async () => {
    const second = await start();
    try {
      expect(consumer!.leading()).toBe(true);
      expect(second.leading()).toBe(false);
      await consumer!.stop();
      consumer = undefined;
      await pollUntil('the second to lead', () => Promise.resolve(second.leading()));
      published.length = 0;
      await publishRow(sql, 'note', { n: 30 }, { users: ['x'] });
      await pollUntil('the row', () => Promise.resolve(published.includes(30)));
    } finally {
      await second.stop();
    }
  });
});

describe('outbox rows committed while no node runs', () => {
  let db: Db;
  const gateways: TestGateway[] = [];

  beforeAll(async () => {
    db = await createDatabase();
  });

  afterAll(async () => {
    for (const g of gateways) await g.close();
    await db?.drop();
  });

  it('are published when a node starts, in order, and a client resuming from its position gets them', async () => {
    // Tether's store and the outbox in one database (DATABASE_URL = PG_OUTBOX_URL), as an app may run it.
    const env = { DATABASE_URL: db.url, PG_OUTBOX_URL: db.url };
    const first = await startGateway(env);
    gateways.push(first);
    const before = connect(first.url, 'ws', first.sign({ sub: 'cy' }));
    const { position } = await before.session();
    await before.leave();
    await first.close();
    gateways.pop();

    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    await sql.query('BEGIN');
    for (let n = 0; n < 5; n++) await publishRow(sql, 'tick', { n }, { users: ['cy'] });
    await sql.query('COMMIT');
    await sql.query('BEGIN');
    await publishRow(sql, 'tick', { n: 99 }, { users: ['cy'] });
    await sql.query('ROLLBACK');

    const second = await startGateway(env);
    gateways.push(second);
    await pollUntil('the outbox to be read', async () => (await outboxSize(sql)) === 0);
    await sql.end();
    const after = connect(second.url, 'ws', second.sign({ sub: 'cy' }), { position });
    expect(await after.session()).toMatchObject({ recovered: true });
    await after.waitTicks(5);
    expect(after.ticks().map((tick) => tick.n)).toEqual([0, 1, 2, 3, 4]);
    after.close();
  });
});

describe('outbox with three gateway processes over Redis, its consumer killed and restarted', () => {
  const WRITERS = 4;
  const ROWS = 10_000;
  const ROWS_PER_TX = 25;
  /** Every ROLLBACK_EVERY-th transaction of each writer is rolled back. */
  const ROLLBACK_EVERY = 6;
  let db: Db;
  let cluster: TestCluster;
  let redis: Redis;
  const clients: Receiver[] = [];

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({
      databaseUrl: db.url,
      redisUrl: REDIS_URL,
      extra: { PG_OUTBOX_URL: db.url, MAX_CONNECTIONS_PER_USER: '5' },
    });
    // One after the other: the first creates the tables.
    for (let i = 0; i < 3; i++) await cluster.start();
    redis = new Redis(REDIS_URL);
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    redis?.disconnect();
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it('every committed row reaches its addressee once, in insert order; no rolled-back row does', async () => {
    const consumer = await leaderOf(cluster.nodes, 'outbox');
    const survivors = cluster.nodes.filter((node) => node !== consumer);
    // Each writer owns two addressees; their clients sit on the nodes that stay up, over both transports.
    const users = Array.from({ length: WRITERS * 2 }, (_, i) => `w${Math.floor(i / 2)}u${i % 2}`);
    const receivers = new Map<string, Receiver>();
    await Promise.all(
      users.map((user, i) => {
        const node = survivors[i % 2]!;
        const token = cluster.token(user);
        const { receiver, ready } = i % 4 < 2 ? wsReceiver(node.url, token) : sioReceiver(node.url, token);
        receivers.set(user, receiver);
        clients.push(receiver);
        return ready;
      }),
    );

    const expected = new Map(users.map((user) => [user, [] as number[]]));
    let rolledBack = 0;
    const write = async (w: number): Promise<void> => {
      const sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
      const mine = [`w${w}u0`, `w${w}u1`];
      const next = new Map(mine.map((user) => [user, 0]));
      const transactions = ROWS / WRITERS / ROWS_PER_TX;
      for (let tx = 0; tx < transactions; tx++) {
        const rows: [string, number][] = [];
        await sql.query('BEGIN');
        for (let r = 0; r < ROWS_PER_TX; r++) {
          const user = mine[(tx + r) % 2]!;
          const n = next.get(user)!;
          next.set(user, n + 1);
          rows.push([user, n]);
          const data = JSON.stringify({ n, w, tx });
          const to = JSON.stringify({ users: [user] });
          // Two writers call the function, two insert into the table directly.
          if (w < 2) await sql.query('SELECT tether.publish($1, $2::jsonb, $3::jsonb)', ['note', data, to]);
          else
            await sql.query('INSERT INTO tether.outbox (event, data, recipients) VALUES ($1, $2::jsonb, $3::jsonb)', [
              'note',
              data,
              to,
            ]);
        }
        if (tx % ROLLBACK_EVERY === ROLLBACK_EVERY - 1) {
          await sql.query('ROLLBACK');
          rolledBack += rows.length;
        } else {
          await sql.query('COMMIT');
          for (const [user, n] of rows) expected.get(user)!.push(n);
        }
      }
      await sql.end();
    };
    const writing = Promise.all(Array.from({ length: WRITERS }, (_, w) => write(w)));

    // Mid-way, the consuming node dies without a word, and a node is started in its place.
    const delivered = () => [...receivers.values()].reduce((sum, r) => sum + r.notes().length, 0);
    await pollUntil('a quarter of the rows delivered', () => Promise.resolve(delivered() >= ROWS / 4), 60_000);
    cluster.kill(consumer);
    const deliveredAtKill = delivered();
    await consumer.exit();
    const restarted = cluster.start();
    await pollUntil(
      'a surviving node to take over',
      async () => (await leads(survivors[0]!, 'outbox')) || (await leads(survivors[1]!, 'outbox')),
      30_000,
    );
    await Promise.all([writing, restarted]);
    expect(rolledBack).toBeGreaterThan(0);

    // Sent after everything: once it arrives, every row for that user has arrived as often as it ever will.
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    for (const user of users) await publishRow(sql, 'done', {}, { users: [user] });
    await sql.end();
    await Promise.all(users.map((user) => receivers.get(user)!.done(60_000)));

    let committed = 0;
    for (const user of users) {
      expect(receivers.get(user)!.notes(), user).toEqual(expected.get(user));
      committed += expected.get(user)!.length;
      // Exactly once into the event log, too: the user's stream holds each row once, plus `done`.
      expect(await redis.xlen(`{${cluster.prefix}:u:${user}}:x`), user).toBe(expected.get(user)!.length + 1);
    }
    expect(committed + rolledBack).toBe(ROWS);
    // The kill came mid-way: most rows were delivered after it, by the node that took over.
    expect(deliveredAtKill).toBeLessThan(committed / 2);
  }, 120_000);
});
