import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { PublishBatchResult, PublishRequest, PublishResult } from '@tether/protocol';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { createAdminOperations, type GatewayUsers } from './admin.js';

export type { GatewayUsers } from './admin.js';
import type { TokenService } from './auth/token-service.js';
import type { Authenticator, Principal, TokenSigner } from './auth/types.js';
import { assembleAuthenticator, assembleKeys, assembleTokenService } from './compose/auth.js';
import { assembleCluster, assembleLog } from './compose/history.js';
import { assembleHttpRoutes } from './compose/http.js';
import { assemblePublishing } from './compose/publishing.js';
import { assembleTransports } from './compose/transports.js';
import type { Config } from './config/index.js';
import { createHttpApp } from './http/app.js';
import type { EventLog } from './history/types.js';
import { createHub } from './hub/hub.js';
import type { Hub, HubObserver, PresenceEntry } from './hub/types.js';
import type { Ingest } from './ingest/start.js';
import { openDeviceStore } from './push/device-store.js';
import { AuthEventFeed, type AuthEventListener } from './observability/auth-events.js';
import { combineObservers, createMetrics, type Metrics } from './observability/metrics.js';
import { sqliteHandle } from './store/connect.js';
import { openStore, type OpenStore } from './store/index.js';
import { openDeliveryStore, type DeliveryStore } from './receipts/delivery-store.js';
import { DeliveryRecorder } from './receipts/recorder.js';
import { openRecordWorker } from './receipts/record-worker-store.js';
import type { DeliveryReport, TimelineReport } from './receipts/types.js';
import { createMemoryIdempotencyStore } from './sends/memory-idempotency.js';
import type { ClientEventHandler, IdempotencyStore } from './sends/types.js';
import { systemClock, type Clock } from './util/clock.js';
import { devApiKey } from './util/dev-secret.js';
import { createLogger, type Logger } from './util/logger.js';
import { localLimiters } from './util/rate-limit.js';

export interface GatewayOptions {
  /** A logger to use (default: pino to stdout at `config.logLevel`). */
  logger?: Logger;
  /** Where the default logger writes (tests capture logs this way). */
  logDestination?: DestinationStream;
  clock?: Clock;
  /** Extra lifecycle observers (an app's dashboard, tests). */
  observer?: HubObserver;
  /**
   * How long a `/ws` connection may wait before sending `authenticate`, and an engine.io session for
   * its Socket.IO connect (default 10 s; tests shorten it).
   */
  wsAuthTimeoutMs?: number;
  /** Called with the fastify instance before it starts listening, to add an app's own routes. */
  routes?: (app: FastifyInstance, gateway: Gateway) => Promise<void> | void;
  /** Where client-send results are kept for retries (default: in memory; cluster mode may share one). */
  idempotency?: IdempotencyStore;
  /**
   * In cluster mode, how long a rate limit waits for Redis before this node decides on its own
   * buckets (default 100 ms; tests on a loaded machine lengthen it so limits stay shared).
   */
  rateLimitRedisTimeoutMs?: number;
}

/**
 * A running Tether gateway: HTTP API, Socket.IO and `/ws` on one port. This is what an app that
 * embeds Tether lives on: publishing, client-event handlers, the auth-event feed, sessions and
 * presence, user provisioning, token verification, and its own HTTP routes (`options.routes`).
 * Nothing else of the gateway's insides is public; an app keeps its own data in its own database.
 *
 * @example
 *   const gateway = await createGateway(loadConfig(process.env));
 *   const { url } = await gateway.listen();
 *   await gateway.publish({ event: 'ticket_created', data: { ticketId: 't1' }, to: { scopes: ['ke/muranga'] } });
 */
