import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_NOTIFY_APPLICATION_NAME } from '../packages/server/src/ingest/pg-notify.js';
import { createDatabase, pollUntil } from './helpers/cluster.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

/** PostgreSQL change ingest: LISTEN on configured channels, publish each NOTIFY payload. */
describe('Postgres NOTIFY ingest', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let t: TestGateway;
  let sql: pg.Client;
  const clients: { close(): void }[] = [];

  const listenerBackends = async (): Promise<number[]> => {
    const { rows } = await sql.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
      [PG_NOTIFY_APPLICATION_NAME],
    );
    return rows.map((row) => row.pid);
  };

  const notify = (channel: string, payload: unknown) =>
    sql.query('SELECT pg_notify($1, $2)', [channel, typeof payload === 'string' ? payload : JSON.stringify(payload)]);

  beforeAll(async () => {
    db = await createDatabase();
    t = await startGateway({ PG_NOTIFY_URL: db.url, PG_NOTIFY_CHANNELS: 'ticket_changes, cache_invalidation' });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    await pollUntil('the listener to connect', async () => (await listenerBackends()).length === 1);
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await sql?.end();
    await t?.close();
    await db?.drop();
  });

  it('a pg_notify reaches the right client within 100 ms, and not the others', async () => {
    const browser = new WsClient(t.url, {
      headers: { authorization: `Bearer ${t.sign({ sub: 'u-browser', scopes: ['ke/muranga'] })}` },
    });
    const other = new SioClient(t.url, { auth: { token: t.sign({ sub: 'u-other', scopes: ['tz'] }) } });
    clients.push(browser, other);
    await browser.next((f) => f.type === 'session_created');
    await other.session();

    const sentAt = performance.now();
    await notify('cache_invalidation', {
      event: 'cache_invalidate',
      data: { key: 'tickets:42' },
      to: { scopes: ['ke/muranga/kiharu'] },
    });
    const frame = await browser.next((f) => f.type === 'event' && f.event === 'cache_invalidate');
    expect(performance.now() - sentAt).toBeLessThan(100);
    expect(frame.data).toMatchObject({ key: 'tickets:42' });

    // A later event to the other client proves the first one was not sent to it.
    await notify('ticket_changes', { event: 'ticket_updated', data: { id: 't1' }, to: { users: ['u-other'] } });
    await other.first('ticket_updated');
    expect(other.count('cache_invalidate')).toBe(0);
  });

  it('invalid payloads are logged and skipped; the next valid one is published', async () => {
    const client = new SioClient(t.url, { auth: { token: t.sign({ sub: 'u-skip' }) } });
    clients.push(client);
    await client.session();
    await notify('ticket_changes', 'not json');
    await notify('ticket_changes', { event: 'x' });
    await notify('ticket_changes', { event: 'session_created', data: {}, to: { users: ['u-skip'] } });
    await notify('ticket_changes', { event: 'after_invalid', data: {}, to: { users: ['u-skip'] } });
    await client.first('after_invalid');
    expect(client.count('session_created')).toBe(1);
    expect(t.logs()).toContain('invalid NOTIFY payload skipped');
    expect(t.logs()).toContain('NOTIFY payload not published');
  });

  it('reconnects by itself after its backend is terminated', async () => {
    const [pid] = await listenerBackends();
    await sql.query('SELECT pg_terminate_backend($1)', [pid]);
    await pollUntil('a new listener backend', async () => {
      const pids = await listenerBackends();
      return pids.length === 1 && pids[0] !== pid;
    });
    const client = new SioClient(t.url, { auth: { token: t.sign({ sub: 'u-again' }) } });
    clients.push(client);
    await client.session();
    // The LISTEN may be a moment behind the connection: notify until it lands.
    await pollUntil(
      'a NOTIFY after the reconnect',
      async () => {
        await notify('ticket_changes', { event: 'after_reconnect', data: {}, to: { users: ['u-again'] } });
        return client.count('after_reconnect') > 0;
      },
      undefined,
      100,
    );
    expect(t.logs()).toContain('NOTIFY listener lost its connection; reconnecting');
  });
});
