import { RealtimeClient, TokenManager, createPlatform, type WebSocketConstructor } from '@tether/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Balancer } from './helpers/balancer.js';
import { createDatabase, ensureBuilt, pollUntil, TestCluster, type GatewayProcess } from './helpers/cluster.js';
import { REDIS_BACKENDS } from './helpers/redis-cluster.js';

/** Clients in the fleet (the drill uses 1,000: TEST_ROLLING_CLIENTS=1000). */
const CLIENTS = Number(process.env.TEST_ROLLING_CLIENTS ?? 200);
const EVENTS_PER_SECOND = 50;
const GRACE_MS = 2_000;

interface Tracked {
  user: string;
  client: RealtimeClient;
  tokens: TokenManager;
  /** Times the app's handler saw each event id. */
  seen: Map<string, number>;
  recoveries: boolean[];
  /** ms from losing `connected` to having it again, per interruption. */
  resumes: number[];
  lostAt: number | undefined;
}

/**
 * A rolling restart of a three-node cluster behind a load balancer, with SDK clients on both
 * transports and events flowing: every client must end with every event addressed to it, once.
 */
describe.each(REDIS_BACKENDS)('cluster mode over $name: a rolling restart under load', (backend) => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let cluster: TestCluster;
  let balancer: Balancer;
  const fleet: Tracked[] = [];

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({
      databaseUrl: db.url,
      ...backend.env,
      extra: { SHUTDOWN_GRACE_MS: String(GRACE_MS), CONNECT_RATE_PER_IP: '100000', AUTH_RATE_PER_MINUTE: '100000' },
    });
    const nodes = [await cluster.start(), await cluster.start(), await cluster.start()];
    balancer = await Balancer.start(nodes.map((n) => n.port));
  }, 120_000);

  afterAll(async () => {
    for (const t of fleet) {
      t.client.dispose();
      t.tokens.dispose();
    }
    await balancer?.close();
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it(`${CLIENTS} SDK clients keep every event, exactly once, while 3 nodes restart one at a time`, async () => {
    const platform = createPlatform({ WebSocket: WebSocket as unknown as WebSocketConstructor });
    for (let i = 0; i < CLIENTS; i++) {
      const user = `roll-${i}`;
      const tokens = new TokenManager({ baseUrl: balancer.url, platform, getToken: async () => cluster.token(user) });
      const client = new RealtimeClient({
        url: balancer.url,
        tokens,
        transport: i % 2 === 0 ? 'ws' : 'socket.io',
        backoff: { minMs: 200, maxMs: 2_000 },
        suspendAfterAttempts: 1_000,
      });
      const t: Tracked = { user, client, tokens, seen: new Map(), recoveries: [], resumes: [], lostAt: undefined };
      client.on('tick', (_data, meta) => t.seen.set(meta.id ?? '', (t.seen.get(meta.id ?? '') ?? 0) + 1));
      client.on('done', (_data, meta) => t.seen.set(meta.id ?? '', 1));
      client.onRecovery(({ recovered }) => t.recoveries.push(recovered));
      client.onState(({ previous, current }) => {
        if (previous === 'connected' && current !== 'connected') t.lostAt = performance.now();
        if (current === 'connected' && t.lostAt !== undefined) {
          t.resumes.push(performance.now() - t.lostAt);
          t.lostAt = undefined;
        }
      });
      fleet.push(t);
      client.connect();
    }
    await pollUntil('every client connected', async () => fleet.every((t) => t.client.state === 'connected'), 60_000);

    // 50 events a second, each to 5 users, retried with the same id until a node answers 202.
    const expected = new Map<string, Set<string>>(fleet.map((t) => [t.user, new Set()]));
    const attempted = new Set<string>();
    let publishing = true;
    let published = 0;
    const inflight = new Set<Promise<void>>();
    const publish = async (body: Record<string, unknown>, id: string): Promise<boolean> => {
      attempted.add(id);
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          const res = await fetch(`${balancer.url}/v1/publish`, {
            method: 'POST',
            headers: { authorization: `Bearer ${cluster.apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ ...body, id }),
          });
          if (res.status === 202) return true;
        } catch {
          // the node went away mid-request: try another
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return false;
    };
    const publisher = (async () => {
      const started = performance.now();
      for (let k = 0; publishing; k++) {
        const users = Array.from({ length: 5 }, (_, j) => fleet[(k * 7 + j * 31) % fleet.length]!.user);
        const id = `tick-${k}`;
        const sent: Promise<void> = publish(
          { event: 'tick', data: { k }, to: { users: [...new Set(users)] } },
          id,
        ).then((ok) => {
          inflight.delete(sent);
          if (!ok) return;
          published++;
          for (const user of users) expected.get(user)!.add(id);
        });
        inflight.add(sent);
        const due = started + ((k + 1) * 1000) / EVENTS_PER_SECOND;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
      }
    })();

    // Restart each node in turn: out of the balancer, SIGTERM, exit, a fresh node in, all reconnected.
    const restarts: { node: number; exitMs: number }[] = [];
    for (const [index, node] of [...cluster.nodes].entries()) {
      balancer.remove(node.port);
      const stopping = performance.now();
      node.child.kill('SIGTERM');
      await (node as GatewayProcess).exit(GRACE_MS + 10_000);
      restarts.push({ node: index, exitMs: Math.round(performance.now() - stopping) });
      const fresh = await cluster.start({ SHUTDOWN_GRACE_MS: String(GRACE_MS) });
      balancer.add(fresh.port);
      await pollUntil(
        'every client connected again',
        async () => fleet.every((t) => t.client.state === 'connected'),
        60_000,
      );
    }
    publishing = false;
    await publisher;
    // Every publish answered; then a marker to everyone: once it arrived, nothing is in flight.
    await Promise.all([...inflight]);
    expect(await publish({ event: 'done', data: {}, to: { users: fleet.map((t) => t.user) } }, 'done')).toBe(true);
    await pollUntil('every client got the marker', async () => fleet.every((t) => t.seen.has('done')), 60_000);

    let missing = 0;
    let duplicates = 0;
    let unexpected = 0;
    for (const t of fleet) {
      for (const id of expected.get(t.user)!) if (!t.seen.has(id)) missing++;
      for (const [id, count] of t.seen) {
        if (count > 1) duplicates++;
        if (id !== 'done' && !expected.get(t.user)!.has(id) && !attempted.has(id)) unexpected++;
      }
    }
    const resumes = fleet.flatMap((t) => t.resumes).sort((x, y) => x - y);
    const reconnects = fleet.flatMap((t) => t.recoveries.slice(1));
    const recoveredShare = reconnects.filter(Boolean).length / Math.max(1, reconnects.length);
    const p95 = resumes[Math.floor(resumes.length * 0.95)] ?? 0;
    console.log(
      JSON.stringify({
        clients: CLIENTS,
        published,
        restarts,
        reconnects: reconnects.length,
        recoveredShare: Number(recoveredShare.toFixed(4)),
        resumeP50Ms: Math.round(resumes[Math.floor(resumes.length / 2)] ?? 0),
        resumeP95Ms: Math.round(p95),
        missing,
        duplicates,
      }),
    );
    expect({ missing, duplicates, unexpected }).toEqual({ missing: 0, duplicates: 0, unexpected: 0 });
    expect(reconnects.length).toBeGreaterThan(0);
    // Each node exits within its grace period plus a bounded close.
    for (const r of restarts) expect(r.exitMs).toBeLessThan(GRACE_MS + 5_000);
  }, 300_000);
});
