import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from './helpers/client-harness.js';
import { createDatabase, pollUntil } from './helpers/cluster.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient } from './helpers/realtime.js';

/** Operations metrics on `/metrics`: HTTP latency by route pattern, Redis connections, PostgreSQL ingest. */

/** One sample of the Prometheus text: the value of `name` whose labels include `labels` (undefined: none). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

async function metricsOf(gw: TestGateway): Promise<string> {
  const res = await gw.http('GET', '/metrics');
  expect(res.status).toBe(200);
  return res.body as string;
}

describe('HTTP request metrics', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('times every request by method, route pattern and status, never by the raw path', async () => {
    expect((await gw.api('POST', '/v1/publish', { event: 'hello', to: { users: ['nobody'] } })).status).toBe(202);
    expect((await gw.http('GET', '/no-such-page-7f3a')).status).toBe(404);
    expect((await gw.http('POST', '/v1/publish', { event: 'x', to: { users: ['u'] } })).status).toBe(401);
    expect((await gw.api('POST', '/v1/users/user-8842/disconnect')).status).toBe(200);

    const text = await metricsOf(gw);
    const count = (method: string, route: string, status: string) =>
      sample(text, 'tether_http_request_duration_seconds_count', { method, route, status });
    expect(count('POST', '/v1/publish', '202')).toBe(1);
    expect(count('POST', '/v1/publish', '401')).toBe(1);
    expect(count('GET', 'unmatched', '404')).toBe(1);
    expect(count('POST', '/v1/users/:id/disconnect', '200')).toBe(1);
    expect(
      sample(text, 'tether_http_request_duration_seconds_sum', { route: '/v1/publish', status: '202' }),
    ).toBeGreaterThan(0);
    expect(text).not.toContain('user-8842');
    expect(text).not.toContain('no-such-page');
  });

  it("counts the embedded event log's commits and the events each wrote", async () => {
    const before = await metricsOf(gw);
    const batch = Array.from({ length: 5 }, (_, n) => ({ event: 'tick', data: { n }, to: { users: ['u-log'] } }));
    expect((await gw.api('POST', '/v1/publish', batch)).status).toBe(202);
    const text = await metricsOf(gw);
    const grew = (name: string) => (sample(text, name) ?? 0) - (sample(before, name) ?? 0);
    // One batch publish: its events in one transaction.
    expect(grew('tether_log_commit_events_count')).toBe(1);
    expect(grew('tether_log_commit_events_sum')).toBe(5);
    expect(grew('tether_log_commit_seconds_count')).toBe(1);
  });
});

describe('reconnection count', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it("counts a login's device back while its old connection is open or after it closed, not a token without a family", async () => {
    const reconnections = async () =>
      sample(await metricsOf(gw), 'tether_reconnections_total', { transport: 'socket.io' }) ?? 0;
    const connect = async (claims: { sub: string; sid?: string }) => {
      const client = new SioClient(gw.url, { auth: { token: gw.sign(claims) } });
      await client.session();
      return client;
    };
    const first = await connect({ sub: 'phone-user', sid: 'family-1' });
    expect(await reconnections()).toBe(0);
    // Back (another network) while the gateway still holds the old connection: the hub is asked.
    const second = await connect({ sub: 'phone-user', sid: 'family-1' });
    expect(await reconnections()).toBe(1);
    first.close();
    second.close();
    await pollUntil('both connections closed', async () => {
      const open = sample(await metricsOf(gw), 'tether_connections', { transport: 'socket.io', kind: 'user' });
      return (open ?? 0) === 0;
    });
    // Back after its last connection closed, within the hour.
    (await connect({ sub: 'phone-user', sid: 'family-1' })).close();
    expect(await reconnections()).toBe(2);
    // Connections without a refresh family are never taken for the same device.
    (await connect({ sub: 'bare-user' })).close();
    (await connect({ sub: 'bare-user' })).close();
    expect(await reconnections()).toBe(2);
  });
});

describe('Redis metrics in cluster mode', () => {
  let proxy: TcpProxy;
  let gw: TestGateway;
  beforeAll(async () => {
    // Between the gateway and Redis, so its connections can be cut and restored.
    proxy = await TcpProxy.start(6379);
    gw = await startGateway({
      REDIS_URL: proxy.url.replace(/^http:/, 'redis:'),
      REDIS_PREFIX: `tm-${randomBytes(4).toString('hex')}`,
    });
  });
  afterAll(async () => {
    proxy.restore();
    await gw?.close();
    await proxy?.close();
  });

  it('times appends and control messages, and reports each connection down while Redis is unreachable', async () => {
    expect((await gw.api('POST', '/v1/publish', { event: 'hello', to: { users: ['nobody'] } })).status).toBe(202);
    // A disconnect is sent to every node as a control message.
    expect((await gw.api('POST', '/v1/users/someone/disconnect')).status).toBe(200);
    let text = await metricsOf(gw);
    expect(sample(text, 'tether_redis_up', { role: 'cmd' })).toBe(1);
    expect(sample(text, 'tether_redis_up', { role: 'sub' })).toBe(1);
    expect(sample(text, 'tether_redis_roundtrip_seconds_count', { op: 'append' })).toBe(1);
    await pollUntil('the control round trip', async () => {
      text = await metricsOf(gw);
      return (sample(text, 'tether_redis_roundtrip_seconds_count', { op: 'control' }) ?? 0) >= 1;
    });

    proxy.cut();
    await pollUntil('both connections reported down', async () => {
      text = await metricsOf(gw);
      return (
        sample(text, 'tether_redis_up', { role: 'cmd' }) === 0 && sample(text, 'tether_redis_up', { role: 'sub' }) === 0
      );
    });
    await pollUntil('reconnection attempts counted', async () => {
      text = await metricsOf(gw);
      return (sample(text, 'tether_redis_reconnects_total', { role: 'cmd' }) ?? 0) > 0;
    });

    proxy.restore();
    await pollUntil(
      'both connections reported up again',
      async () => {
        text = await metricsOf(gw);
        return (
          sample(text, 'tether_redis_up', { role: 'cmd' }) === 1 &&
          sample(text, 'tether_redis_up', { role: 'sub' }) === 1
        );
      },
      10_000,
    );
  });
});

describe('PostgreSQL ingest metrics', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let gw: TestGateway;
  let sql: pg.Client;
  beforeAll(async () => {
    db = await createDatabase();
    gw = await startGateway({ PG_NOTIFY_URL: db.url, PG_NOTIFY_CHANNELS: 'changes', PG_OUTBOX_URL: db.url });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    await pollUntil('the listener and the consumer to lead', async () => {
      const text = await metricsOf(gw);
      return (
        sample(text, 'tether_pg_leader', { role: 'notify' }) === 1 &&
        sample(text, 'tether_pg_leader', { role: 'outbox' }) === 1
      );
    });
  });
  afterAll(async () => {
    await sql?.end();
    await gw?.close();
    await db?.drop();
  });

  it('counts NOTIFYs published and NOTIFYs skipped as invalid', async () => {
    await sql.query('SELECT pg_notify($1, $2)', [
      'changes',
      JSON.stringify({ event: 'changed', to: { users: ['u'] } }),
    ]);
    await sql.query('SELECT pg_notify($1, $2)', ['changes', '{not json']);
    await pollUntil('both NOTIFYs counted', async () => {
      const text = await metricsOf(gw);
      return (
        sample(text, 'tether_ingest_events_total', { path: 'notify' }) === 1 &&
        sample(text, 'tether_ingest_failures_total', { path: 'notify', reason: 'invalid' }) === 1
      );
    });
  });

  it('counts outbox rows published and times each from its insert to its publish', async () => {
    const insertedAt = performance.now();
    await sql.query(`SELECT tether.publish('changed', '{}'::jsonb, '{"users":["u"]}'::jsonb)`);
    let text = '';
    await pollUntil('the row published', async () => {
      text = await metricsOf(gw);
      return sample(text, 'tether_ingest_events_total', { path: 'outbox' }) === 1;
    });
    const elapsed = (performance.now() - insertedAt) / 1000;
    expect(sample(text, 'tether_outbox_insert_to_publish_seconds_count')).toBe(1);
    const lag = sample(text, 'tether_outbox_insert_to_publish_seconds_sum')!;
    expect(lag).toBeGreaterThan(0);
    expect(lag).toBeLessThanOrEqual(elapsed + 0.05);
  });
});
