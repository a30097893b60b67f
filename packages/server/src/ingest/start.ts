import type { PublishRequest, PublishResult } from '@tether/protocol';
import type { Config } from '../config/index.js';
import type { IngestMetrics } from '../observability/metrics.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { createOutboxIngest, type OutboxIngest } from './outbox.js';
import { advisoryLockKey } from './pg-leader.js';
import { createPgNotifyIngest, type PgNotifyIngest } from './pg-notify.js';

/** The settings the PostgreSQL ingesters need, and nothing else. */
export type IngestSettings = Pick<
  Config,
  | 'pgNotifyUrl'
  | 'pgNotifyChannels'
  | 'pgOutboxUrl'
  | 'pgOutboxBatch'
  | 'pgOutboxPollMs'
  | 'databaseSchema'
  | 'redisPrefix'
>;

export interface IngestDeps {
  /** Cluster mode: several nodes run, so NOTIFY listening needs a leader too. */
  cluster: boolean;
  publish(request: PublishRequest): Promise<PublishResult>;
  logger: Logger;
  clock: Clock;
  metrics: IngestMetrics;
}

export interface Ingest {
  stop(): Promise<void>;
}

/**
 * Starts what is configured: the NOTIFY listener (`PG_NOTIFY_URL`) and the outbox consumer
 * (`PG_OUTBOX_URL`). Throws only if the outbox cannot be created; connections lost later are
 * re-established in the background.
 *
 * The NOTIFY lock is named after `REDIS_PREFIX`: the nodes of one deployment share it, and two
 * deployments sharing a database (each its own prefix) each get their own listener.
 */
export async function startIngest(settings: IngestSettings, deps: IngestDeps): Promise<Ingest> {
  const { logger, clock, metrics } = deps;
  let notify: PgNotifyIngest | undefined;
  let outbox: OutboxIngest | undefined;
  if (settings.pgNotifyUrl !== undefined) {
    notify = createPgNotifyIngest({
      url: settings.pgNotifyUrl,
      channels: settings.pgNotifyChannels,
      publish: deps.publish,
      logger,
      clock,
      ...(deps.cluster ? { lock: advisoryLockKey(`notify:${settings.redisPrefix}`) } : {}),
      onListening: (listening) => metrics.leader('notify', listening),
      onOutcome: (outcome) => (outcome === 'published' ? metrics.notifyPublished() : metrics.notifyFailed(outcome)),
    });
    await notify.start();
  }
  if (settings.pgOutboxUrl !== undefined) {
    outbox = createOutboxIngest({
      url: settings.pgOutboxUrl,
      schema: settings.databaseSchema,
      batchSize: settings.pgOutboxBatch,
      pollMs: settings.pgOutboxPollMs,
      publish: deps.publish,
      logger,
      clock,
      metrics,
    });
    try {
      await outbox.start();
    } catch (err) {
      await notify?.stop();
      throw err;
    }
  }
  return {
    async stop() {
      await Promise.all([notify?.stop(), outbox?.stop()]);
    },
  };
}
