import type { z } from 'zod';
import { SETTINGS, type RedisNodeAddress, type SettingName } from './schema.js';

type Parsed = {
  [K in SettingName]: (typeof SETTINGS)[K] extends { default: string }
    ? z.output<(typeof SETTINGS)[K]['schema']>
    : z.output<(typeof SETTINGS)[K]['schema']> | undefined;
};

/** The validated configuration. Built only by `loadConfig`, so every field has passed its schema. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  /** PostgreSQL: the schema Tether's tables live in (its connections' search_path). */
  databaseSchema: string;
  redisUrl: string | undefined;
  /** Seed nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`); never set together with `redisUrl`. */
  redisClusterNodes: RedisNodeAddress[] | undefined;
  /** Prefix of every Redis key and pub/sub channel in cluster mode. */
  redisPrefix: string;
  pushWebhookUrl: string | undefined;
  pushMaxAttempts: number;
  /** Which deliveries are recorded (`DELIVERY_RECORD`); `off` also stops the connection timeline. */
  deliveryRecord: 'off' | 'users' | 'all';
  deliveryRetentionSeconds: number;
  deliveryMaxRows: number;
  receiptTimeoutMs: number;
  /** Push on a missing receipt after this many ms (with a push webhook); undefined: off. */
  receiptPushAfterMs: number | undefined;
  pgNotifyUrl: string | undefined;
  pgNotifyChannels: string[];
  /** The database holding the transactional outbox (`PG_OUTBOX_URL`); its table lives in `databaseSchema`. */
  pgOutboxUrl: string | undefined;
  pgOutboxBatch: number;
  pgOutboxPollMs: number;
  /** Event log retention (recovery): by age (s) and by count; 0 = no limit of that kind. */
  historyMaxAgeSeconds: number;
  historyMaxEvents: number;
  /** Sub-streams of the `*` and top-level scope streams (`HISTORY_SPREAD`); undefined: by backend. */
  historySpread: number | undefined;
  /** A reconnect missing more events than this gets `recovered: false`. */
  recoveryMaxEvents: number;
  idempotencyTtlSeconds: number;
  clientEventsUrl: string | undefined;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  tokenExpiryWarningSeconds: number;
  guestTokenTtlSeconds: number;
  /** How long a guest session (its refresh family, hence its guest id) lives; 0: guests get no refresh token. */
  guestSessionTtlSeconds: number;
  jwt: {
    secret: string | undefined;
    privateKey: string | undefined;
    publicKey: string | undefined;
    jwksUrl: string | undefined;
    issuer: string;
    audience: string;
    algorithms: string[] | undefined;
  };
  /** Empty when none were configured: the gateway then generates one and prints it. */
  apiKeys: string[];
  /** Empty means same origin only. `*` allows every origin. */
  allowedOrigins: string[];
  /** Host names that count as this gateway's own for the same-origin check (DNS rebinding defence). */
  publicHosts: string[];
  allowQueryToken: boolean;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  loginEnabled: boolean;
  guestsEnabled: boolean;
  guestChannels: string[];
  refreshReuseGraceSeconds: number;
  maxConnectionsPerUser: number;
  maxFrameBytes: number;
  /** Deepest nesting of any JSON document read (HTTP body, frame); see util/json-depth.ts. */
  maxJsonDepth: number;
  /** Time allowed for an HTTP request's head and body to arrive. */
  httpRequestTimeoutMs: number;
  inboundRatePerSecond: number;
  inboundBurst: number;
  connectRatePerIp: number;
  authRatePerMinute: number;
  loginFreeFailures: number;
  loginBackoffMaxSeconds: number;
  reauthRatePerMinute: number;
  shutdownGraceMs: number;
  auditRetentionDays: number;
  trustProxy: boolean;
  cookieSecure: 'auto' | 'true' | 'false';
}

