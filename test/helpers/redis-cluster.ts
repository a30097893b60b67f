import { Redis } from 'ioredis';
import { clusterMasterUrls, REDIS_URL, type ClusterEnv } from './cluster.js';

/** Seed nodes of the Redis Cluster `.ci/run` starts (three masters, no replicas). */
export const REDIS_CLUSTER_NODES =
  process.env.TEST_REDIS_CLUSTER_NODES ?? '127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103';

/** One kind of Redis a cluster-mode suite runs on. */
export interface RedisBackend {
  name: string;
  /** Redis Cluster: sharded pub/sub, keys spread over shards. */
  sharded: boolean;
  /** What `TestCluster` passes to its nodes. */
  env: Pick<ClusterEnv, 'redisUrl' | 'redisClusterNodes'>;
}

export const STANDALONE: RedisBackend = { name: 'standalone Redis', sharded: false, env: { redisUrl: REDIS_URL } };
export const REDIS_CLUSTER: RedisBackend = {
  name: 'Redis Cluster',
  sharded: true,
  env: { redisClusterNodes: REDIS_CLUSTER_NODES },
};

/** For `describe.each`: every cluster-mode suite runs on both. */
export const REDIS_BACKENDS: RedisBackend[] = [STANDALONE, REDIS_CLUSTER];

/** What one Redis server (a standalone one, or one master of a cluster) holds and has run. */
export interface ShardStats {
  node: string;
  /** Keys whose name contains the prefix (`*<prefix>*`: stream keys start with a hash tag). */
  keys: number;
  /** Calls since the server started, by command (`INFO commandstats`). */
  calls: Record<string, number>;
}

/**
 * A test's view into the Redis a cluster runs on, one plain connection per server (each master of
 * a Redis Cluster), to check what the gateways did there.
 */
export class RedisProbe {
  private constructor(
    private readonly backend: RedisBackend,
    private readonly servers: Redis[],
  ) {}

  static async open(backend: RedisBackend): Promise<RedisProbe> {
    const urls =
      backend.env.redisClusterNodes !== undefined
        ? await clusterMasterUrls(backend.env.redisClusterNodes)
        : [backend.env.redisUrl ?? REDIS_URL];
    if (urls.length === 0) throw new Error(`no Redis reachable for ${backend.name}`);
    return new RedisProbe(
      backend,
      urls.map((url) => new Redis(url)),
    );
  }

  /** How many connections are subscribed to an interest channel (sharded: summed over the masters). */
  async subscribers(channel: string): Promise<number> {
    const counts = await Promise.all(
      this.servers.map(async (server) => {
        const [, count] = (await server.call('PUBSUB', this.backend.sharded ? 'SHARDNUMSUB' : 'NUMSUB', channel)) as [
          string,
          number,
        ];
        return Number(count);
      }),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /** Per server: keys under the prefix and command calls so far. */
  async stats(prefix: string): Promise<ShardStats[]> {
    return Promise.all(
      this.servers.map(async (server) => {
        let keys = 0;
        let cursor = '0';
        do {
          const [next, batch] = await server.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
          cursor = next;
          keys += batch.length;
        } while (cursor !== '0');
        const info = await server.info('commandstats');
        const calls: Record<string, number> = {};
        for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
        return { node: `${server.options.host}:${server.options.port}`, keys, calls };
      }),
    );
  }

  /** Per server holding `key`: its address and the key's Redis Stream length (0 when not a stream). */
  async holders(key: string): Promise<{ node: string; length: number }[]> {
    const found = await Promise.all(
      this.servers.map(async (server) => {
        // A Redis Cluster master answers MOVED for a key of another master's slot.
        const exists = await server.exists(key).catch((err: Error) => {
          if (err.message.startsWith('MOVED')) return 0;
          throw err;
        });
        if (exists === 0) return undefined;
        const length = (await server.type(key)) === 'stream' ? await server.xlen(key) : 0;
        return { node: `${server.options.host}:${server.options.port}`, length };
      }),
    );
    return found.filter((entry) => entry !== undefined);
  }

  close(): void {
    for (const server of this.servers) server.disconnect();
  }
}
