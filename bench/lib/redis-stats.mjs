// The Redis side of the cluster-publish figure (bench/lib/cluster-publish.mjs): one plain connection
// per Redis server a backend runs on (a standalone Redis: itself; a Redis Cluster: each master), to
// read what the gateways cost there — CPU from `INFO cpu`, script and command calls from
// `INFO commandstats`, keys under the run's prefix — to find the shard that owns a key, and to delete
// the run's keys afterwards. Plain connections, not a cluster client: every figure is per server.
import { Redis } from 'ioredis';

const connect = async (node) => {
  const [host, port] = node.split(':');
  const redis = new Redis({
    host,
    port: Number(port),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: null,
  });
  let cause = null;
  redis.on('error', (err) => (cause = err));
  try {
    await redis.connect();
  } catch (err) {
    throw new Error(`Redis at ${node}: ${(cause ?? err).message}`);
  }
  return redis;
};

/** Seconds with microsecond digits (`INFO cpu`) → integer microseconds. */
const micros = (text, field) => Math.round(Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0) * 1e6);

// A log stream's keys (`{<prefix>:<u|s|c>:<name>}:x` entries, `:m` head) and the per-stream publish-id
// keys (`…}:id:<event id>`) in redis-log.ts; anything else under the prefix is counted as other.
const STREAM_KEY = /^\{[^}]*?:([usc]):[^}]*\}:(x|m|id:.*)$/;

export class RedisServers {
  /** `nodes`: `host:port` of every server to watch; `cluster`: whether they are one Redis Cluster's masters. */
  constructor(nodes, servers, cluster) {
    this.nodes = nodes;
    this.servers = servers;
    this.cluster = cluster;
  }

  /** A standalone Redis (`cluster` false) or the masters of the Redis Cluster that `seeds` belong to. */
  static async open(seeds, cluster) {
    let nodes = seeds;
    if (cluster) {
      const seed = await connect(seeds[0]);
      try {
        // CLUSTER SLOTS: [start, end, [ip, port, id], replicas…]; the masters are the first node of each range.
        const slots = await seed.call('CLUSTER', 'SLOTS');
        nodes = [...new Set(slots.map((range) => `${range[2][0]}:${range[2][1]}`))].sort();
      } finally {
        seed.disconnect();
      }
    }
    const servers = await Promise.all(nodes.map(connect));
    return new RedisServers(nodes, servers, cluster);
  }

  /**
   * Per server: total and main-thread CPU (user + sys, µs) and `{calls, usec}` per command since it
   * started. Commands run by a script are counted too, under their own names (`xadd`, `spublish`, …).
   */
  async snapshot() {
    return Promise.all(
      this.servers.map(async (server, i) => {
        const [cpu, stats] = await Promise.all([server.info('cpu'), server.info('commandstats')]);
        const commands = {};
        for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
          commands[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
        return {
          node: this.nodes[i],
          cpuMicros: micros(cpu, 'used_cpu_user') + micros(cpu, 'used_cpu_sys'),
          mainCpuMicros: micros(cpu, 'used_cpu_user_main_thread') + micros(cpu, 'used_cpu_sys_main_thread'),
          commands,
        };
      }),
    );
  }

  /**
   * What each server did between two snapshots: CPU (µs), scripts (EVAL, EVALSHA, FCALL: calls and
   * the µs spent inside them, nested commands included) and the stream appends and publishes the
   * scripts made.
   */
  static diff(before, after) {
    const delta = (i, names, field) =>
      names.reduce(
        (sum, name) => sum + (after[i].commands[name]?.[field] ?? 0) - (before[i].commands[name]?.[field] ?? 0),
        0,
      );
    const scripts = ['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'];
    return after.map((a, i) => ({
      node: a.node,
      cpuMicros: a.cpuMicros - before[i].cpuMicros,
      mainCpuMicros: a.mainCpuMicros - before[i].mainCpuMicros,
      scripts: delta(i, scripts, 'calls'),
      scriptUsec: delta(i, scripts, 'usec'),
      xadds: delta(i, ['xadd'], 'calls'),
      publishes: delta(i, ['publish', 'spublish'], 'calls'),
      commands: Object.keys(a.commands).reduce((sum, name) => sum + delta(i, [name], 'calls'), 0),
    }));
  }

  /** The keys of `prefix` on each server: `{node, total, streams: {u, s, c}, idKeys, other}` (streams count `:x` keys). */
  async keys(prefix) {
    const out = [];
    for (const [i, server] of this.servers.entries()) {
      const row = { node: this.nodes[i], total: 0, streams: { u: 0, s: 0, c: 0 }, idKeys: 0, other: 0 };
      await this.scan(server, prefix, (batch) => {
        for (const key of batch) {
          row.total += 1;
          const m = STREAM_KEY.exec(key);
          if (!m) row.other += 1;
          else if (m[2] === 'x') row.streams[m[1]] += 1;
          else if (m[2] !== 'm') row.idKeys += 1;
        }
      });
      out.push(row);
    }
    return out;
  }

  /** The server (`host:port`) that holds `key`: its slot's master on a Redis Cluster. */
  async ownerOf(key) {
    if (!this.cluster) return this.nodes[0];
    const slot = await this.servers[0].call('CLUSTER', 'KEYSLOT', key);
    const slots = await this.servers[0].call('CLUSTER', 'SLOTS');
    const range = slots.find(([start, end]) => slot >= start && slot <= end);
    return range ? `${range[2][0]}:${range[2][1]}` : null;
  }

  /** Deletes every key whose name contains `prefix` (`*<prefix>*`: stream keys start with a hash tag); returns the count. */
  async cleanup(prefix) {
    let deleted = 0;
    for (const server of this.servers)
      await this.scan(server, prefix, async (batch) => {
        if (!batch.length) return;
        // One key per UNLINK: keys of several slots in one command are refused on a cluster node.
        const pipeline = server.pipeline();
        for (const key of batch) pipeline.unlink(key);
        for (const [err, n] of await pipeline.exec()) if (!err) deleted += Number(n);
      });
    return deleted;
  }

  async scan(server, prefix, onBatch) {
    let cursor = '0';
    do {
      const [next, batch] = await server.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
      cursor = next;
      await onBatch(batch);
    } while (cursor !== '0');
  }

  close() {
    for (const server of this.servers) server.disconnect();
  }
}
