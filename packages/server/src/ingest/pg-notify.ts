import { TetherError, type PublishRequest, type PublishResult } from '@tether/protocol';
import pg from 'pg';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/** The listener's `application_name`, so operators (and tests) can find its backend. */
export const PG_NOTIFY_APPLICATION_NAME = 'tether-notify';
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

export interface PgNotifyDeps {
  url: string;
  channels: readonly string[];
  publish(request: PublishRequest): Promise<PublishResult>;
  logger: Logger;
  clock: Clock;
}

export interface PgNotifyIngest {
  /** Connects and LISTENs; never throws: a failed connect is retried in the background. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Whether the LISTEN connection is up (health, tests). */
  connected(): boolean;
}

/**
 * Postgres change ingest: LISTENs on the configured channels and publishes every NOTIFY payload
 * `{event, data, to, id?}` as if it came to `POST /v1/publish`. An invalid payload is logged
 * (channel and reason, never the payload) and skipped. A lost connection (restart, terminated
 * backend) is re-established with capped exponential backoff; notifications sent while it is
 * down are lost — PostgreSQL does not queue them for absent listeners.
 *
 * @example
 *   const ingest = createPgNotifyIngest({ url, channels: ['tickets'], publish: gateway.publish, logger, clock });
 *   await ingest.start();
 *   // psql: SELECT pg_notify('tickets', '{"event":"ticket_updated","data":{"id":"t1"},"to":{"scopes":["ke"]}}');
 */
export function createPgNotifyIngest(deps: PgNotifyDeps): PgNotifyIngest {
  const { logger, clock } = deps;
  let client: pg.Client | undefined;
  let up = false;
  let stopped = false;
  let failures = 0;
  let retry: TimerHandle | undefined;

  function scheduleReconnect(): void {
    if (stopped || retry !== undefined) return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures, 5));
    failures++;
    retry = clock.setTimeout(() => {
      retry = undefined;
      void connect();
    }, delay);
    retry.unref?.();
  }

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
      return;
    }
    deps.publish(request).then(
      (result) =>
        logger.debug(
          { component: 'pg-notify', channel: message.channel, eventId: result.id, name: request.event },
          'NOTIFY published',
        ),
      (err: unknown) => {
        const code = err instanceof TetherError ? err.code : 'INTERNAL';
        logger.warn(
          { component: 'pg-notify', channel: message.channel, code, reason: (err as Error).message },
          'NOTIFY payload not published',
        );
      },
    );
  }

  async function connect(): Promise<void> {
    if (stopped) return;
    const next = new pg.Client({ connectionString: deps.url, application_name: PG_NOTIFY_APPLICATION_NAME });
    const lost = (why: string, err?: Error): void => {
      if (client !== next) return;
      client = undefined;
      up = false;
      next.removeAllListeners();
      next.on('error', () => undefined);
      void next.end().catch(() => undefined);
      if (!stopped) {
        logger.warn(
          { component: 'pg-notify', why, err: err?.message },
          'NOTIFY listener lost its connection; reconnecting',
        );
        scheduleReconnect();
      }
    };
    client = next;
    next.on('error', (err) => lost('error', err));
    next.on('end', () => lost('end'));
    next.on('notification', onNotification);
    try {
      await next.connect();
      for (const channel of deps.channels) await next.query(`LISTEN ${quoteIdentifier(channel)}`);
      if (client !== next) return;
      up = true;
      failures = 0;
      logger.info({ component: 'pg-notify', channels: deps.channels }, 'listening for NOTIFY');
    } catch (err) {
      lost('connect', err as Error);
    }
  }

  return {
    start: () => connect(),
    async stop() {
      stopped = true;
      if (retry !== undefined) clock.clearTimeout(retry);
      const current = client;
      client = undefined;
      up = false;
      if (current !== undefined) {
        current.removeAllListeners();
        current.on('error', () => undefined);
        await current.end().catch(() => undefined);
      }
    },
    connected: () => up,
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
