import type { RevocationState } from '../auth/types.js';
import { ConfigError, type Config } from '../config/index.js';
import { StreamLayout } from '../history/streams.js';
import { createRedisLog, type RedisEventLog } from '../history/redis-log.js';
import type { LocalHub } from '../hub/hub.js';
import type { HubBroker, PresenceEntry, StreamFollower } from '../hub/types.js';
import { createRedisIdempotencyStore } from '../sends/redis-idempotency.js';
import type { IdempotencyStore } from '../sends/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { RedisMetrics } from '../observability/metrics.js';
import type { LimiterFactory } from '../util/rate-limit.js';
import { createClusterBroker } from './cluster-broker.js';
import { clusterRevocations } from './control.js';
import { InterestSet } from './interest.js';
import { ClusterPresence } from './presence.js';
import { createRedisLimiters } from './redis-rate-limit.js';
import { connectBus, type ClusterBus, type RedisTarget } from './redis-bus.js';
import { withTimedAppends } from './redis-metrics.js';
import { ClusterFollower, StreamCursors } from './stream-follower.js';

export interface ClusterModeOptions {
  config: Config;
  /** The standalone Redis (`REDIS_URL`) or the Redis Cluster (`REDIS_CLUSTER_NODES`) the nodes share. */
  redis: RedisTarget;
  logger: Logger;
  clock: Clock;
  nodeId: string;
  /** The node's own revocation state; remote updates are applied to it. */
  revocations: RevocationState;
  /** History retention of the shared log. */
  history: { maxEvents: number; maxAgeSeconds: number };
  /** Redis connection state, errors and the append/control round trips (`tether_redis_*`). */
  metrics?: RedisMetrics;
  /** How long a rate limit waits for Redis before deciding locally (default `REDIS_LIMIT_TIMEOUT_MS`). */
  rateLimitTimeoutMs?: number;
}

/** Everything the composition root needs to run one node of a cluster. */
export interface ClusterMode {
  readonly bus: ClusterBus;
  /** The shared event log (Redis Streams) recovery reads from on every node. */
  readonly log: RedisEventLog;
  /** Client-send idempotency shared by every node (a retry may reach another node). */
  readonly idempotency: IdempotencyStore;
  /** Rate limits every node spends together (buckets in Redis; each node's own while Redis is down). */
  readonly limiters: LimiterFactory;
  /** Give this to the token service: each update is applied here and sent to every node. */
  readonly revocations: RevocationState;
  /** Give this to the hub (`follower`): it keeps the node's subscriptions and presence in line. */
  readonly follower: StreamFollower;
  /** Give this to the hub (`broker`): publishes, admissions and disconnects go through every node. */
  readonly broker: HubBroker;
  /** Starts handing other nodes' events and control messages to the hub made with `broker`. */
  attach(hub: LocalHub): Promise<void>;
  /** Connections of the user on every live node (this node only while Redis is down). */
  presenceAll(userId: string): Promise<PresenceEntry[]>;
  /** Removes this node's presence and disconnects from Redis (after the hub's shutdown). */
  close(): Promise<void>;
  /** Called each time Redis returns after an outage (the gateway reloads revocations from the store). */
  onReconnect(handler: () => void): void;
}

/**
 * `HISTORY_SPREAD` on a Redis Cluster when unset: the `*` and top-level streams are each 8
 * sub-streams, so their appends spread over up to 8 shards (docs/PROTOCOL.md, "What the `*` and
 * top-level streams cost").
 */
const CLUSTER_SPREAD = 8;

/**
 * Every node must lay streams out alike: a node appending to other streams than another reads
 * would split live delivery and recovery. The first node records its layout in Redis
 * (`<prefix>:log:spread`); a node with another one refuses to start, naming the setting.
 */
async function agreeOnLayout(bus: ClusterBus, layout: StreamLayout): Promise<void> {
  const key = `${bus.keys.prefix}:log:spread`;
  await bus.cmd.set(key, String(layout.spread), 'NX');
  const agreed = await bus.cmd.get(key);
  if (agreed !== null && agreed !== String(layout.spread)) {
    throw new ConfigError(
      'HISTORY_SPREAD',
      `is ${layout.spread} here but ${agreed} for the cluster's event log (Redis key ${key}): set it to ${agreed}, ` +
        `or stop every node and delete that key to change it`,
    );
  }
}

/**
 * Connects to Redis (throws when it is unreachable at start: a node must not silently run alone)
 * and prepares the cluster layer.
 *
 * @example
 *   const cluster = await startClusterMode({ config, redis: { url }, logger, clock, nodeId, revocations, history });
 *   const hub = createHub({ …, follower: cluster.follower, broker: cluster.broker });
 *   await cluster.attach(hub);
 */
export async function startClusterMode(options: ClusterModeOptions): Promise<ClusterMode> {
  const { config, logger, clock, nodeId, metrics } = options;
  const clusterLogger = logger.child({ component: 'cluster' });
  const layout = new StreamLayout(config.historySpread ?? ('nodes' in options.redis ? CLUSTER_SPREAD : 1));
  const bus = await connectBus({
    redis: options.redis,
    prefix: config.redisPrefix,
    nodeId,
    logger: clusterLogger,
    metrics,
    layout,
  });
  try {
    await agreeOnLayout(bus, layout);
  } catch (err) {
    await bus.close();
    throw err;
  }
  const untimed = createRedisLog(bus.cmd, {
    prefix: config.redisPrefix,
    sharded: bus.sharded,
    layout,
    maxEvents: options.history.maxEvents,
    maxAgeSeconds: options.history.maxAgeSeconds,
  });
  const log = metrics === undefined ? untimed : withTimedAppends(untimed, metrics);
  const interest = new InterestSet(bus.sub, clusterLogger);
  const presence = new ClusterPresence(bus, clock, clusterLogger);
  const cursors = new StreamCursors(log, (stream) => interest.wants(bus.keys.ofStream(stream)));
  const broker = createClusterBroker({
    bus,
    log,
    interest,
    presence,
    cursors,
    revocations: options.revocations,
    config,
    clock,
    logger: clusterLogger,
  });
  return {
    bus,
    log,
    idempotency: createRedisIdempotencyStore(bus.cmd, (scope, key) => bus.keys.idempotency(scope, key)),
    limiters: createRedisLimiters({
      redis: bus.cmd,
      keyOf: (limiter, key) => bus.keys.rateLimit(limiter, key),
      isUp: bus.isUp,
      logger: logger.child({ component: 'rate-limit' }),
      clock,
      ...(options.rateLimitTimeoutMs === undefined ? {} : { timeoutMs: options.rateLimitTimeoutMs }),
    }),
    revocations: clusterRevocations(options.revocations, nodeId, (message) => void bus.sendControl(message)),
    follower: new ClusterFollower(bus, interest, presence, cursors),
    broker,
    attach: (hub) => broker.attach(hub),
    presenceAll: (userId) => broker.presenceAll(userId),
    close: () => broker.close(),
    onReconnect: (handler) => bus.onReconnect(handler),
  };
}
