import type { DeliveryMeta, SessionCreatedPayload } from '@tether/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, ensureBuilt, pollUntil, TestCluster, type GatewayProcess } from './helpers/cluster.js';
import { SioClient, waitUntil } from './helpers/realtime.js';
import { REDIS_BACKENDS } from './helpers/redis-cluster.js';
import { connect as connectConn, kinds } from './helpers/resumable.js';

/** The `n` of every `tick` a client received, and the position of the last one. */
function ticks(client: SioClient): { ns: number[]; last: string | undefined } {
  const events = client.received.filter((e) => e.event === 'tick');
  const last = events.at(-1)?.args[1] as DeliveryMeta | undefined;
  return { ns: events.map((e) => (e.args[0] as { n: number }).n), last: last?.position };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Recovery in cluster mode reads the shared Redis Streams log, so the node a client returns to does not matter. */
describe.each(REDIS_BACKENDS)('cluster mode: recovery on any node, over $name', (backend) => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let cluster: TestCluster;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let c: GatewayProcess;
  const clients: SioClient[] = [];

  const connect = async (
    node: GatewayProcess,
    auth: Record<string, unknown>,
  ): Promise<{ client: SioClient; session: SessionCreatedPayload }> => {
    const client = new SioClient(node.url, { auth: { meta: true, ...auth } });
    clients.push(client);
    return { client, session: await client.session() };
  };

  const publishTicks = async (node: GatewayProcess, user: string, from: number, to: number): Promise<void> => {
    for (let n = from; n <= to; n++) {
      const answer = await cluster.api(node, 'POST', '/v1/publish', {
        event: 'tick',
        data: { n },
        to: { users: [user] },
      });
      expect(answer.status).toBe(202);
    }
  };

  const receivedUpTo = (client: SioClient, n: number) =>
    waitUntil(
      `tick ${n}`,
      () => (ticks(client).ns.includes(n) ? true : undefined),
      (poke) => client.subscribe(poke),
      20_000,
    );

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({ databaseUrl: db.url, ...backend.env, extra: { RECOVERY_MAX_EVENTS: '1000' } });
    a = await cluster.start();
    b = await cluster.start();
    c = await cluster.start();
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it('a client away while 50,000 events go to others reconnects to a different node and gets exactly its 3, on both transports', async () => {
    // RECOVERY_MAX_EVENTS is 1000 here: the foreign events must not count against it.
    const users = kinds.map((kind) => `far-${kind}`);
    const tokenOf = (user: string) => cluster.token(user, { scopes: ['ke/a'] });
    const firsts = kinds.map((kind, i) => connectConn(a.url, kind, tokenOf(users[i]!)));
    const positions = await Promise.all(firsts.map(async (conn) => (await conn.session()).position));
    await Promise.all(firsts.map((conn) => conn.leave()));

    const nodes = [a, b, c];
    let next = 0;
    const publishOne = async (): Promise<void> => {
      for (let i = next++; i < 50_000; i = next++) {
        const to = i % 10 === 0 ? { scopes: [`ke/b/w${i % 50}`] } : { users: [`someone-${i % 997}`] };
        const answer = await cluster.api(nodes[i % 3]!, 'POST', '/v1/publish', { event: 'tick', data: { n: -i }, to });
        if (answer.status !== 202) throw new Error(`publish ${i}: ${answer.status}`);
      }
    };
    await Promise.all(Array.from({ length: 48 }, publishOne));
    for (let n = 1; n <= 3; n++)
      for (const user of users)
        expect(
          (await cluster.api(c, 'POST', '/v1/publish', { event: 'tick', data: { n }, to: { users: [user] } })).status,
        ).toBe(202);

    await Promise.all(
      kinds.map(async (kind, i) => {
        const again = connectConn(b.url, kind, tokenOf(users[i]!), { position: positions[i] });
        try {
          expect((await again.session()).recovered).toBe(true);
          await again.waitTicks(3);
          await cluster.api(a, 'POST', '/v1/publish', { event: 'tick', data: { n: 4 }, to: { users: [users[i]!] } });
          await again.waitTicks(4);
          expect(again.ticks().map((t) => t.n)).toEqual([1, 2, 3, 4]);
        } finally {
          again.close();
        }
      }),
    );
  }, 180_000);

  it('a client away while 200 events are published reconnects to a different node and receives all 200, in order, none twice', async () => {
    const token = cluster.token('rita');
    const first = await connect(a, { token });
    await publishTicks(b, 'rita', 1, 5);
    await receivedUpTo(first.client, 5);
    const { last } = ticks(first.client);
    first.client.close();

    await publishTicks(c, 'rita', 6, 205);
    const second = await connect(b, { token, position: last });
    expect(second.session.recovered).toBe(true);
    await publishTicks(a, 'rita', 206, 210);
    await receivedUpTo(second.client, 210);
    expect(ticks(second.client).ns).toEqual(range(6, 210));
  });

  it('killing the node a client is on mid-stream: the client resumes on another node with the exact gap', async () => {
    const victim = await cluster.start();
    const token = cluster.token('kim');
    const first = await connect(victim, { token });
    // A publisher on another node keeps going while the client's node dies.
    const publishing = publishTicks(b, 'kim', 1, 150);
    await receivedUpTo(first.client, 40);
    cluster.kill(victim);
    await first.client.disconnected();
    const { ns: before, last } = ticks(first.client);
    await publishing;

    const second = await connect(c, { token, position: last });
    expect(second.session.recovered).toBe(true);
    await receivedUpTo(second.client, 150);
    const after = ticks(second.client).ns;
    // Exactly the gap: nothing lost, nothing twice.
    expect(after[0]).toBe(before.at(-1)! + 1);
    expect([...before, ...after]).toEqual(range(1, 150));

    // The dead node never removed its presence entry; it stops counting once its heartbeat is older than 15 s.
    const deadNode = (await victim.log((line) => line.msg === 'gateway listening')).node as string;
    await pollUntil(
      'the dead node to leave presence',
      async () => {
        const { body } = await cluster.api(a, 'GET', '/v1/presence/users/kim');
        const nodes = (body.connections as { node: string }[]).map((entry) => entry.node);
        return nodes.length === 1 && !nodes.includes(deadNode);
      },
      30_000,
      500,
    );
  }, 90_000);

  it('a user revoked while disconnected cannot resume on another node', async () => {
    const token = cluster.token('vera');
    const first = await connect(a, { token });
    await publishTicks(b, 'vera', 1, 2);
    await receivedUpTo(first.client, 2);
    const { last } = ticks(first.client);
    first.client.close();
    await first.client.disconnected();
    expect((await cluster.api(b, 'POST', '/v1/users/vera/disconnect')).status).toBe(200);
    // The revocation reaches node c over the cluster bus a moment after the 200 (Redis pub/sub):
    // a resume in that moment may still get in; within 2 s every attempt is refused.
    const deadline = Date.now() + 2000;
    let refusal: string | undefined;
    while (refusal === undefined) {
      const again = new SioClient(c.url, { auth: { token, meta: true, position: last } });
      clients.push(again);
      const first = await again.next((e) => e.event === 'session_created' || e.event === 'connect_error');
      if (first.event === 'connect_error') refusal = (first.args[0] as { message: string }).message;
      else {
        again.close();
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(refusal).toBe('AUTH_REVOKED');
  });

  it('a position from a log that lost its history gets recovered: false', async () => {
    const token = cluster.token('lena');
    const { session } = await connect(a, { token, position: 'not-an-epoch:1700000000000-5' });
    expect(session.recovered).toBe(false);
    expect(session.position).toEqual(expect.any(String));
  });
});
