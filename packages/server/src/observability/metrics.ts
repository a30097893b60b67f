import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HubObserver, Session } from '../hub/types.js';
import type { ReceiptMetrics } from '../receipts/recorder.js';

/**
 * Prometheus metrics, one registry per gateway (several gateways in one test process must not
 * share counters). Fed through the hub's observer, so the hub itself knows nothing of prom-client.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly observer: HubObserver;
  recordHttpAuth(kind: 'login' | 'refresh' | 'logout' | 'guest', outcome: string): void;
  readonly ingest: IngestMetrics;
  readonly http: HttpMetrics;
  readonly redis: RedisMetrics;
  readonly receipts: ReceiptMetrics;
  /** The embedded event log's group commit: events written by one transaction, and how long it took. */
  logCommit(events: number, seconds: number): void;
}

/** What the HTTP app reports once per answered request. */
export interface HttpMetrics {
  /** `route` is the router's pattern (`/v1/users/:id/disconnect`), undefined when no route matched. */
  request(method: string, route: string | undefined, status: number, seconds: number): void;
}

/** The two Redis connections of a cluster node (`redis-bus.ts`). */
export type RedisRole = 'cmd' | 'sub';
/** The Redis round trips timed: the event-log append with its PUBLISH (one script), and a control PUBLISH. */
export type RedisOp = 'append' | 'control';

/** What the cluster layer reports about Redis: connection events and the hot round trips, not every command. */
export interface RedisMetrics {
  /** Registers how to tell whether `role` is usable; read at each scrape, so nothing runs per command. */
  connection(role: RedisRole, up: () => boolean): void;
  connectionError(role: RedisRole): void;
  reconnecting(role: RedisRole): void;
  roundTrip(op: RedisOp, seconds: number, ok: boolean): void;
}

