import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisNodeAddress } from '../config/schema.js';
import type { StreamLayout } from '../history/streams.js';
import type { RedisMetrics } from '../observability/metrics.js';
import type { Logger } from '../util/logger.js';
import type { ControlMessage } from './control.js';
import { ClusterKeys } from './keys.js';

/** Where the shared Redis is: one server (`REDIS_URL`) or the seed nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`). */
export type RedisTarget = { url: string } | { nodes: readonly RedisNodeAddress[] };

/**
 * The two Redis connections of a node and what travels over them:
 * - `cmd` runs commands. It has no offline queue and one retry, so while Redis is down a publish
 *   fails at once with a clear error instead of waiting in a queue (nothing is dropped silently).
 * - `sub` holds the node's subscriptions. It keeps its queue and ioredis re-subscribes after a
 *   reconnect, so interest changes made during an outage are applied when Redis returns.
 *
 * Standalone Redis, classic pub/sub:
 *
 *   node ──cmd──► EVAL append+PUBLISH ──► Redis ──► sub of every interested node ──► deliverLocal
 *        ──cmd──► PUBLISH <prefix>:ctl ─────────► sub of every node ──► revocation, disconnect, grants
 *
 * Redis Cluster (`sharded`), sharded pub/sub: a shard channel lives in the slot of its name, and
 * `sub` holds one connection per master, each SSUBSCRIBEd to the channels of its slots.
 *
 *   node ──cmd──► EVAL per stream on its shard, SPUBLISH ──► that shard ──► sub of every interested node
 *        ──cmd──► SPUBLISH {<prefix>}:ctl ──► its shard ──► sub of every node
 */
export interface ClusterBus {
  readonly nodeId: string;
  readonly keys: ClusterKeys;
  /**
   * Whether Redis is a Redis Cluster: pub/sub is sharded (SSUBSCRIBE, SPUBLISH), and a script or
   * a multi-key command must keep to the keys of one slot.
   */
  readonly sharded: boolean;
  readonly cmd: Redis | Cluster;
  readonly sub: Redis | Cluster;
  /**
   * Whether commands can be sent now. On a Redis Cluster also false from the loss of a shard's
   * subscriber until it is back: the `Cluster` stays "ready" while some shards are unreachable.
   */
  isUp(): boolean;
  /** Sends a control message to every node (this one ignores its own). Never throws: logs instead. */
  sendControl(message: ControlMessage): Promise<boolean>;
  onControl(handler: (message: ControlMessage) => void): void;
  /** Messages on interest channels (events), as raw JSON text. */
  onEvent(handler: (channel: string, text: string) => void): void;
  /** Called each time Redis is back after an outage (not on the first connect). */
  onReconnect(handler: () => void): void;
  /**
   * Called when an outage begins (before ioredis reconnects and re-subscribes: messages that arrive
   * after that and before `onReconnect`'s handlers run are live ones the catch-up must not pass).
   */
  onLost(handler: () => void): void;
  close(): Promise<void>;
}

export interface BusOptions {
  redis: RedisTarget;
  prefix: string;
  nodeId: string;
  logger: Logger;
  /** Connection state and errors per connection, and the control PUBLISH round trip. */
  metrics?: RedisMetrics;
  /** The event log's stream layout (interest channels are per stream). */
  layout?: StreamLayout;
}