export interface Gateway {
  readonly config: Config;
  /** The gateway's logger (pino): an app's own lines go with the gateway's, never with a token in them. */
  readonly logger: Logger;
  /** The API keys in force (generated in dev when API_KEYS is unset). */
  readonly apiKeys: readonly string[];
  /** The built-in user store; undefined when the gateway only verifies tokens issued by an app's own backend. */
  readonly users: GatewayUsers | undefined;
  /** Live auth events (logins, refreshes, reauths, expiries, revocations) for dashboards. Returns an unsubscribe function. */
  onAuthEvent(listener: AuthEventListener): () => void;
  /**
   * Handles a client event (`send`) in process; the handler's return value is the ack's `result`.
   * Retries with the same idempotency key reach it once. Returns a function removing the handler.
   *
   * @example
   *   gateway.onClientEvent('chat_message', async ({ userId }, data) => ({ saved: await save(userId, data) }));
   */
  onClientEvent(event: string, handler: ClientEventHandler): () => void;
  /**
   * Verifies an access token as a connection's is verified (signature, `alg`, `iss`, `aud`, `exp`,
   * `nbf`, revocation) and returns who it names; throws the contract's `AUTH_*` TetherError.
   * For an app's own HTTP routes that take the same bearer token as the realtime connection.
   */
  authenticate(token: string): Promise<Principal>;
  /** Every live connection on this node (dashboards). */
  sessions(): PresenceEntry[];
  /** A user's live connections on every node (this node's in single-node mode). */
  presence(userId: string): Promise<PresenceEntry[]>;
  listen(): Promise<{ port: number; url: string }>;
  publish(request: PublishRequest): Promise<PublishResult>;
  /**
   * Up to 1,000 events in order, each with its own answer (`{id, delivered}` or `{id, error}`).
   * Throws VALIDATION_FAILED, publishing nothing, if any event is invalid.
   *
   * @example
   *   const { results } = await gateway.publishBatch(rows.map((r) => ({ event: 'row', data: r, to: { users: [r.owner] } })));
   */
  publishBatch(requests: readonly PublishRequest[]): Promise<PublishBatchResult>;
  /** Closes every live connection of the user (AUTH_REVOKED) and refuses every token issued before now. */
  disconnectUser(userId: string): Promise<number>;
  /**
   * Which device of which addressed user received an event, when, by which path (live, recovery,
   * push), and which acknowledged it; undefined when nothing is recorded under the id.
   */
  deliveries(eventId: string): Promise<DeliveryReport | undefined>;
  /** A user's connection timeline (newest `limit` entries, default 200, oldest first) and live connections. */
  timeline(userId: string, options?: { limit?: number; before?: number }): Promise<TimelineReport>;
  /** Graceful: tells clients to reconnect, drains, then closes HTTP and the store. */
  close(): Promise<void>;
}

/**
 * The gateway's parts, for Tether's own tests and tools (`@tether/server/internals`): not a public
 * API, and changed without notice. Apps use `Gateway`.
 */
export interface GatewayInternals {
  readonly clock: Clock;
  readonly hub: Hub;
  readonly store: OpenStore;
  readonly authenticator: Authenticator;
  /** Absent when the gateway only verifies tokens issued by an app's own backend. */
  readonly signer: TokenSigner | undefined;
  readonly tokens: TokenService | undefined;
  readonly metrics: Metrics;
  readonly app: FastifyInstance;
  /** The event log recovery replays from (store, or Redis Streams in cluster mode). */
  readonly log: EventLog;
  /** The delivery record's store (its own file and thread on SQLite). */
  readonly deliveryStore: DeliveryStore;
}

const INTERNALS = new WeakMap<Gateway, GatewayInternals>();

/** The parts of a gateway made by `createGateway` (Tether's tests and tools only). */
export function gatewayInternals(gateway: Gateway): GatewayInternals {
  const internals = INTERNALS.get(gateway);
  if (internals === undefined) throw new Error('not a gateway made by createGateway');
  return internals;
}

/**
 * Assembles a gateway: each step below takes the settings and parts it needs and nothing else
 * (`compose/*`), in the order they depend on each other — store and keys; the cluster layer and
 * the authenticator over the revocations in force; the log; the hub; the token service; HTTP;
 * publishing with push; the transports.
 */
