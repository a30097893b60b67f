import { z } from 'zod';

/**
 * Every setting Tether reads, in one table: environment variable, CLI flag, parser, default,
 * and the words used when a value is refused. `loadConfig` turns this table into a `Config`.
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, `an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `an integer from ${min} to ${max}`).max(max, `an integer from ${min} to ${max}`));

const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    `a URL starting with ${protocols.map((p) => p + '//').join(' or ')}`,
  );

const origins = list.refine(
  (items) =>
    items.every((o) => {
      if (o === '*') return true;
      try {
        const u = new URL(o);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === o;
      } catch {
        return false;
      }
    }),
  'a comma-separated list of origins like https://app.example.com (scheme://host[:port], no path), or *',
);

/** A Redis Cluster seed node, from `host:port` or `redis://[user:password@]host[:port]`. */
export interface RedisNodeAddress {
  host: string;
  port: number;
  username?: string;
  password?: string;
}

const SEED_NODE_MESSAGE = 'a comma-separated list of seed nodes host:port or redis://[user:password@]host:port';

/** One seed node, or undefined when the text is not one (no path, query or database number allowed). */
export function parseRedisNode(text: string): RedisNodeAddress | undefined {
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  let u: URL;
  try {
    u = new URL(isUrl ? text : `redis://${text}`);
  } catch {
    return undefined;
  }
  const bare = u.pathname === '' || u.pathname === '/';
  if (u.protocol !== 'redis:' || u.hostname === '' || !bare || u.search !== '' || u.hash !== '') return undefined;
  // A bare host:port must name its port; a URL defaults to Redis's.
  if (!isUrl && (u.port === '' || u.username !== '' || u.password !== '')) return undefined;
  if (u.port === '0') return undefined;
  const node: RedisNodeAddress = {
    host: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
  };
  if (u.username !== '') node.username = decodeURIComponent(u.username);
  if (u.password !== '') node.password = decodeURIComponent(u.password);
  return node;
}

const redisNodes = list.pipe(
  z
    .array(
      z.string().transform((v, ctx) => {
        const node = parseRedisNode(v);
        if (node === undefined) ctx.addIssue({ code: 'custom', message: SEED_NODE_MESSAGE });
        return node ?? z.NEVER;
      }),
    )
    .min(1, SEED_NODE_MESSAGE),
);

const hosts = list.refine(
  (items) =>
    items.every((h) => {
      try {
        const u = new URL(`http://${h}`);
        return u.host === h.toLowerCase() && u.username === '' && u.pathname === '/';
      } catch {
        return false;
      }
    }),
  'a comma-separated list of host names like chat.example.com or chat.example.com:8443 (no scheme, no path)',
);