/** What the PostgreSQL ingesters (outbox consumer, NOTIFY listener) report. */
export interface IngestMetrics {
  /** This node became (true) or stopped being (false) the one node doing `role`. */
  leader(role: 'outbox' | 'notify', leading: boolean): void;
  outboxPublished(rows: number): void;
  /** `rejected`: an invalid row set aside; `publish` / `database`: a batch stopped, retried later. */
  outboxFailed(reason: 'rejected' | 'publish' | 'database'): void;
  /** Age of the oldest committed row still in the outbox (0 when it is empty). */
  outboxLag(seconds: number): void;
  /** One row published, `seconds` after its insert (the row's `created_at`, by the database's clock). */
  outboxInsertToPublish(seconds: number): void;
  notifyPublished(): void;
  /** `invalid`: a payload that is not a publish (skipped); `publish`: a valid one the hub did not publish. */
  notifyFailed(reason: 'invalid' | 'publish'): void;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const connections = new Gauge({
    name: 'tether_connections',
    help: 'Live authenticated connections',
    labelNames: ['transport', 'kind'] as const,
    registers: [registry],
  });
  const closes = new Counter({
    name: 'tether_connections_closed_total',
    help: 'Connections closed, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const authResults = new Counter({
    name: 'tether_auth_results_total',
    help: 'Socket authentication results by phase and code (ok for success)',
    labelNames: ['phase', 'code'] as const,
    registers: [registry],
  });
  const reauths = new Counter({
    name: 'tether_reauths_total',
    help: 'In-place reauthentications by result',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const warnings = new Counter({
    name: 'tether_token_expiry_warnings_total',
    help: 'token_expiring messages sent',
    registers: [registry],
  });
  const publishes = new Counter({
    name: 'tether_publishes_total',
    help: 'Events published',
    registers: [registry],
  });
  const deliveries = new Counter({
    name: 'tether_deliveries_total',
    help: 'Event writes to connections',
    registers: [registry],
  });
  const publishToSend = new Histogram({
    name: 'tether_publish_to_send_seconds',
    help: 'Time from a publish entering the hub to its last local write',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const httpAuth = new Counter({
    name: 'tether_http_auth_total',
    help: 'Token service requests by kind and outcome',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  });

  const pgLeader = new Gauge({
    name: 'tether_pg_leader',
    help: 'Whether this node is the one doing a PostgreSQL ingest role (outbox consumer, NOTIFY listener)',
    labelNames: ['role'] as const,
    registers: [registry],
  });
  const outboxRows = new Counter({
    name: 'tether_outbox_rows_total',
    help: 'Outbox rows published by this node',
    registers: [registry],
  });
  const outboxFailures = new Counter({
    name: 'tether_outbox_failures_total',
    help: 'Outbox rows set aside (rejected) and batches stopped by a publish or database failure',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const outboxLag = new Gauge({
    name: 'tether_outbox_lag_seconds',
    help: 'Age of the oldest committed outbox row, as last seen by this node while it consumed',
    registers: [registry],
  });
  const ingestEvents = new Counter({
    name: 'tether_ingest_events_total',
    help: 'Events published by this node from PostgreSQL, by ingest path (notify, outbox)',
    labelNames: ['path'] as const,
    registers: [registry],
  });
  const ingestFailures = new Counter({
    name: 'tether_ingest_failures_total',
    help: 'PostgreSQL ingest failures by path and reason (notify: invalid, publish; outbox: rejected, publish, database)',
    labelNames: ['path', 'reason'] as const,
    registers: [registry],
  });
  const outboxInsertToPublish = new Histogram({
    name: 'tether_outbox_insert_to_publish_seconds',
    help: 'Time from an outbox row being inserted to its event being published',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const ingest: IngestMetrics = {
    leader: (role, leading) => pgLeader.set({ role }, leading ? 1 : 0),
    outboxPublished: (rows) => {
      outboxRows.inc(rows);
      ingestEvents.inc({ path: 'outbox' }, rows);
    },
    outboxFailed: (reason) => {
      outboxFailures.inc({ reason });
      ingestFailures.inc({ path: 'outbox', reason });
    },
    outboxLag: (seconds) => outboxLag.set(seconds),
    outboxInsertToPublish: (seconds) => outboxInsertToPublish.observe(Math.max(0, seconds)),
    notifyPublished: () => ingestEvents.inc({ path: 'notify' }),
    notifyFailed: (reason) => ingestFailures.inc({ path: 'notify', reason }),
  };

  const httpDuration = new Histogram({
    name: 'tether_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern (unmatched: no route) and status code, from arrival to answer',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const http: HttpMetrics = {
    request: (method, route, status, seconds) =>
      httpDuration.observe({ method, route: route ?? 'unmatched', status: String(status) }, seconds),
  };

  const redisProbes = new Map<RedisRole, () => boolean>();
  new Gauge({
    name: 'tether_redis_up',
    help: 'Whether the Redis connection of this role (cmd: commands, sub: subscriptions) is usable (cluster mode)',
    labelNames: ['role'] as const,
    registers: [registry],
    collect() {
      for (const [role, up] of redisProbes) this.set({ role }, up() ? 1 : 0);
    },
  });
  const redisErrors = new Counter({
    name: 'tether_redis_connection_errors_total',
    help: 'Errors reported by a Redis connection (refused, reset, timed out), by role',
    labelNames: ['role'] as const,
    registers: [registry],
  });
  const redisReconnects = new Counter({
    name: 'tether_redis_reconnects_total',
    help: 'Reconnection attempts of a Redis connection after it was lost, by role',
    labelNames: ['role'] as const,
    registers: [registry],
  });
  const redisRoundTrip = new Histogram({
    name: 'tether_redis_roundtrip_seconds',
    help: 'Successful Redis round trips by operation (append: event-log append and its PUBLISH; control: control PUBLISH)',
    labelNames: ['op'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const redisFailures = new Counter({
    name: 'tether_redis_op_failures_total',
    help: 'Redis round trips that failed (unreachable, timed out, an error reply), by operation',
    labelNames: ['op'] as const,
    registers: [registry],
  });
  const logCommitEvents = new Histogram({
    name: 'tether_log_commit_events',
    help: 'Events written by one transaction of the embedded event log (group commit: more under load)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
    registers: [registry],
  });
  const logCommitSeconds = new Histogram({
    name: 'tether_log_commit_seconds',
    help: 'Time one transaction of the embedded event log took (the event loop waits for it on SQLite)',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    registers: [registry],
  });
  const redis: RedisMetrics = {
    connection: (role, up) => void redisProbes.set(role, up),
    connectionError: (role) => redisErrors.inc({ role }),
    reconnecting: (role) => redisReconnects.inc({ role }),
    roundTrip: (op, seconds, ok) => (ok ? redisRoundTrip.observe({ op }, seconds) : redisFailures.inc({ op })),
  };

  const receiptLatency = new Histogram({
    name: 'tether_receipt_latency_seconds',
    help: 'Time from a publish (or its arrival on this node) to the receipt of a recorded delivery',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const unacknowledged = new Counter({
    name: 'tether_deliveries_unacknowledged_total',
    help: 'Recorded deliveries with no receipt within RECEIPT_TIMEOUT_MS, by transport',
    labelNames: ['transport'] as const,
    registers: [registry],
  });
  let awaitingRead: () => number = () => 0;
  new Gauge({
    name: 'tether_deliveries_awaiting_receipt',
    help: 'Recorded deliveries on this node waiting for their receipt (within RECEIPT_TIMEOUT_MS)',
    registers: [registry],
    collect() {
      this.set(awaitingRead());
    },
  });
  const receiptPushes = new Counter({
    name: 'tether_receipt_pushes_total',
    help: 'Pushes sent because no device of the user acknowledged an event within RECEIPT_PUSH_AFTER_MS',
    registers: [registry],
  });
  const recordDropped = new Counter({
    name: 'tether_delivery_records_dropped_total',
    help: 'Delivery record and timeline rows dropped (write buffer full, or the store refused the write)',
    registers: [registry],
  });
  const reconnections = new Counter({
    name: 'tether_reconnections_total',
    help: 'Connections of a device (login session) that had connected to this node within the hour before, by transport',
    labelNames: ['transport'] as const,
    registers: [registry],
  });
  const heartbeatRtt = new Histogram({
    name: 'tether_heartbeat_rtt_seconds',
    help: 'Heartbeat round trip per connection (ping to pong), by transport',
    labelNames: ['transport'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const receipts: ReceiptMetrics = {
    receiptLatency: (seconds) => receiptLatency.observe(Math.max(0, seconds)),
    unacknowledged: (count, transport) => unacknowledged.inc({ transport }, count),
    awaiting: (read) => void (awaitingRead = read),
    receiptPush: () => receiptPushes.inc(),
    dropped: (count) => recordDropped.inc(count),
    reconnection: (transport) => reconnections.inc({ transport }),
  };

  const kindOf = (s: Session) => (s.isGuest ? 'guest' : 'user');
  const observer: HubObserver = {
    onSessionOpened(session) {
      connections.inc({ transport: session.transport, kind: kindOf(session) });
      authResults.inc({ phase: 'handshake', code: 'ok' });
    },
    onSessionClosed(session, reason) {
      connections.dec({ transport: session.transport, kind: kindOf(session) });
      closes.inc({ reason });
    },
    onAuthFailed(code, info) {
      authResults.inc({ phase: info.phase, code });
    },
    onReauth(_session, ok, code) {
      reauths.inc({ result: ok ? 'ok' : (code ?? 'error') });
    },
    onExpiryWarning() {
      warnings.inc();
    },
    onHeartbeat(session, ms) {
      heartbeatRtt.observe({ transport: session.transport }, ms / 1000);
    },
    onPublish() {
      publishes.inc();
    },
    onDelivered(count, ms) {
      if (count > 0) deliveries.inc(count);
      publishToSend.observe(ms / 1000);
    },
  };

  return {
    registry,
    observer,
    recordHttpAuth: (kind, outcome) => httpAuth.inc({ kind, outcome }),
    ingest,
    http,
    redis,
    receipts,
    logCommit(events, seconds) {
      logCommitEvents.observe(events);
      logCommitSeconds.observe(seconds);
    },
  };
}

/** Calls every observer's callback in turn; one observer's exception never stops the others. */
export function combineObservers(...observers: (HubObserver | undefined)[]): HubObserver {
  const list = observers.filter((o): o is HubObserver => o !== undefined);
  const call =
    <K extends keyof HubObserver>(key: K) =>
    (...args: Parameters<NonNullable<HubObserver[K]>>) => {
      for (const o of list) {
        const fn = o[key] as ((...a: unknown[]) => void) | undefined;
        if (fn === undefined) continue;
        try {
          fn.apply(o, args);
        } catch {
          // Observers are for metrics and logs; they must not break delivery.
        }
      }
    };
  return {
    onSessionOpened: call('onSessionOpened'),
    onSessionClosed: call('onSessionClosed'),
    onAuthFailed: call('onAuthFailed'),
    onReauth: call('onReauth'),
    onExpiryWarning: call('onExpiryWarning'),
    onHeartbeat: call('onHeartbeat'),
    onPublish: call('onPublish'),
    onDelivered: call('onDelivered'),
  };
}
