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
    // keys are this run's only. Every scope publish also appends to the root scope's stream (`s:*`,
    // read by holders of `*`), so one shard carries that stream on top of its third.
    console.log(`per shard after ${SCOPES} publishes to different scopes in ${ms} ms (prefix ${cluster.prefix}):`);
    console.table(rows);
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      // CRC16 spreads 1,000 scope names about evenly: about 333 streams per shard.
      expect(row.keys, `keys on ${row.shard}`).toBeGreaterThan(SCOPES / 10);
      expect(row.evalsha + row.eval, `scripts on ${row.shard}`).toBeGreaterThan(SCOPES / 10);
      expect(row.spublish, `SPUBLISHes on ${row.shard}`).toBeGreaterThan(SCOPES / 10);
    }
  }, 120_000);
});

function callsSince(before: ShardStats[], shard: ShardStats): Record<Counted, number> {
  const earlier = before.find((entry) => entry.node === shard.node);
  const delta = (name: Counted): number => (shard.calls[name] ?? 0) - (earlier?.calls[name] ?? 0);
  return { evalsha: delta('evalsha'), eval: delta('eval'), spublish: delta('spublish') };
}
