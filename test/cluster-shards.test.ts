import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, ensureBuilt, TestCluster, type GatewayProcess } from './helpers/cluster.js';
import { REDIS_CLUSTER, RedisProbe, type ShardStats } from './helpers/redis-cluster.js';

const SCOPES = 1000;
const IN_FLIGHT = 16;
/** Commands whose calls show where the log's scripts ran and where their events were published. */
type Counted = 'evalsha' | 'eval' | 'spublish';

/**
 * Over a Redis Cluster each log stream (and its interest channel) lives in the slot of its hash tag,
 * so publishes to many scopes spread their keys and scripts over every shard instead of one Redis.
 */
describe('cluster mode over a Redis Cluster: publishes spread over every shard', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let cluster: TestCluster;
  let nodes: GatewayProcess[];
  let redis: RedisProbe;

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({ databaseUrl: db.url, ...REDIS_CLUSTER.env });
    nodes = [await cluster.start(), await cluster.start(), await cluster.start()];
    redis = await RedisProbe.open(REDIS_CLUSTER);
  }, 120_000);

  afterAll(async () => {
    redis?.close();
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it('1,000 publishes to different scopes through the three nodes put keys and scripts on every shard', async () => {
    const before = await redis.stats(cluster.prefix);
    const started = performance.now();
    let next = 0;
    const refused: number[] = [];
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < SCOPES) {
          const i = next++;
          const answer = await cluster.api(nodes[i % nodes.length]!, 'POST', '/v1/publish', {
            event: 'spread',
            data: { i },
            to: { scopes: [`region-${i}`] },
          });
          if (answer.status !== 202) refused.push(answer.status);
        }
      }),
    );
    expect(refused).toEqual([]);
    const ms = Math.round(performance.now() - started);
    const after = await redis.stats(cluster.prefix);

    const rows = after.map((shard) => ({ shard: shard.node, keys: shard.keys, ...callsSince(before, shard) }));
    // Other test files may run on the same cluster meanwhile: calls are deltas of the whole server,
    // keys are this run's only. Every scope publish also appends to one of the root scope's
    // sub-streams (`s:*#k/8`, read together by holders of `*`).
    console.log(`per shard after ${SCOPES} publishes to different scopes in ${ms} ms (prefix ${cluster.prefix}):`);
    console.table(rows);
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      // CRC16 spreads 1,000 scope names about evenly: about 333 streams per shard.
      expect(row.keys, `keys on ${row.shard}`).toBeGreaterThan(SCOPES / 10);
      expect(row.evalsha + row.eval, `scripts on ${row.shard}`).toBeGreaterThan(SCOPES / 10);
      expect(row.spublish, `SPUBLISHes on ${row.shard}`).toBeGreaterThan(SCOPES / 10);
    }

    // HISTORY_SPREAD (8 on a Redis Cluster): the root stream, which every scope event goes to, is 8
    // sub-streams in 8 slots, so its appends land on several shards instead of one.
    const root = await Promise.all(
      Array.from({ length: 8 }, async (_, k) => ({
        stream: `s:*#${k}/8`,
        at: await redis.holders(`{${cluster.prefix}:s:*#${k}/8}:x`),
      })),
    );
    console.table(root.map((r) => ({ stream: r.stream, shard: r.at[0]?.node, entries: r.at[0]?.length })));
    expect(root.every((r) => r.at.length === 1)).toBe(true);
    expect(root.reduce((sum, r) => sum + r.at[0]!.length, 0)).toBe(SCOPES);
    expect(new Set(root.map((r) => r.at[0]!.node)).size).toBeGreaterThan(1);
  }, 120_000);

  it("a node whose HISTORY_SPREAD differs from the cluster's refuses to start, naming the setting", async () => {
    const refused = cluster.start({ HISTORY_SPREAD: '4' });
    await expect(refused).rejects.toThrow(
      `Invalid configuration: HISTORY_SPREAD is 4 here but 8 for the cluster's event log (Redis key ${cluster.prefix}:log:spread)`,
    );
    const exited = cluster.nodes.at(-1)!;
    expect(await exited.exit()).toBe(78);
    // The running nodes are untouched.
    const answer = await cluster.api(nodes[0]!, 'POST', '/v1/publish', { event: 'after', to: { scopes: ['ke'] } });
    expect(answer.status).toBe(202);
  }, 60_000);
});

function callsSince(before: ShardStats[], shard: ShardStats): Record<Counted, number> {
  const earlier = before.find((entry) => entry.node === shard.node);
  const delta = (name: Counted): number => (shard.calls[name] ?? 0) - (earlier?.calls[name] ?? 0);
  return { evalsha: delta('evalsha'), eval: delta('eval'), spublish: delta('spublish') };
}