/** Raised for an invalid setting; its message is the one line printed before exiting. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    detail: string,
  ) {
    super(`Invalid configuration: ${setting} ${detail}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses settings from an environment-like record (process.env, or CLI flags merged over it).
 * Unknown keys are ignored. Throws `ConfigError` naming the first invalid setting.
 *
 * @example
 *   const config = loadConfig({ ...process.env, PORT: '0', JWT_EXPIRATION_SECONDS: '5' });
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const raw: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    const given = env[name];
    const value = given === undefined || given === '' ? ('default' in spec ? spec.default : undefined) : given;
    if (value === undefined) {
      raw[name] = undefined;
      continue;
    }
    const result = spec.schema.safeParse(value);
    if (!result.success) {
      const accepts = result.error.issues[0]?.message ?? 'a valid value';
      const shown = 'secret' in spec && spec.secret ? '' : ` (got ${JSON.stringify(truncate(value))})`;
      throw new ConfigError(name, `must be ${accepts}${shown}`);
    }
    raw[name] = result.data;
  }
  const s = raw as Parsed;

  if (s.JWT_PRIVATE_KEY && s.JWT_SECRET) {
    throw new ConfigError('JWT_PRIVATE_KEY', 'must not be set together with JWT_SECRET (choose one signing key)');
  }
  const externalOnly = s.JWT_JWKS_URL !== undefined || s.JWT_PUBLIC_KEY !== undefined;
  if (
    externalOnly &&
    s.JWT_SECRET === undefined &&
    s.JWT_PRIVATE_KEY === undefined &&
    env.AUTH_LOGIN_ENABLED === 'true'
  ) {
    throw new ConfigError(
      'AUTH_LOGIN_ENABLED',
      'must be false when only JWT_PUBLIC_KEY or JWT_JWKS_URL is set (no key to sign with)',
    );
  }

  if (s.REDIS_URL !== undefined && s.REDIS_CLUSTER_NODES !== undefined) {
    throw new ConfigError(
      'REDIS_CLUSTER_NODES',
      'must not be set together with REDIS_URL (choose one standalone Redis or one Redis Cluster)',
    );
  }

  if (s.RECEIPT_PUSH_AFTER_MS !== undefined && s.PUSH_WEBHOOK_URL === undefined) {
    throw new ConfigError('RECEIPT_PUSH_AFTER_MS', 'needs PUSH_WEBHOOK_URL (pushes go to the push webhook)');
  }
  if (s.RECEIPT_PUSH_AFTER_MS !== undefined && s.DELIVERY_RECORD === 'off') {
    throw new ConfigError(
      'RECEIPT_PUSH_AFTER_MS',
      'needs DELIVERY_RECORD users or all (receipts are read from the delivery record)',
    );
  }

  if (s.PG_NOTIFY_URL !== undefined && s.PG_NOTIFY_CHANNELS.length === 0) {
    throw new ConfigError('PG_NOTIFY_CHANNELS', 'must name at least one channel when PG_NOTIFY_URL is set');
  }

  return {
    port: s.PORT,
    host: s.HOST,
    dataDir: s.DATA_DIR,
    databaseUrl: s.DATABASE_URL,
    databaseSchema: s.DATABASE_SCHEMA,
    redisUrl: s.REDIS_URL,
    redisClusterNodes: s.REDIS_CLUSTER_NODES,
    redisPrefix: s.REDIS_PREFIX,
    pushWebhookUrl: s.PUSH_WEBHOOK_URL,
    pushMaxAttempts: s.PUSH_MAX_ATTEMPTS,
    deliveryRecord: s.DELIVERY_RECORD,
    deliveryRetentionSeconds: s.DELIVERY_RETENTION_SECONDS,
    deliveryMaxRows: s.DELIVERY_MAX_ROWS,
    receiptTimeoutMs: s.RECEIPT_TIMEOUT_MS,
    receiptPushAfterMs: s.RECEIPT_PUSH_AFTER_MS,
    pgNotifyUrl: s.PG_NOTIFY_URL,
    pgNotifyChannels: s.PG_NOTIFY_CHANNELS,
    pgOutboxUrl: s.PG_OUTBOX_URL,
    pgOutboxBatch: s.PG_OUTBOX_BATCH,
    pgOutboxPollMs: s.PG_OUTBOX_POLL_MS,
    historyMaxAgeSeconds: s.HISTORY_MAX_AGE_SECONDS,
    historyMaxEvents: s.HISTORY_MAX_EVENTS,
    historySpread: s.HISTORY_SPREAD,
    recoveryMaxEvents: s.RECOVERY_MAX_EVENTS,
    idempotencyTtlSeconds: s.IDEMPOTENCY_TTL_SECONDS,
    clientEventsUrl: s.CLIENT_EVENTS_URL,
    accessTtlSeconds: s.JWT_EXPIRATION_SECONDS ?? s.JWT_EXPIRATION_MINUTES * 60,
    refreshTtlSeconds: s.JWT_REFRESH_EXPIRATION_SECONDS ?? s.JWT_REFRESH_EXPIRATION_DAYS * 86400,
    tokenExpiryWarningSeconds: s.TOKEN_EXPIRY_WARNING_SECONDS,
    guestTokenTtlSeconds: s.GUEST_TOKEN_TTL_SECONDS,
    guestSessionTtlSeconds: s.GUEST_SESSION_TTL_SECONDS,
    jwt: {
      secret: s.JWT_SECRET,
      privateKey: s.JWT_PRIVATE_KEY,
      publicKey: s.JWT_PUBLIC_KEY,
      jwksUrl: s.JWT_JWKS_URL,
      issuer: s.JWT_ISSUER,
      audience: s.JWT_AUDIENCE,
      algorithms: s.JWT_ALGORITHMS,
    },
    apiKeys: s.API_KEYS ?? [],
    allowedOrigins: s.ALLOWED_ORIGINS ?? [],
    publicHosts: s.PUBLIC_HOSTS ?? defaultPublicHosts(s.HOST),
    allowQueryToken: s.ALLOW_QUERY_TOKEN,
    pingIntervalMs: s.PING_INTERVAL_MS,
    pingTimeoutMs: s.PING_TIMEOUT_MS,
    logLevel: s.LOG_LEVEL,
    // With only an external verifier there is nothing to sign with: the built-in login is off.
    loginEnabled: externalOnly && !s.JWT_SECRET && !s.JWT_PRIVATE_KEY ? false : s.AUTH_LOGIN_ENABLED,
    guestsEnabled: externalOnly && !s.JWT_SECRET && !s.JWT_PRIVATE_KEY ? false : s.GUESTS_ENABLED,
    guestChannels: s.GUEST_CHANNELS,
    refreshReuseGraceSeconds: s.REFRESH_REUSE_GRACE_SECONDS,
    maxConnectionsPerUser: s.MAX_CONNECTIONS_PER_USER,
    maxFrameBytes: s.MAX_FRAME_BYTES,
    maxJsonDepth: s.MAX_JSON_DEPTH,
    httpRequestTimeoutMs: s.HTTP_REQUEST_TIMEOUT_MS,
    inboundRatePerSecond: s.INBOUND_RATE_PER_SECOND,
    inboundBurst: s.INBOUND_BURST,
    connectRatePerIp: s.CONNECT_RATE_PER_IP,
    authRatePerMinute: s.AUTH_RATE_PER_MINUTE,
    loginFreeFailures: s.LOGIN_FREE_FAILURES,
    loginBackoffMaxSeconds: s.LOGIN_BACKOFF_MAX_SECONDS,
    reauthRatePerMinute: s.REAUTH_RATE_PER_MINUTE,
    shutdownGraceMs: s.SHUTDOWN_GRACE_MS,
    auditRetentionDays: s.AUDIT_RETENTION_DAYS,
    trustProxy: s.TRUST_PROXY,
    cookieSecure: s.COOKIE_SECURE,
  };
}

/** A config for tests and embedding: defaults, then the given overrides. */
export function configFrom(overrides: Partial<Record<SettingName, string>> = {}): Config {
  return loadConfig(overrides);
}

function truncate(v: string): string {
  return v.length > 40 ? v.slice(0, 37) + '...' : v;
}

/** `localhost`, `127.0.0.1`, `[::1]`, and `HOST` unless it is a wildcard address. */
export function defaultPublicHosts(listenHost: string): string[] {
  const hosts = ['localhost', '127.0.0.1', '[::1]'];
  const own = listenHost.includes(':') && !listenHost.startsWith('[') ? `[${listenHost}]` : listenHost;
  if (!['0.0.0.0', '[::]', '[::0]', ''].includes(own) && !hosts.includes(own.toLowerCase()))
    hosts.push(own.toLowerCase());
  return hosts;
}
