import type { RevocationState } from '../auth/types.js';
import type { ClusterMode } from '../broker/cluster-mode.js';
import type { Config } from '../config/index.js';
import { createStoreLog } from '../history/store-log.js';
import { StreamLayout } from '../history/streams.js';
import type { EventLog } from '../history/types.js';
import type { RedisMetrics } from '../observability/metrics.js';
import type { OpenStore } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/**
 * Cluster mode, when `REDIS_URL` or `REDIS_CLUSTER_NODES` is set: the bus, the shared log, presence,
 * limits and revocations over Redis. Loaded only then, so a single node never loads ioredis. After
 * Redis was away, the revocations are reloaded from the store (updates sent meanwhile were lost).
 */
export async function assembleCluster(
  config: Config,
  deps: {
    nodeId: string;
    revocations: RevocationState;
    reloadRevocations(): Promise<void>;
    metrics: RedisMetrics;
    logger: Logger;
    clock: Clock;
    rateLimitTimeoutMs?: number;
  },
): Promise<ClusterMode | undefined> {
  const redis =
    config.redisClusterNodes !== undefined
      ? { nodes: config.redisClusterNodes }
      : config.redisUrl !== undefined
        ? { url: config.redisUrl }
        : undefined;
  if (redis === undefined) return undefined;
  const { startClusterMode } = await import('../broker/cluster-mode.js');
  const cluster = await startClusterMode({
    config,
    redis,
    logger: deps.logger,
    clock: deps.clock,
    nodeId: deps.nodeId,
    revocations: deps.revocations,
    history: { maxEvents: config.historyMaxEvents, maxAgeSeconds: config.historyMaxAgeSeconds },
    metrics: deps.metrics,
    ...(deps.rateLimitTimeoutMs === undefined ? {} : { rateLimitTimeoutMs: deps.rateLimitTimeoutMs }),
  });
  cluster.onReconnect(() => {
    deps.reloadRevocations().catch((err: unknown) => deps.logger.error({ err }, 'revocation reload failed'));
  });
  return cluster;
}

export type LogSettings = Pick<Config, 'historySpread' | 'historyMaxEvents' | 'historyMaxAgeSeconds'>;

/** The event log: the cluster's (Redis) in cluster mode, else the store's. */
export async function assembleLog(
  settings: LogSettings,
  deps: {
    store: OpenStore;
    cluster: ClusterMode | undefined;
    logger: Logger;
    clock: Clock;
    onCommit?(events: number, seconds: number): void;
  },
): Promise<EventLog> {
  if (deps.cluster !== undefined) return deps.cluster.log;
  return createStoreLog(deps.store.db, deps.store.kind, {
    layout: new StreamLayout(settings.historySpread ?? 1),
    maxEvents: settings.historyMaxEvents,
    maxAgeSeconds: settings.historyMaxAgeSeconds,
    clock: deps.clock,
    logger: deps.logger.child({ component: 'history' }),
    ...(deps.onCommit === undefined ? {} : { onCommit: deps.onCommit }),
  });
}