export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logLevel, options.logDestination);
  const clock = options.clock ?? systemClock;
  const nodeId = randomUUID().slice(0, 8);
  const metrics = createMetrics();

  const store = await openStore(config, logger);
  const keys = await assembleKeys(config, { store, logger, clock });
  const cluster = await assembleCluster(config, {
    nodeId,
    revocations: keys.nodeRevocations,
    reloadRevocations: keys.reloadRevocations,
    metrics: metrics.redis,
    logger,
    clock,
    ...(options.rateLimitRedisTimeoutMs === undefined ? {} : { rateLimitTimeoutMs: options.rateLimitRedisTimeoutMs }),
  });
  // In cluster mode every revocation update is also applied on every other node.
  const revocations = cluster?.revocations ?? keys.nodeRevocations;
  const authenticator = assembleAuthenticator(keys, revocations);
  const { signer } = keys;

  const apiKeys =
    config.apiKeys.length > 0 ? config.apiKeys : [devApiKey(config.dataDir, (detail, msg) => logger.warn(detail, msg))];
  const authEvents = new AuthEventFeed();
  // On SQLite the record has its own file and thread (its writes would hold the event loop);
  // on PostgreSQL it shares the store, where every node of a cluster reads it.
  const recordStore: DeliveryStore & { close?(): Promise<void> } =
    store.kind === 'sqlite'
      ? await openRecordWorker(config.dataDir, sqliteHandle(store.db), logger.child({ component: 'receipts' }))
      : await openDeliveryStore(store.db, store.kind);
  const recorder = new DeliveryRecorder({
    store: recordStore,
    settings: {
      mode: config.deliveryRecord,
      retentionMs: config.deliveryRetentionSeconds * 1000,
      maxRows: config.deliveryMaxRows,
      receiptTimeoutMs: config.receiptTimeoutMs,
      pushAfterMs: config.receiptPushAfterMs,
    },
    nodeId,
    clock,
    logger: logger.child({ component: 'receipts' }),
    metrics: metrics.receipts,
    // Asked only once connections open, when the hub below exists.
    openInFamily: (familyId) => hub.openInFamily(familyId),
  });
  // One observer for the hub and the transports (handshake failures are seen by the transports).
  const observer = combineObservers(
    metrics.observer,
    authEvents.observer(() => clock.now()),
    recorder.observer,
    options.observer,
  );
  const log = await assembleLog(config, { store, cluster, logger, clock, onCommit: metrics.logCommit });
  const hub = createHub({
    config,
    authenticator,
    clock,
    logger: logger.child({ component: 'hub' }),
    observer,
    // Cluster mode: told what each connection reads, so the node subscribes to those streams; and
    // the other nodes, through which publishes, admissions and disconnects go.
    ...(cluster === undefined ? {} : { follower: cluster.follower, broker: cluster.broker }),
    nodeId,
    // Cluster mode: the shared Redis Streams log, so a client recovers on whichever node it reaches.
    log,
    ...(config.deliveryRecord === 'off' ? {} : { deliveries: recorder }),
  });
  await cluster?.attach(hub);
  /** Connections of a user on every node (this node's in single-node mode). */
  const presenceAll = (userId: string): Promise<PresenceEntry[]> =>
    cluster?.presenceAll(userId) ?? Promise.resolve(hub.presence(userId));
  const tokens = assembleTokenService(config, { signer, store, authEvents, revocations, hub, logger, clock });

  const app = await createHttpApp(config, logger, metrics.http);
  let closed = false;
  const admin = createAdminOperations({ hub, store, tokens, revocations, clock, presenceAll });
  const disconnectUser = admin.disconnectUser;
  const devices = await openDeviceStore(store.db, store.kind);
  const { publish, publishBatch, push } = assemblePublishing(config, {
    hub,
    devices,
    presenceAll,
    recorder,
    logger,
    clock,
  });
  recorder.start(push === undefined ? undefined : (userId, event) => push.pushNow(userId, event));
  const deliveries = (eventId: string) => recorder.deliveries(eventId);
  const timeline = async (userId: string, options: { limit?: number; before?: number } = {}) => ({
    ...(await recorder.timelineOf(userId, {
      limit: options.limit ?? 200,
      ...(options.before === undefined ? {} : { before: options.before }),
    })),
    devices: await presenceAll(userId),
  });
  // Cluster mode: buckets in Redis, so the nodes spend one budget (each its own while Redis is down).
  const limiters = cluster?.limiters ?? localLimiters(clock);
  await assembleHttpRoutes(app, config, {
    hub,
    store,
    log,
    cluster,
    keys: keys.keys,
    tokens,
    authenticator,
    limiters,
    devices,
    metrics,
    apiKeys,
    v1: { publish, publishBatch, disconnectUser, presence: presenceAll, users: admin.users, deliveries, timeline },
    logger,
    clock,
  });

  const server = app.server;
  const { sends, transports } = assembleTransports(server, config, {
    hub,
    authenticator,
    observer,
    limiters,
    // Cluster mode: shared in Redis, since a retry may reach another node.
    idempotency: options.idempotency ?? cluster?.idempotency ?? createMemoryIdempotencyStore({ clock }),
    apiKey: apiKeys[0],
    wsAuthTimeoutMs: options.wsAuthTimeoutMs,
    logger,
    clock,
  });
  let ingest: Ingest | undefined;

  const gateway: Gateway = {
    config,
    logger,
    apiKeys,
    users: admin.users,
    onAuthEvent: (listener) => authEvents.on(listener),
    onClientEvent: (event, handler) => sends.on(event, handler),
    authenticate: (token) => authenticator.authenticate(token),
    sessions: () => hub.listSessions(),
    presence: presenceAll,
    async listen() {
      if (options.routes) await options.routes(app, gateway);
      await app.listen({ port: config.port, host: config.host });
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${host}:${address.port}`;
      if (config.pgNotifyUrl !== undefined || config.pgOutboxUrl !== undefined) {
        // Loaded only when configured (it brings pg). In cluster mode one node at a time ingests.
        const { startIngest } = await import('./ingest/start.js');
        ingest = await startIngest(config, {
          cluster: cluster !== undefined,
          publish,
          logger,
          clock,
          metrics: metrics.ingest,
        });
      }
      logger.info(
        { url, port: address.port, node: nodeId, store: store.kind, cluster: cluster !== undefined },
        'gateway listening',
      );
      return { port: address.port, url };
    },
    publish,
    publishBatch,
    disconnectUser,
    deliveries,
    timeline,
    async close() {
      if (closed) return;
      closed = true;
      // From here on HTTP answers 503 SERVER_SHUTDOWN and a new `/ws` upgrade gets server_shutdown.
      app.drain.begin();
      await ingest?.stop();
      await hub.shutdown(config.shutdownGraceMs);
      await Promise.all(transports.map((t) => t.close()));
      await push?.stop();
      // Buffered records and pending pushes are written; those pending are sent by whichever node is up when due.
      await recorder.close();
      await recordStore.close?.();
      await cluster?.close();
      tokens?.stopMaintenance();
      // server.close() waits for every socket, upgraded ones included: those left after a short bound are destroyed.
      const destroyedSockets = await app.drain.closeWithin(() => app.close());
      if (destroyedSockets > 0) logger.info({ node: nodeId, destroyedSockets }, 'sockets left at close destroyed');
      // The store log writes its last appends before the store closes (cluster mode: a no-op).
      await log.close();
      await store.close();
      logger.info({ node: nodeId }, 'gateway closed');
    },
  };
  INTERNALS.set(gateway, {
    clock,
    hub,
    store,
    authenticator,
    signer,
    tokens,
    metrics,
    app,
    log,
    deliveryStore: recordStore,
  });
  return gateway;
}
