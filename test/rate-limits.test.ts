import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterMasterUrls, freePort, pollUntil } from './helpers/cluster.js';
import { startGateway, type Env, type HttpAnswer, type TestGateway } from './helpers/gateway.js';
import { PrivateRedis } from './helpers/private-redis.js';
import { WsClient } from './helpers/realtime.js';
import { REDIS_BACKENDS, type RedisBackend } from './helpers/redis-cluster.js';

/**
 * Login throttling (slows a guesser, never locks the owner out) and limits shared by the nodes of a
 * cluster through Redis (falling back to each node's own while Redis is away). Client addresses are
 * simulated with `X-Forwarded-For` (`TRUST_PROXY=true`).
 */

const OWNER = { email: 'owner@example.com', password: 'the right password', name: 'Owner', role: 'agent', scopes: [] };

const from = (ip: string): Record<string, string> => ({ 'x-forwarded-for': ip });
const login = (gw: TestGateway, ip: string, email: string, password: string): Promise<HttpAnswer> =>
  gw.http('POST', '/auth/login', { email, password }, from(ip));
const retryAfter = (answer: HttpAnswer): number => Number(answer.headers.get('retry-after'));

/** Runs `count` calls of `run`, `width` at a time. */
async function inBatches<T>(count: number, width: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += width) {
    const batch = Array.from({ length: Math.min(width, count - start) }, (_, j) => run(start + j));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

describe('login throttling', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    // The defaults: 30 per minute per address and wrong logins per account, 5 free failures.
    gw = await startGateway({ TRUST_PROXY: 'true' });
    expect((await gw.api('POST', '/v1/users', OWNER)).status).toBe(201);
  });
  afterAll(() => gw.close());

  it('40 wrong passwords for the account from 40 addresses, then the owner from a fresh address: 200', async () => {
    // A ceiling of 2 wrong logins a minute refills one every 30 s, so the 40 scrypt checks below
    // cannot refill it on a slow machine before the last assertion (at 30 a minute they did).
    const slow = await startGateway({ TRUST_PROXY: 'true', AUTH_RATE_PER_MINUTE: '2' });
    try {
      expect((await slow.api('POST', '/v1/users', OWNER)).status).toBe(201);
      const wrong = await inBatches(40, 10, (i) => login(slow, `10.40.0.${i}`, OWNER.email, 'a wrong guess'));
      expect(wrong.map((a) => a.status)).toEqual(Array(40).fill(401));

      const started = Date.now();
      const owner = await login(slow, '192.0.2.1', OWNER.email, OWNER.password);
      expect(owner.status).toBe(200);
      expect(owner.body.user.email).toBe(OWNER.email);
      // At most a short hold (1 s) while the account is over its ceiling; generous margin for a loaded machine.
      expect(Date.now() - started).toBeLessThan(5_000);

      // The guessers that already failed are the ones the account's ceiling refuses.
      const again = await login(slow, '10.40.0.0', OWNER.email, 'another guess');
      expect(again.status).toBe(429);
      expect(again.body.code).toBe('RATE_LIMITED');
    } finally {
      await slow.close();
    }
  }, 60_000);

  it('one address guessing one account gets 429 with a growing Retry-After; the owner elsewhere still gets in', async () => {
    const account = 'target@example.com';
    expect((await gw.api('POST', '/v1/users', { ...OWNER, email: account })).status).toBe(201);
    const ip = '198.51.100.7';
    for (let i = 0; i < 5; i++) expect((await login(gw, ip, account, `guess ${i}`)).status).toBe(401);

    const waits: number[] = [];
    for (let step = 0; step < 3; step++) {
      const refused = await login(gw, ip, account, 'refused before it is checked');
      expect(refused.status).toBe(429);
      waits.push(retryAfter(refused));
      // Refused attempts cost nothing and change nothing: poll until the backoff has passed.
      await pollUntil(
        'the backoff to pass',
        async () => (await login(gw, ip, account, `guess after step ${step}`)).status === 401,
        20_000,
        250,
      );
    }
    expect(waits).toEqual([1, 2, 4]);
    const next = await login(gw, ip, account, 'too soon');
    expect(next.status).toBe(429);
    expect(retryAfter(next)).toBe(8);

    expect((await login(gw, '203.0.113.9', account, OWNER.password)).status).toBe(200);
  });

  it('one address spraying wrong passwords over many accounts runs out of its 30 attempts a minute', async () => {
    const started = Date.now();
    const answers = await inBatches(60, 10, (i) =>
      login(gw, '198.51.100.66', `sprayed-${i}@example.com`, 'Summer2024!'),
    );
    const elapsedMinutes = (Date.now() - started) / 60_000;
    const statuses = answers.map((a) => a.status);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    const checked = statuses.filter((s) => s === 401).length;
    // 30 at once, plus the refill (one every 2 s) while the spray ran.
    expect(checked).toBeGreaterThanOrEqual(30);
    expect(checked).toBeLessThanOrEqual(30 + Math.ceil(elapsedMinutes * 30) + 1);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    // Another address is not affected.
    expect((await login(gw, '198.51.100.67', 'sprayed-0@example.com', 'x')).status).toBe(401);
  });
});