export const SETTINGS = {
  PORT: { flag: 'port', schema: int(0, 65535), default: '3000', help: 'port to listen on (0 picks a free one)' },
  HOST: {
    flag: 'host',
    schema: z.string().min(1, 'a host name or IP address'),
    default: '127.0.0.1',
    help: 'address to listen on',
  },
  DATA_DIR: {
    flag: 'data-dir',
    schema: z.string().min(1, 'a directory path'),
    default: './data',
    help: 'embedded storage (SQLite file, generated dev keys)',
  },
  DATABASE_URL: {
    flag: 'database-url',
    schema: url(['postgres:', 'postgresql:']),
    help: 'use PostgreSQL instead of the embedded store',
  },
  DATABASE_SCHEMA: {
    flag: 'database-schema',
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a PostgreSQL schema name: lowercase letters, digits and _, at most 63'),
    default: 'tether',
    help: "PostgreSQL schema holding Tether's tables (created if missing), so it can share an app's database",
  },
  REDIS_URL: {
    flag: 'redis-url',
    schema: url(['redis:', 'rediss:']),
    help: 'cluster mode: several gateways share state over Redis',
  },
  REDIS_CLUSTER_NODES: {
    flag: 'redis-cluster-nodes',
    schema: redisNodes,
    help: 'cluster mode over a Redis Cluster: comma-separated seed nodes host:port or redis://[user:password@]host:port (instead of REDIS_URL)',
  },
  REDIS_PREFIX: {
    flag: 'redis-prefix',
    schema: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, '1–64 characters of [A-Za-z0-9_.:-]'),
    default: 'tether',
    help: 'prefix of every Redis key and channel (several deployments may share one Redis)',
  },
  PUSH_WEBHOOK_URL: {
    flag: 'push-webhook-url',
    schema: url(['http:', 'https:']),
    help: 'user-addressed events for users with no live connection are POSTed here (push relay)',
  },
  PUSH_MAX_ATTEMPTS: {
    flag: 'push-max-attempts',
    schema: int(1, 20),
    default: '5',
    help: 'push webhook attempts per event (exponential backoff between them)',
  },
  DELIVERY_RECORD: {
    flag: 'delivery-record',
    schema: z.enum(['off', 'users', 'all'], { message: 'off, users or all' }),
    default: 'users',
    help: 'which deliveries and receipts are recorded (GET /v1/events/{id}/deliveries): events addressed to users by id, every event, or none (off also stops the connection timeline)',
  },
  DELIVERY_RETENTION_SECONDS: {
    flag: 'delivery-retention-seconds',
    schema: int(60, 30 * 86400),
    default: '86400',
    help: 'delivery records and connection timelines older than this are deleted',
  },
  DELIVERY_MAX_ROWS: {
    flag: 'delivery-max-rows',
    schema: int(1000, 100_000_000),
    default: '1000000',
    help: 'the delivery record and the timeline each keep at most about this many rows (oldest deleted first)',
  },
  RECEIPT_TIMEOUT_MS: {
    flag: 'receipt-timeout-ms',
    schema: int(100, 3_600_000),
    default: '10000',
    help: 'a recorded delivery without a receipt this long counts as unacknowledged (metric)',
  },
  RECEIPT_PUSH_AFTER_MS: {
    flag: 'receipt-push-after-ms',
    schema: int(100, 86_400_000),
    help: 'with PUSH_WEBHOOK_URL: a user-addressed event no device of the user acknowledged this long after publish is pushed (unset: only users with no live connection are pushed)',
  },
  PG_NOTIFY_URL: {
    flag: 'pg-notify-url',
    schema: url(['postgres:', 'postgresql:']),
    help: 'PostgreSQL to LISTEN on: each NOTIFY payload {event, data, to} is published',
  },
  PG_NOTIFY_CHANNELS: {
    flag: 'pg-notify-channels',
    schema: list,
    default: '',
    help: 'comma-separated NOTIFY channel names to LISTEN on',
  },
  PG_OUTBOX_URL: {
    flag: 'pg-outbox-url',
    schema: url(['postgres:', 'postgresql:']),
    help: "the app's PostgreSQL: Tether creates <DATABASE_SCHEMA>.outbox there and publishes each committed row once, in order",
  },
  PG_OUTBOX_BATCH: {
    flag: 'pg-outbox-batch',
    schema: int(1, 10_000),
    default: '100',
    help: 'outbox rows published per consumer transaction',
  },
  PG_OUTBOX_POLL_MS: {
    flag: 'pg-outbox-poll-ms',
    schema: int(10, 600_000),
    default: '1000',
    help: 'the outbox is read this often even when no NOTIFY woke the consumer (a safety net)',
  },
  HISTORY_MAX_AGE_SECONDS: {
    flag: 'history-max-age-seconds',
    schema: int(0, 365 * 86400),
    default: '86400',
    help: 'event log retention by age, in every stream (0: no age limit)',
  },
  HISTORY_MAX_EVENTS: {
    flag: 'history-max-events',
    schema: int(0, 100_000_000),
    default: '100000',
    help: 'event log retention by count, per stream: each keeps its newest this many (0: no count limit)',
  },
  HISTORY_SPREAD: {
    flag: 'history-spread',
    schema: z
      .enum(['1', '2', '4', '8', '16', '32', '64'], { message: 'one of 1, 2, 4, 8, 16, 32, 64' })
      .transform(Number),
    help: 'sub-streams of the `*` and top-level scope streams (default: 8 on a Redis Cluster, else 1); the same on every node',
  },
  RECOVERY_MAX_EVENTS: {
    flag: 'recovery-max-events',
    schema: int(1, 1_000_000),
    default: '10000',
    help: 'a reconnecting client missing more of its own events than this gets recovered:false',
  },
  IDEMPOTENCY_TTL_SECONDS: {
    flag: 'idempotency-ttl-seconds',
    schema: int(1, 7 * 86400),
    default: '600',
    help: 'how long the result of a client send is kept for retries with the same key',
  },
  CLIENT_EVENTS_URL: {
    flag: 'client-events-url',
    schema: url(['http:', 'https:']),
    help: "client sends without an in-process handler are POSTed here (the app's endpoint)",
  },
  JWT_EXPIRATION_MINUTES: {
    flag: 'jwt-expiration-minutes',
    schema: int(1, 60 * 24 * 30),
    default: '15',
    help: 'access-token lifetime in minutes',
  },
  JWT_EXPIRATION_SECONDS: {
    flag: 'jwt-expiration-seconds',
    schema: int(1, 60 * 60 * 24 * 30),
    help: 'access-token lifetime in seconds (overrides minutes)',
  },
  JWT_REFRESH_EXPIRATION_DAYS: {
    flag: 'jwt-refresh-expiration-days',
    schema: int(1, 3650),
    default: '7',
    help: 'refresh-token lifetime in days',
  },
  JWT_REFRESH_EXPIRATION_SECONDS: {
    flag: 'jwt-refresh-expiration-seconds',
    schema: int(1, 3650 * 86400),
    help: 'refresh-token lifetime in seconds (overrides days; for tests)',
  },
  TOKEN_EXPIRY_WARNING_SECONDS: {
    flag: 'token-expiry-warning-seconds',
    schema: int(0, 86400),
    default: '300',
    help: 'token_expiring is sent this long before exp',
  },
  GUEST_TOKEN_TTL_SECONDS: {
    flag: 'guest-token-ttl-seconds',
    schema: int(1, 30 * 86400),
    default: '3600',
    help: "guest access-token lifetime (renewed in place, same guest id, while the guest's session lives)",
  },
  GUEST_SESSION_TTL_SECONDS: {
    flag: 'guest-session-ttl-seconds',
    schema: int(0, 365 * 86400),
    default: '604800',
    help: 'how long a guest keeps its id: the lifetime of its refresh family from /auth/guest; 0 = no guest refresh tokens',
  },
  JWT_SECRET: {
    flag: 'jwt-secret',
    schema: z.string().min(32, 'a secret of at least 32 characters'),
    secret: true,
    help: 'HS256 secret (sign and verify)',
  },
  JWT_PRIVATE_KEY: {
    flag: 'jwt-private-key',
    schema: z.string().includes('PRIVATE KEY', { message: 'a PEM private key (ES256 or Ed25519)' }),
    secret: true,
    help: 'PEM private key: sign with ES256/EdDSA and serve JWKS',
  },
  JWT_PUBLIC_KEY: {
    flag: 'jwt-public-key',
    schema: z.string().includes('PUBLIC KEY', { message: 'a PEM public key' }),
    help: "PEM public key: verify tokens issued by the app's own backend",
  },
  JWT_JWKS_URL: {
    flag: 'jwt-jwks-url',
    schema: url(['http:', 'https:']),
    help: "JWKS URL: verify tokens issued by the app's own backend",
  },
  JWT_ISSUER: {
    flag: 'jwt-issuer',
    schema: z.string().min(1, 'a non-empty issuer'),
    default: 'tether',
    help: 'iss claim issued and required',
  },
  JWT_AUDIENCE: {
    flag: 'jwt-audience',
    schema: z.string().min(1, 'a non-empty audience'),
    default: 'tether',
    help: 'aud claim issued and required',
  },
  JWT_ALGORITHMS: {
    flag: 'jwt-algorithms',
    schema: list.pipe(
      z
        .array(
          z.enum(['HS256', 'HS384', 'HS512', 'ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'], {
            message: 'a comma-separated list of HS256, HS384, HS512, ES256, ES384, RS256, PS256, EdDSA',
          }),
        )
        .min(1, 'at least one algorithm'),
    ),
    help: 'algorithms accepted (default: the one the key implies)',
  },
  API_KEYS: {
    flag: 'api-keys',
    schema: list.pipe(
      z.array(z.string().min(16, 'comma-separated keys of at least 16 characters')).min(1, 'at least one key'),
    ),
    secret: true,
    help: 'comma-separated keys for the server-to-server API (dev: generated and printed)',
  },
  ALLOWED_ORIGINS: {
    flag: 'allowed-origins',
    schema: origins,
    help: 'browser origins allowed for CORS and WebSocket upgrades (default: same origin)',
  },
  PUBLIC_HOSTS: {
    flag: 'public-hosts',
    schema: hosts,
    help: 'host names browsers reach the gateway by, for the same-origin check when ALLOWED_ORIGINS is empty (default: localhost, 127.0.0.1, [::1] and HOST)',
  },
  ALLOW_QUERY_TOKEN: {
    flag: 'allow-query-token',
    schema: bool,
    default: 'false',
    help: 'accept ?token= on the WebSocket URL',
  },
  PING_INTERVAL_MS: {
    flag: 'ping-interval-ms',
    schema: int(100, 600_000),
    default: '25000',
    help: 'heartbeat interval',
  },
  PING_TIMEOUT_MS: { flag: 'ping-timeout-ms', schema: int(100, 600_000), default: '20000', help: 'heartbeat timeout' },
  LOG_LEVEL: {
    flag: 'log-level',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      message: 'one of fatal, error, warn, info, debug, trace, silent',
    }),
    default: 'info',
    help: 'log level',
  },
  AUTH_LOGIN_ENABLED: {
    flag: 'auth-login-enabled',
    schema: bool,
    default: 'true',
    help: "serve the built-in /auth/login, and /auth/refresh and /auth/logout for users' sessions",
  },
  GUESTS_ENABLED: {
    flag: 'guests-enabled',
    schema: bool,
    default: 'true',
    help: 'serve POST /auth/guest, and /auth/refresh and /auth/logout for guest sessions',
  },
  GUEST_CHANNELS: {
    flag: 'guest-channels',
    schema: list,
    default: '',
    help: 'channel patterns guests may join (e.g. support:*); none by default',
  },
  REFRESH_REUSE_GRACE_SECONDS: {
    flag: 'refresh-reuse-grace-seconds',
    schema: int(0, 60),
    default: '2',
    help: 'concurrent refreshes with one token inside this window get the same new pair',
  },
  MAX_CONNECTIONS_PER_USER: {
    flag: 'max-connections-per-user',
    schema: int(1, 100_000),
    default: '20',
    help: 'live connections one user may hold',
  },
  MAX_FRAME_BYTES: {
    flag: 'max-frame-bytes',
    schema: int(256, 16 * 1024 * 1024),
    default: '65536',
    help: 'largest inbound frame',
  },
  MAX_JSON_DEPTH: {
    flag: 'max-json-depth',
    schema: int(1, 1000),
    default: '64',
    help: 'deepest nesting of objects/arrays in any JSON the gateway reads (HTTP bodies, frames); deeper is VALIDATION_FAILED',
  },
  HTTP_REQUEST_TIMEOUT_MS: {
    flag: 'http-request-timeout-ms',
    schema: int(100, 600_000),
    default: '30000',
    help: 'an HTTP request (head and body) must arrive within this; a slower one is answered 408 REQUEST_TIMEOUT and closed',
  },
  INBOUND_RATE_PER_SECOND: {
    flag: 'inbound-rate-per-second',
    schema: int(1, 1_000_000),
    default: '50',
    help: 'inbound messages per second per connection before warning',
  },
  INBOUND_BURST: {
    flag: 'inbound-burst',
    schema: int(1, 1_000_000),
    default: '100',
    help: 'inbound burst per connection',
  },
  CONNECT_RATE_PER_IP: {
    flag: 'connect-rate-per-ip',
    schema: int(1, 10_000_000),
    default: '200',
    help: 'new connections per second per client IP',
  },
  AUTH_RATE_PER_MINUTE: {
    flag: 'auth-rate-per-minute',
    schema: int(1, 10_000_000),
    default: '30',
    help: 'login/refresh attempts per minute per IP; wrong logins per minute per account',
  },
  LOGIN_FREE_FAILURES: {
    flag: 'login-free-failures',
    schema: int(1, 1000),
    default: '5',
    help: 'wrong logins per account and address before each further one doubles the wait (from 1 s)',
  },
  LOGIN_BACKOFF_MAX_SECONDS: {
    flag: 'login-backoff-max-seconds',
    schema: int(1, 86_400),
    default: '900',
    help: 'longest wait the login backoff imposes on one account and address',
  },
  REAUTH_RATE_PER_MINUTE: {
    flag: 'reauth-rate-per-minute',
    schema: int(1, 10_000_000),
    default: '20',
    help: 'reauth attempts per minute per connection',
  },
  SHUTDOWN_GRACE_MS: {
    flag: 'shutdown-grace-ms',
    schema: int(0, 600_000),
    default: '5000',
    help: 'on shutdown, clients are told to reconnect within this window',
  },
  AUDIT_RETENTION_DAYS: {
    flag: 'audit-retention-days',
    schema: int(1, 3650),
    default: '90',
    help: 'auth audit-log rows older than this are purged',
  },
  TRUST_PROXY: { flag: 'trust-proxy', schema: bool, default: 'false', help: 'take client IPs from X-Forwarded-For' },
  COOKIE_SECURE: {
    flag: 'cookie-secure',
    schema: z.enum(['auto', 'true', 'false'], { message: 'auto, true or false' }),
    default: 'auto',
    help: 'Secure flag on the refresh cookie (auto: when served over https)',
  },
} as const satisfies Record<string, SettingSpec>;

export interface SettingSpec {
  flag: string;
  schema: z.ZodType;
  default?: string;
  help: string;
  secret?: boolean;
}

export type SettingName = keyof typeof SETTINGS;
