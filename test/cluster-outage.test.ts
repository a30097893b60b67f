import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabase,
  ensureBuilt,
  freePort,
  pollUntil,
  TestCluster,
  type GatewayProcess,
} from './helpers/cluster.js';
import { PrivateRedis } from './helpers/private-redis.js';
import { SioClient } from './helpers/realtime.js';

describe('cluster mode when Redis goes away', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let redis: PrivateRedis;
  let cluster: TestCluster;
  let a: GatewayProcess;
  let b: GatewayProcess;
  const clients: SioClient[] = [];

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    redis = new PrivateRedis(await freePort());
    await redis.start();
    cluster = new TestCluster({ databaseUrl: db.url, redisUrl: redis.url });
    a = await cluster.start();
    b = await cluster.start();
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    await cluster?.stop();
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  it('stopping Redis for 5 s: no crash, clear publish errors, local connections kept, full service after it returns', async () => {
    const token = cluster.token('ursula');
    const onA = new SioClient(a.url, { auth: { token } });
    const onB = new SioClient(b.url, { auth: { token } });
    clients.push(onA, onB);
    await Promise.all([onA.session(), onB.session()]);

    const ready = async (node: GatewayProcess) => {
      const res = await fetch(`${node.url}/readyz`);
      return { status: res.status, body: (await res.json()) as { code?: string; checks: Record<string, string> } };
    };
    for (const node of [a, b]) expect((await ready(node)).status).toBe(200);

    const outageStarted = Date.now();
    await redis.stop();
    // A load balancer learns within 2 s that these nodes cannot serve everything, and why.
    await pollUntil('/readyz to answer 503', async () => (await ready(a)).status === 503, 2_000, 50);
    expect(Date.now() - outageStarted).toBeLessThan(2_000);
    expect((await ready(a)).body).toMatchObject({
      code: 'NOT_READY',
      checks: { store: 'ok', redis: 'unreachable', log: 'unreachable' },
    });
    await a.log(
      (line) => line.msg === 'redis unavailable: serving local connections only, publishes fail until it returns',
    );

    // Publishes fail loudly, on every node.
    for (const node of [a, b]) {
      const failed = await cluster.api(node, 'POST', '/v1/publish', {
        event: 'during',
        data: {},
        to: { users: ['ursula'] },
      });
      expect(failed.status).toBe(503);
      expect(failed.body.code).toBe('PUBLISH_FAILED');
    }
    // A batch fails the same way, with each event's own answer, so the caller knows to send it all again.
    const batch = await cluster.api(a, 'POST', '/v1/publish', [
      { id: 'during-1', event: 'during', to: { users: ['ursula'] } },
      { id: 'during-2', event: 'during', to: { users: ['ursula'] } },
    ]);
    expect(batch.status).toBe(503);
    expect(batch.body).toMatchObject({
      code: 'PUBLISH_FAILED',
      results: [
        { id: 'during-1', error: { code: 'PUBLISH_FAILED' } },
        { id: 'during-2', error: { code: 'PUBLISH_FAILED' } },
      ],
    });
    // Nodes keep serving: health, existing connections, and new local connections.
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
    const newcomer = new SioClient(a.url, { auth: { token: cluster.token('victor') } });
    clients.push(newcomer);
    await newcomer.session();
    expect(onA.disconnectReason).toBeUndefined();
    expect(onB.disconnectReason).toBeUndefined();

    // Five seconds down in all (an event-free wait: nothing to observe until Redis is back).
    await new Promise((done) => setTimeout(done, Math.max(0, 5_000 - (Date.now() - outageStarted))));
    await redis.start();
    await Promise.all(
      [a, b].map((node) => node.log((line) => line.msg === 'redis available again: resuming cluster mode', 20_000)),
    );

    await pollUntil('/readyz to answer 200 again', async () => (await ready(a)).status === 200, 10_000, 100);
    // Full service: a publish on either node reaches both devices (one subscribed during the outage).
    await pollUntil(
      'publishes to work again',
      async () =>
        (await cluster.api(b, 'POST', '/v1/publish', { event: 'back', data: {}, to: { users: ['ursula', 'victor'] } }))
          .status === 202,
      20_000,
      200,
    );
    await Promise.all([onA.first('back', 20_000), onB.first('back', 20_000), newcomer.first('back', 20_000)]);
    const after = await cluster.api(a, 'POST', '/v1/publish', { event: 'after', data: {}, to: { users: ['ursula'] } });
    expect(after.status).toBe(202);
    await Promise.all([onA.first('after'), onB.first('after')]);
    expect(onA.count('during')).toBe(0);
    expect(a.exited).toBeUndefined();
    expect(b.exited).toBeUndefined();

    // Presence is cluster-wide again (rewritten after the outage).
    const presence = await cluster.api(b, 'GET', '/v1/presence/users/ursula');
    expect((presence.body.connections as unknown[]).length).toBe(2);
  }, 90_000);

  it('a node cut off from a running Redis catches up: its live connections miss nothing', async () => {
    const client = new SioClient(b.url, { auth: { token: cluster.token('yusuf') } });
    clients.push(client);
    await client.session();
    const admin = new Redis(redis.url);
    const nodeB = (await b.log((line) => line.msg === 'gateway listening')).node as string;
    const list = (await admin.client('LIST')) as string;
    const ids = list
      .split('\n')
      .filter((line) => line.includes(`name=tether-${nodeB}`))
      .map((line) => /id=(\d+)/.exec(line)?.[1]);
    expect(ids).toHaveLength(2);
    // Node B loses both connections; node A publishes at once, before B has reconnected.
    // Only a catch-up logged after this point counts (the outage test above logged one too).
    const linesBefore = b.lines.length;
    for (const id of ids) await admin.client('KILL', 'ID', id!);
    admin.disconnect();
    await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        cluster.api(a, 'POST', '/v1/publish', { event: 'gap', data: { n }, to: { users: ['yusuf'] } }),
      ),
    );
    // B reconnects ≥ 100 ms after the kill: typically all 20 fall in the gap and come from the catch-up
    // (on a loaded machine some may come live instead; either way none may be lost or doubled).
    await pollUntil(
      'a catch-up after the kill',
      async () =>
        b.lines
          .slice(linesBefore)
          .some((line) => line.msg === 'caught up with events published while cut off from redis'),
      20_000,
    );
    await cluster.api(a, 'POST', '/v1/publish', { event: 'gap_done', data: {}, to: { users: ['yusuf'] } });
    await client.first('gap_done', 20_000);
    const got = client.all<{ n: number }>('gap').map((d) => d.n);
    expect(got.sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, n) => n));
  }, 60_000);
});
