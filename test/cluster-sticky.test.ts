import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, ensureBuilt, TestCluster, type GatewayProcess } from './helpers/cluster.js';
import { waitUntil, WsClient } from './helpers/realtime.js';
import { REDIS_BACKENDS } from './helpers/redis-cluster.js';
import { TestLoadBalancer } from './helpers/sticky-proxy.js';

/** A socket.io-client socket as an app would open it behind a load balancer, recording what arrives. */
function openClient(url: string, token: string, transports: ('polling' | 'websocket')[]) {
  const events: { event: string; args: unknown[] }[] = [];
  const errors: string[] = [];
  const pokes = new Set<() => void>();
  const socket: Socket = io(url, {
    auth: { token },
    transports,
    // Node's engine.io-client keeps cookies (the balancer's sticky cookie) only with this on.
    withCredentials: true,
    reconnection: false,
    forceNew: true,
  });
  const record = (): void => {
    for (const poke of [...pokes]) poke();
  };
  socket.onAny((event: string, ...args: unknown[]) => {
    events.push({ event, args });
    record();
  });
  socket.on('connect_error', (err) => {
    errors.push(err.message);
    record();
  });
  socket.on('disconnect', (reason) => {
    errors.push(`disconnect:${reason}`);
    record();
  });
  const until = <T>(what: string, check: () => T | undefined) =>
    waitUntil(what, check, (poke) => {
      pokes.add(poke);
      return () => pokes.delete(poke);
    });
  return {
    socket,
    events,
    errors,
    count: (name: string) => events.filter((e) => e.event === name).length,
    session: () =>
      until('session_created or an error', () =>
        events.some((e) => e.event === 'session_created') ? 'ok' : errors[0],
      ),
    received: (name: string, n: number) =>
      until(`${n} × ${name}`, () => (events.filter((e) => e.event === name).length >= n ? true : undefined)),
    failed: () => until('a failure', () => errors[0]),
    close: () => socket.disconnect(),
  };
}

describe.each(REDIS_BACKENDS)('cluster mode behind a load balancer, over $name', (backend) => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let cluster: TestCluster;
  let nodes: GatewayProcess[];
  const balancers: TestLoadBalancer[] = [];
  const sockets: { close(): void }[] = [];

  const balancer = async (sticky: boolean): Promise<{ url: string; lb: TestLoadBalancer }> => {
    const lb = new TestLoadBalancer(
      nodes.map((n) => n.port),
      sticky,
    );
    balancers.push(lb);
    return { url: await lb.listen(), lb };
  };

  const publish = (event: string, users: string[], data: Record<string, unknown> = {}) =>
    cluster.api(nodes[0]!, 'POST', '/v1/publish', { event, data, to: { users } });

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({ databaseUrl: db.url, ...backend.env });
    nodes = [await cluster.start(), await cluster.start(), await cluster.start()];
  }, 120_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all(balancers.map((lb) => lb.close()));
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it('WebSocket-only clients need no stickiness: round-robin works, and events from any node arrive', async () => {
    const { url, lb } = await balancer(false);
    const clients = [0, 1, 2].map(() => openClient(url, cluster.token('wendy'), ['websocket']));
    sockets.push(...clients);
    expect(await Promise.all(clients.map((c) => c.session()))).toEqual(['ok', 'ok', 'ok']);
    expect(new Set(lb.routed).size).toBe(3);
    expect((await publish('hello', ['wendy'])).status).toBe(202);
    await Promise.all(clients.map((c) => c.received('hello', 1)));
    // Plain WebSocket clients (/ws) likewise.
    const ws = new WsClient(url, { headers: { authorization: `Bearer ${cluster.token('wendy')}` } });
    sockets.push(ws);
    await ws.next((f) => f.type === 'session_created');
  });

  it('HTTP long-polling works through a balancer with sticky sessions, across many polls', async () => {
    const { url, lb } = await balancer(true);
    const client = openClient(url, cluster.token('paul'), ['polling']);
    sockets.push(client);
    expect(await client.session()).toBe('ok');
    for (let i = 0; i < 10; i++) expect((await publish('tick', ['paul'], { i })).status).toBe(202);
    await client.received('tick', 10);
    expect(client.events.filter((e) => e.event === 'tick').map((e) => (e.args[0] as { i: number }).i)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    // Every request of this client went to one node.
    expect(new Set(lb.routed).size).toBe(1);
    expect(lb.routed.length).toBeGreaterThan(2);
  });

  it('polling then upgrading to WebSocket (the Socket.IO default) works through the sticky balancer', async () => {
    const { url } = await balancer(true);
    const client = openClient(url, cluster.token('ugo'), ['polling', 'websocket']);
    sockets.push(client);
    expect(await client.session()).toBe('ok');
    await waitUntil(
      'the upgrade',
      () => (client.socket.io.engine.transport.name === 'websocket' ? true : undefined),
      (poke) => {
        client.socket.io.engine.once('upgrade', poke);
        return () => undefined;
      },
    );
    expect((await publish('after_upgrade', ['ugo'])).status).toBe(202);
    await client.received('after_upgrade', 1);
  });

  it('without stickiness, polling clients fail: the setting is required', async () => {
    const { url } = await balancer(false);
    const client = openClient(url, cluster.token('nora'), ['polling']);
    sockets.push(client);
    // The handshake lands on one node and the next poll on another, which does not know the sid.
    const outcome = await Promise.race([client.failed(), client.received('never', 1).then(() => 'ok')]);
    expect(outcome).not.toBe('ok');
  });
});
