import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, ensureBuilt, pollUntil, TestCluster, type GatewayProcess } from './helpers/cluster.js';
import { SioClient, waitUntil } from './helpers/realtime.js';
import { REDIS_BACKENDS, RedisProbe } from './helpers/redis-cluster.js';

/**
 * Three `tether serve` processes sharing PostgreSQL and Redis, as deployed: publish, revocation,
 * presence, grants and the connection cap work across nodes — over a standalone Redis and over a
 * Redis Cluster.
 */
describe.each(REDIS_BACKENDS)('cluster mode: three gateway processes over $name', (backend) => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let cluster: TestCluster;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let c: GatewayProcess;
  let redis: RedisProbe;
  const clients: SioClient[] = [];

  const connect = async (node: GatewayProcess, token: string): Promise<SioClient> => {
    const client = new SioClient(node.url, { auth: { token } });
    clients.push(client);
    await client.session();
    return client;
  };

  /** Publishes `event` then a sentinel to the same targets: once the sentinel arrives, `event` has arrived as often as it ever will. */
  const publishAndSettle = async (
    node: GatewayProcess,
    to: Record<string, string[]>,
    receivers: SioClient[],
  ): Promise<string> => {
    const event = `e_${Math.random().toString(36).slice(2)}`;
    const first = await cluster.api(node, 'POST', '/v1/publish', { event, data: { n: 1 }, to });
    expect(first.status).toBe(202);
    const sentinel = await cluster.api(node, 'POST', '/v1/publish', { event: `${event}_done`, data: {}, to });
    expect(sentinel.status).toBe(202);
    await Promise.all(receivers.map((client) => client.first(`${event}_done`)));
    return event;
  };

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({ databaseUrl: db.url, ...backend.env, extra: { MAX_CONNECTIONS_PER_USER: '2' } });
    // One after the other: the first applies the migrations.
    a = await cluster.start();
    b = await cluster.start();
    c = await cluster.start();
    redis = await RedisProbe.open(backend);
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    redis?.close();
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it('an event published on node A reaches the same user on nodes B and C once each', async () => {
    const token = cluster.token('alice');
    const onB = await connect(b, token);
    const onC = await connect(c, token);
    const event = await publishAndSettle(a, { users: ['alice'] }, [onB, onC]);
    expect(onB.count(event)).toBe(1);
    expect(onC.count(event)).toBe(1);
    expect(onB.all(event)[0]).toMatchObject({ n: 1 });
    onB.close();
    onC.close();
  });

  it('a connection matched by several targets and several ancestor grants gets the event once', async () => {
    const client = await connect(c, cluster.token('bob', { scopes: ['ke', 'ke/muranga'], channels: ['project:*'] }));
    expect(await client.request('subscribe', { channel: 'project:42' })).toMatchObject({ ok: true });
    const event = await publishAndSettle(
      a,
      { users: ['bob'], scopes: ['ke/muranga/kiharu'], channels: ['project:42'] },
      [client],
    );
    expect(client.count(event)).toBe(1);
    client.close();
  });

  it('events from several nodes arrive in one order on every node', async () => {
    const token = cluster.token('olga');
    const onA = await connect(a, token);
    const onC = await connect(c, token);
    await Promise.all(
      [a, b, c].flatMap((node, i) =>
        [0, 1, 2, 3].map((k) =>
          cluster.api(node, 'POST', '/v1/publish', { event: 'ordered', data: { from: i, k }, to: { users: ['olga'] } }),
        ),
      ),
    );
    await Promise.all(
      [onA, onC].map((client) =>
        waitUntil(
          '12 events',
          () => (client.count('ordered') === 12 ? true : undefined),
          (poke) => client.subscribe(poke),
        ),
      ),
    );
    expect(onA.all('ordered')).toEqual(onC.all('ordered'));
    onA.close();
    onC.close();
  });

  it('a node subscribes to a user’s channel only while it holds a connection of that user', async () => {
    // The user's interest channel is its log stream's hash tag (see ClusterKeys.user).
    const channel = `{${cluster.prefix}:u:dave}`;
    const numsub = () => redis.subscribers(channel);
    expect(await numsub()).toBe(0);
    const client = await connect(b, cluster.token('dave'));
    expect(await numsub()).toBe(1);
    client.close();
    await pollUntil('the node to unsubscribe', async () => (await numsub()) === 0);
  });

  it('presence on any node lists the connections on every node', async () => {
    const token = cluster.token('erin');
    const onA = await connect(a, token);
    const onB = await connect(b, token);
    const answer = await cluster.api(c, 'GET', '/v1/presence/users/erin');
    expect(answer.status).toBe(200);
    expect(answer.body.online).toBe(true);
    const connections = answer.body.connections as { node: string }[];
    expect(connections).toHaveLength(2);
    expect(new Set(connections.map((entry) => entry.node)).size).toBe(2);
    onA.close();
    onB.close();
  });

  it('the per-user connection cap counts connections on every node', async () => {
    const token = cluster.token('carol');
    const first = await connect(a, token);
    const second = await connect(b, token);
    const third = new SioClient(c.url, { auth: { token } });
    clients.push(third);
    const refusal = await third.refusal();
    expect(refusal.message).toBe('CONNECTION_LIMIT');
    first.close();
    second.close();
  });

  it('disconnect on node C closes the user’s sockets on nodes A and B, and their old tokens stop working everywhere', async () => {
    const token = cluster.token('frank');
    const onA = await connect(a, token);
    const onB = await connect(b, token);
    const answer = await cluster.api(c, 'POST', '/v1/users/frank/disconnect');
    expect(answer.status).toBe(200);
    expect(answer.body.disconnected).toBe(2);
    for (const client of [onA, onB]) {
      expect(await client.first('auth_error')).toMatchObject({ code: 'AUTH_REVOKED' });
      await client.disconnected();
    }
    for (const node of [a, b]) {
      const again = new SioClient(node.url, { auth: { token } });
      clients.push(again);
      expect((await again.refusal()).message).toBe('AUTH_REVOKED');
    }
    // A token issued after the disconnect is accepted.
    await connect(a, cluster.token('frank'));
  });

  it('logout on node C closes that session’s socket on node B and its token is refused on node A', async () => {
    const email = `l${cluster.prefix}@example.com`;
    expect(
      (await cluster.api(a, 'POST', '/v1/users', { email, password: 'correct horse battery', name: 'Lou' })).status,
    ).toBe(201);
    const login = await fetch(`${a.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'correct horse battery' }),
    });
    const tokens = (await login.json()) as { access_token: string; refresh_token: string };
    const onB = await connect(b, tokens.access_token);
    const logout = await fetch(`${c.url}/auth/logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.access_token}` },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    });
    expect(logout.status).toBe(204);
    expect(await onB.first('auth_error')).toMatchObject({ code: 'AUTH_REVOKED' });
    const again = new SioClient(a.url, { auth: { token: tokens.access_token } });
    clients.push(again);
    expect((await again.refusal()).message).toBe('AUTH_REVOKED');
  });

  it('a user disabled on node A is disconnected on node B and refused on node C, even with a new token', async () => {
    const created = await cluster.api(a, 'POST', '/v1/users', {
      email: `d${cluster.prefix}@example.com`,
      password: 'correct horse battery',
      name: 'Dee',
    });
    const id = created.body.id as string;
    const onB = await connect(b, cluster.token(id));
    expect((await cluster.api(a, 'PATCH', `/v1/users/${id}`, { active: false })).status).toBe(200);
    expect(await onB.first('auth_error')).toMatchObject({ code: 'AUTH_REVOKED' });
    const later = new SioClient(c.url, { auth: { token: cluster.token(id) } });
    clients.push(later);
    expect((await later.refusal()).message).toBe('AUTH_REVOKED');
  });

  it('new grants set on node A apply at once to the user’s connection on node B', async () => {
    const created = await cluster.api(a, 'POST', '/v1/users', {
      email: `g${cluster.prefix}@example.com`,
      password: 'correct horse battery',
      name: 'Gita',
      scopes: ['tz'],
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const client = await connect(b, cluster.token(id, { scopes: ['tz'] }));
    expect((await cluster.api(a, 'PATCH', `/v1/users/${id}`, { scopes: ['ug'] })).status).toBe(200);
    // Publish to the new scope until it lands (the grant change travels asynchronously).
    await pollUntil(
      'the new grant to apply',
      async () => {
        await cluster.api(c, 'POST', '/v1/publish', { event: 'granted', data: {}, to: { scopes: ['ug/kampala'] } });
        return client.count('granted') > 0;
      },
      undefined,
      100,
    );
    const event = await publishAndSettle(a, { users: [id] }, [client]);
    expect(client.count(event)).toBe(1);
    client.close();
  });
});