/** Connects both connections (throws when Redis cannot be reached at start) and subscribes to control. */
export async function connectBus(options: BusOptions): Promise<ClusterBus> {
  const { nodeId, logger, metrics } = options;
  const keys = new ClusterKeys(options.prefix, options.layout);
  const { cmd, sub } = openConnections(options.redis, nodeId);
  const sharded = sub instanceof Cluster;
  // A shard channel is heard only on its own shard; the braces pin control to one slot (low volume).
  const control = sharded ? `{${options.prefix}}:ctl` : keys.control;

  const controlHandlers: ((message: ControlMessage) => void)[] = [];
  const eventHandlers: ((channel: string, text: string) => void)[] = [];
  const reconnectHandlers: (() => void)[] = [];
  const lostHandlers: (() => void)[] = [];
  let down = false;
  let closing = false;
  /** Redis Cluster: a shard's subscriber connection was lost and ioredis has not re-subscribed it yet. */
  let resubscribing = false;

  for (const [name, conn] of [
    ['cmd', cmd],
    ['sub', sub],
  ] as const) {
    conn.on('error', (err: Error) => {
      metrics?.connectionError(name);
      if (!down && !closing)
        logger.warn({ component: 'cluster', connection: name, err: err.message }, 'redis connection error');
    });
    if (metrics !== undefined) conn.on('reconnecting', () => metrics.reconnecting(name));
  }
  // Read at each scrape. A Redis Cluster's `sub` stays "ready" while one shard's subscriber is lost.
  metrics?.connection('cmd', () => cmd.status === 'ready');
  metrics?.connection('sub', () => sub.status === 'ready' && !resubscribing);
  // Either connection lost (or, on a Redis Cluster, one shard's subscriber) = an outage; it ends
  // when everything is back and the re-subscriptions are confirmed.
  const lost = (what = 'redis unavailable: serving local connections only, publishes fail until it returns'): void => {
    if (closing || down) return;
    down = true;
    logger.error({ component: 'cluster', node: nodeId }, what);
    for (const handler of lostHandlers) runSafely(logger, 'outage handler', handler);
  };
  const back = (): void => {
    if (!down || closing || resubscribing || cmd.status !== 'ready' || sub.status !== 'ready') return;
    confirmSubscriptions(sub, options.prefix).then(
      () => {
        if (!down || resubscribing || cmd.status !== 'ready') return;
        down = false;
        logger.info({ component: 'cluster', node: nodeId }, 'redis available again: resuming cluster mode');
        for (const handler of reconnectHandlers) runSafely(logger, 'reconnect handler', handler);
      },
      () => undefined, // lost again: the next 'ready' retries
    );
  };
  for (const conn of [cmd, sub]) {
    conn.on('close', () => lost());
    conn.on('ready', back);
  }
  if (sharded) {
    // ioredis reports a lost shard subscriber as '-node' with its node key (a plain pool
    // connection, which holds no subscription, without one), replaces it after refreshing the
    // slots, re-subscribes its channels and then emits 'subscribersReady'.
    const shardLost = (): void => {
      if (closing) return;
      resubscribing = true;
      lost('redis cluster: a shard subscriber connection was lost; catching up once it is subscribed again');
    };
    sub.on('-node', (_redis: unknown, key?: string) => {
      if (key !== undefined) shardLost();
    });
    sub.on('-subscriber', shardLost);
    sub.on('subscribersReady', () => {
      resubscribing = false;
      back();
    });
  }

  const onMessage = (channel: string, text: string): void => {
    if (channel === control) {
      const message = parseControl(text);
      if (message === undefined || message.from === nodeId) return;
      for (const handler of controlHandlers) runSafely(logger, 'control handler', () => handler(message));
      return;
    }
    for (const handler of eventHandlers) runSafely(logger, 'event handler', () => handler(channel, text));
  };
  sub.on(sharded ? 'smessage' : 'message', onMessage);

  try {
    await Promise.all([cmd.connect(), sub.connect()]);
    await (sharded ? sub.ssubscribe(control) : sub.subscribe(control));
  } catch (err) {
    // A Cluster keeps retrying in the background after a failed first connect: stop it.
    closing = true;
    cmd.disconnect();
    sub.disconnect();
    throw err;
  }
  logger.info({ component: 'cluster', node: nodeId, prefix: options.prefix, sharded }, 'cluster bus connected');

  return {
    nodeId,
    keys,
    sharded,
    cmd,
    sub,
    isUp: () => cmd.status === 'ready' && !(sharded && down),
    async sendControl(message) {
      const started = performance.now();
      try {
        const text = JSON.stringify(message);
        await (sharded ? cmd.spublish(control, text) : cmd.publish(control, text));
        metrics?.roundTrip('control', (performance.now() - started) / 1000, true);
        return true;
      } catch (err) {
        metrics?.roundTrip('control', 0, false);
        logger.warn(
          { component: 'cluster', type: message.t, err: (err as Error).message },
          'control message not sent (redis unavailable)',
        );
        return false;
      }
    },
    onControl: (handler) => void controlHandlers.push(handler),
    onEvent: (handler) => void eventHandlers.push(handler),
    onReconnect: (handler) => void reconnectHandlers.push(handler),
    onLost: (handler) => void lostHandlers.push(handler),
    async close() {
      closing = true;
      await Promise.allSettled([cmd.quit(), sub.quit()]);
      cmd.disconnect();
      sub.disconnect();
    },
  };
}

