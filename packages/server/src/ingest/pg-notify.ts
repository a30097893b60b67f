import { TetherError, type PublishRequest, type PublishResult } from '@tether/protocol';
import type pg from 'pg';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { createPgLeader, type LockKey } from './pg-leader.js';

/** The listener's `application_name`, so operators (and tests) can find its backend. */
export const PG_NOTIFY_APPLICATION_NAME = 'tether-notify';

export interface PgNotifyDeps {
  url: string;
  channels: readonly string[];
  publish(request: PublishRequest): Promise<PublishResult>;
  logger: Logger;
  clock: Clock;
  /**
   * Cluster mode: the advisory lock that lets one node of the deployment listen while the others
   * wait to take over, so each NOTIFY is published once. Undefined: this node listens (one node).
   */
  lock?: LockKey;
  /** This node started (true) or stopped (false) listening (metrics). */
  onListening?(listening: boolean): void;
  /**
   * Each NOTIFY's outcome (metrics). No ingest lag can be measured: a NOTIFY carries no send time,
   * and PostgreSQL delivers it at commit.
   */
  onOutcome?(outcome: 'published' | 'invalid' | 'publish'): void;
}

export interface PgNotifyIngest {
  /** Connects and LISTENs in the background; never throws: a failed connect is retried. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Whether this node is the one listening (health, tests). */
  connected(): boolean;
}

/**
 * Postgres change ingest: LISTENs on the configured channels and publishes every NOTIFY payload
 * `{event, data, to, id?}` as if it came to `POST /v1/publish`. An invalid payload is logged
 * (channel and reason, never the payload) and skipped. A lost connection (restart, terminated
 * backend) is re-established with capped exponential backoff; notifications sent while it is
 * down are lost — PostgreSQL does not queue them for absent listeners.
 *
 * In cluster mode every node would receive each NOTIFY, so only the leader (`pg-leader.ts`) LISTENs,
 * on the very session that holds the lock: if that node dies, its LISTEN and its lock go together
 * and a waiting node takes over at once. NOTIFYs sent in the moment between are lost, as above.
 *
 * @example
 *   const ingest = createPgNotifyIngest({ url, channels: ['tickets'], publish: gateway.publish, logger, clock });
 *   await ingest.start();
 *   // psql: SELECT pg_notify('tickets', '{"event":"ticket_updated","data":{"id":"t1"},"to":{"scopes":["ke"]}}');
 */
export function createPgNotifyIngest(deps: PgNotifyDeps): PgNotifyIngest {
  const { logger } = deps;
  let listening = false;

  function onNotification(message: pg.Notification): void {
    let request: PublishRequest;
    try {
      request = parsePayload(message.payload);
    } catch (err) {
      logger.warn(
        {
          component: 'pg-notify',
          channel: message.channel,
          reason: (err as Error).message,
          bytes: message.payload?.length ?? 0,
        },
        'invalid NOTIFY payload skipped',
      );
      deps.onOutcome?.('invalid');
      return;
    }
    deps.publish(request).then(
      (result) => {
        deps.onOutcome?.('published');
        logger.debug(
          { component: 'pg-notify', channel: message.channel, eventId: result.id, name: request.event },
          'NOTIFY published',
        );
      },
      (err: unknown) => {
        // Refused by the hub's validation (a reserved event name, bad recipients): as invalid as bad JSON.
        deps.onOutcome?.(err instanceof TetherError && !err.retryable ? 'invalid' : 'publish');
        const code = err instanceof TetherError ? err.code : 'INTERNAL';
        logger.warn(
          { component: 'pg-notify', channel: message.channel, code, reason: (err as Error).message },
          'NOTIFY payload not published',
        );
      },
    );
  }

  const leader = createPgLeader({
    url: deps.url,
    lock: deps.lock,
    name: 'NOTIFY listener',
    applicationName: PG_NOTIFY_APPLICATION_NAME,
    logger,
    clock: deps.clock,
    async onElected(session) {
      session.on('notification', onNotification);
      for (const channel of deps.channels) await session.query(`LISTEN ${quoteIdentifier(channel)}`);
      listening = true;
      logger.info({ component: 'pg-notify', channels: deps.channels }, 'listening for NOTIFY');
      deps.onListening?.(true);
    },
    onDeposed() {
      listening = false;
      deps.onListening?.(false);
    },
  });

  return {
    start() {
      leader.start();
      return Promise.resolve();
    },
    stop: () => leader.stop(),
    connected: () => listening,
  };
}

/** `{event, data?, to, id?}` JSON; the hub validates the fields themselves. */
export function parsePayload(payload: string | undefined): PublishRequest {
  if (payload === undefined || payload.length === 0) throw new Error('empty payload');
  const value: unknown = JSON.parse(payload);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('payload is not a JSON object');
  const { event, to } = value as Record<string, unknown>;
  if (typeof event !== 'string') throw new Error('event must be a string');
  if (typeof to !== 'object' || to === null) throw new Error('to must be an object');
  return value as PublishRequest;
}

/** A channel name as a quoted SQL identifier (LISTEN takes no bind parameters). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