/** Deletes this run's keys from every server of `backend` (buckets expire by themselves, failure counters after an hour). */
async function dropKeys(backend: RedisBackend, prefix: string): Promise<void> {
  const urls =
    backend.env.redisClusterNodes !== undefined
      ? await clusterMasterUrls(backend.env.redisClusterNodes)
      : [backend.env.redisUrl!];
  for (const url of urls) {
    const redis = new Redis(url);
    try {
      for (const key of await redis.keys(`${prefix}:*`)) await redis.del(key);
    } finally {
      redis.disconnect();
    }
  }
}

/**
 * Nodes of one cluster, in this process: same secret, same Redis prefix. A limit waits up to a
 * second for Redis (not 100 ms): on a loaded machine a slower answer would send a node to its own
 * buckets, and a test of shared limits would count a budget per node.
 */
async function startNodes(count: number, env: Env): Promise<TestGateway[]> {
  const shared: Env = {
    JWT_SECRET: randomBytes(48).toString('base64url'),
    REDIS_PREFIX: `rl${randomBytes(5).toString('hex')}`,
    TRUST_PROXY: 'true',
    ...env,
  };
  const nodes: TestGateway[] = [];
  for (let i = 0; i < count; i++) nodes.push(await startGateway(shared, { rateLimitRedisTimeoutMs: 1_000 }));
  return nodes;
}

describe.each(REDIS_BACKENDS)('limits shared by the nodes ($name)', (backend) => {
  let nodes: TestGateway[] = [];
  beforeAll(async () => {
    nodes = await startNodes(3, {
      ...(backend.env.redisUrl !== undefined ? { REDIS_URL: backend.env.redisUrl } : {}),
      ...(backend.env.redisClusterNodes !== undefined ? { REDIS_CLUSTER_NODES: backend.env.redisClusterNodes } : {}),
      CONNECT_RATE_PER_IP: '1',
    });
  }, 60_000);
  afterAll(async () => {
    const prefix = nodes[0]?.gateway.config.redisPrefix;
    await Promise.all(nodes.map((n) => n.close()));
    if (prefix !== undefined) await dropKeys(backend, prefix);
  }, 60_000);

  it('with 3 nodes, 100 wrong logins spread over the nodes are limited as one budget', async () => {
    const started = Date.now();
    const answers = await inBatches(100, 10, (i) =>
      login(nodes[i % 3]!, '198.51.100.100', `victim-${i}@example.com`, 'Winter2024!'),
    );
    const elapsedMinutes = (Date.now() - started) / 60_000;
    const statuses = answers.map((a) => a.status);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    const checked = statuses.filter((s) => s === 401).length;
    // One budget of 30 a minute, plus what refilled while the logins ran; three budgets would check 90.
    expect(checked).toBeGreaterThanOrEqual(30);
    expect(checked).toBeLessThanOrEqual(30 + Math.ceil(elapsedMinutes * 30) + 1);
    // Every node refused some: each knew what the others had spent.
    for (let n = 0; n < 3; n++) expect(statuses.filter((s, i) => i % 3 === n && s === 429).length).toBeGreaterThan(0);
  });

  it('an address in login backoff on one node is in backoff on every node', async () => {
    const ip = '198.51.100.101';
    for (let i = 0; i < 5; i++)
      expect((await login(nodes[i % 3]!, ip, 'someone@example.com', `guess ${i}`)).status).toBe(401);
    for (const node of nodes) {
      const refused = await login(node, ip, 'someone@example.com', 'next guess');
      expect(refused.status).toBe(429);
      expect(retryAfter(refused)).toBe(1);
    }
  });

  it('CONNECT_RATE_PER_IP counts the connections to every node together', async () => {
    const token = nodes[0]!.sign({ sub: 'connector' });
    const started = Date.now();
    const clients = Array.from(
      { length: 9 },
      (_, i) =>
        new WsClient(nodes[i % 3]!.url, {
          headers: { authorization: `Bearer ${token}`, ...from('198.51.100.102') },
        }),
    );
    try {
      const outcomes = await Promise.all(
        clients.map((c) => c.next((f) => f.type === 'session_created' || f.type === 'auth_error')),
      );
      const elapsedSeconds = (Date.now() - started) / 1000;
      expect(outcomes.every((f) => f.type === 'session_created' || f.code === 'RATE_LIMITED')).toBe(true);
      const accepted = outcomes.filter((f) => f.type === 'session_created').length;
      // One connection a second for the address on all nodes together (three per-node budgets: at least 3).
      expect(accepted).toBeGreaterThanOrEqual(1);
      expect(accepted).toBeLessThanOrEqual(1 + Math.floor(elapsedSeconds));
    } finally {
      for (const c of clients) c.close();
    }
  });
});