/** Reconnect forever, at most every 2 s: Redis coming back must bring the node back by itself. */
const retryDelay = (attempt: number): number => Math.min(100 * attempt, 2000);

function openConnections(target: RedisTarget, nodeId: string): { cmd: Redis | Cluster; sub: Redis | Cluster } {
  const connectionName = `tether-${nodeId}`;
  if ('url' in target) {
    const common: RedisOptions = { lazyConnect: true, connectionName, retryStrategy: retryDelay };
    return {
      cmd: new Redis(target.url, {
        ...common,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: 5000,
      }),
      sub: new Redis(target.url, { ...common, maxRetriesPerRequest: null }),
    };
  }
  const seeds = target.nodes.map(({ host, port }) => ({ host, port }));
  // The nodes of one cluster share their users: the first seed that names one gives the credentials.
  const auth = target.nodes.find((node) => node.username !== undefined || node.password !== undefined);
  const node = { connectionName, username: auth?.username, password: auth?.password };
  const common: ClusterOptions = { lazyConnect: true, clusterRetryStrategy: retryDelay };
  return {
    cmd: new Cluster(seeds, {
      ...common,
      enableOfflineQueue: false,
      // Like the standalone cmd, fail at once while a shard is unreachable or the cluster is down
      // (ioredis would retry each command for about a second); MOVED and ASK are still followed.
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      // Per-key commands issued together (presence, one script per stream) go out in one batch per shard.
      enableAutoPipelining: true,
      redisOptions: { ...node, maxRetriesPerRequest: 1, commandTimeout: 5000 },
    }),
    sub: new Cluster(seeds, {
      ...common,
      shardedSubscribers: true,
      redisOptions: { ...node, maxRetriesPerRequest: null },
    }),
  };
}

/**
 * Resolves once the subscriptions ioredis re-sent after a reconnect are confirmed: a command queued
 * behind them on the same connection answers after them. Standalone: a PING on `sub`. Redis Cluster:
 * each master's subscriber connection gets a SUNSUBSCRIBE of a channel it never subscribed
 * (harmless), named to hash to one of that master's slots.
 */
async function confirmSubscriptions(sub: Redis | Cluster, prefix: string): Promise<void> {
  if (!(sub instanceof Cluster)) {
    await sub.ping();
    return;
  }
  const masters = new Set(sub.slots.map((owners) => owners[0]).filter((key) => key !== undefined));
  const probes: string[] = [];
  for (let n = 0; masters.size > 0 && n < 100_000; n++) {
    const probe = `${prefix}:probe:${n}`;
    const owner = sub.slots[clusterSlot(probe)]?.[0];
    if (owner !== undefined && masters.delete(owner)) probes.push(probe);
  }
  await Promise.all(probes.map((probe) => sub.sunsubscribe(probe)));
}

/** Redis Cluster's slot of a key or shard channel: CRC16 (XMODEM) of its hash tag, or of it all, modulo 16384. */
function clusterSlot(name: string): number {
  const open = name.indexOf('{');
  const close = open < 0 ? -1 : name.indexOf('}', open + 1);
  const hashed = close > open + 1 ? name.slice(open + 1, close) : name;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

function parseControl(text: string): ControlMessage | undefined {
  try {
    const value = JSON.parse(text) as Partial<ControlMessage>;
    return typeof value.t === 'string' && typeof value.from === 'string' ? (value as ControlMessage) : undefined;
  } catch {
    return undefined;
  }
}

function runSafely(logger: Logger, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger.error({ component: 'cluster', err }, `${what} failed`);
  }
}