describe('limits while Redis is down', () => {
  let redis: PrivateRedis;
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    // AUTH_RATE_PER_MINUTE=1: ten guest tokens a minute per address (guests are cheap to ask for).
    [a, b] = await startNodes(2, { REDIS_URL: redis.url, AUTH_RATE_PER_MINUTE: '1' });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  }, 60_000);

  const guest = async (node: TestGateway, ip: string) => {
    const started = Date.now();
    const answer = await node.http('POST', '/auth/guest', undefined, from(ip));
    return { status: answer.status, ms: Date.now() - started };
  };
  const logLines = (node: TestGateway, msg: string) =>
    node
      .logs()
      .split('\n')
      .filter((line) => line.includes(`"msg":"${msg}"`)).length;

  it('shared while up; each node applies its own limits, promptly, while down; shared again once it is back', async () => {
    // Up: the ten guest tokens of an address are spent on A, and B knows it.
    for (let i = 0; i < 10; i++) expect((await guest(a, '192.0.2.10')).status).toBe(200);
    expect((await guest(b, '192.0.2.10')).status).toBe(429);

    await redis.stop();
    // Down: limits still apply, per node, and every answer comes at once (no waiting for Redis).
    const onA = await Promise.all(Array.from({ length: 12 }, () => guest(a, '192.0.2.11')));
    const onB = await Promise.all(Array.from({ length: 12 }, () => guest(b, '192.0.2.11')));
    for (const answers of [onA, onB]) {
      expect(answers.filter((x) => x.status === 200)).toHaveLength(10);
      expect(answers.filter((x) => x.status === 429)).toHaveLength(2);
      for (const x of answers) expect(x.ms).toBeLessThan(2_000);
    }
    // One line per node for the outage, not one per call.
    const outage = 'rate limits: redis unavailable, each node applies its own limits until it returns';
    expect(logLines(a, outage)).toBe(1);
    expect(logLines(b, outage)).toBe(1);

    await redis.start();
    for (const node of [a, b])
      await pollUntil(
        'the node to be back on Redis',
        async () => logLines(node, 'redis available again: resuming cluster mode') > 0,
        20_000,
        100,
      );
    // Back: shared again. (Redis lost its buckets, so the address starts with a full budget.)
    await pollUntil(
      'limits to be shared again',
      async () => {
        const ip = `192.0.2.${20 + Math.floor(Math.random() * 200)}`;
        for (let i = 0; i < 10; i++) if ((await guest(a, ip)).status !== 200) return false;
        return (await guest(b, ip)).status === 429;
      },
      20_000,
      200,
    );
    expect(logLines(a, 'rate limits: redis available again, limits shared')).toBe(1);
  }, 90_000);
});
