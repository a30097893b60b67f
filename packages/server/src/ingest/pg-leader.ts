import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Clock, TimerHandle } from '../util/clock.js';
import { backoffDelayMs, type BackoffPolicy } from '../util/failure-backoff.js';
import type { Logger } from '../util/logger.js';

/** A PostgreSQL advisory lock key: the two-`int4` form of `pg_advisory_lock`. */
export type LockKey = readonly [number, number];

/** Reconnects after a lost session: 250 ms doubling, at most 5 s. */
const RECONNECT: BackoffPolicy = { freeFailures: 0, baseMs: 250, maxMs: 5_000, forgetAfterMs: Infinity };
/** A leader whose session does not answer a check within this long steps down (see HEARTBEAT below). */
const HEARTBEAT_TIMEOUT_MS = 5_000;
/**
 * Server-side TCP keepalive of the session, so PostgreSQL itself notices a leader whose host died or
 * was cut off (no FIN ever arrives) after about 10 + 3 × 5 = 25 s, and releases its lock. The leader
 * gives up its role sooner (HEARTBEAT_TIMEOUT_MS), so two nodes never both act for long.
 */
const KEEPALIVE = 'SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3';
const LOCK_NOT_AVAILABLE = '55P03';

/** A stable advisory lock key for `name` (the same on every node of a deployment). */
export function advisoryLockKey(name: string): LockKey {
  const digest = createHash('sha256').update(`tether:${name}`).digest();
  return [digest.readInt32BE(0), digest.readInt32BE(4)];
}

export type LeaderState = 'connecting' | 'waiting' | 'leading' | 'stopped';

export interface PgLeaderOptions {
  url: string;
  /**
   * The advisory lock that makes one session of all the nodes the leader. Undefined: no election —
   * the session leads as soon as it is connected (a single node).
   */
  lock: LockKey | undefined;
  /** What the session is for, in log lines ("NOTIFY listener", "outbox consumer"). */
  name: string;
  /** The session's `application_name`, so operators can find it in `pg_stat_activity`. */
  applicationName: string;
  logger: Logger;
  clock: Clock;
  /** How long one lock attempt waits (`lock_timeout`), and how often a leader checks its session. */
  attemptMs?: number;
  /**
   * This node leads, on `session`, which holds the lock for as long as it lives: LISTEN on it here.
   * A rejection drops the session (and with it the lock) and starts over.
   */
  onElected(session: pg.Client): Promise<void>;
  /** This node no longer leads (its session was lost, or `stop`): stop acting at once. */
  onDeposed(reason: string): void;
}

export interface PgLeader {
  /** Starts connecting and campaigning in the background; never throws. */
  start(): void;
  /** Ends the session (PostgreSQL then releases the lock, and a waiting node takes over at once). */
  stop(): Promise<void>;
  readonly state: LeaderState;
}

/**
 * Leadership over PostgreSQL: each node keeps one dedicated session and waits on a session-level
 * advisory lock; the session that holds it leads. PostgreSQL releases the lock when that session
 * ends — a node stopped, killed (its kernel closes the socket) or cut off (TCP keepalive, above) —
 * and the next waiting session gets it immediately. Waiting is `pg_advisory_lock` bounded by
 * `lock_timeout`, repeated: no polling gap at takeover, and no backend left waiting long after its
 * node gave up.
 *
 *   node A  ── pg_advisory_lock ──► granted ─► onElected(session A) … (A dies: socket closed)
 *   node B  ── pg_advisory_lock ──► waits ─────────────────────────────► granted ─► onElected(B)
 *
 * @example
 *   const leader = createPgLeader({ url, lock: advisoryLockKey('notify:tether'), name: 'NOTIFY listener',
 *     applicationName: 'tether-notify', logger, clock,
 *     onElected: async (session) => { await session.query('LISTEN tickets'); },
 *     onDeposed: () => undefined });
 *   leader.start();
 */
export function createPgLeader(options: PgLeaderOptions): PgLeader {
  const { logger, clock, name } = options;
  const attemptMs = options.attemptMs ?? 1_000;
  const component = 'pg-leader';
  let state: LeaderState = 'connecting';
  let session: pg.Client | undefined;
  let failures = 0;
  let retry: TimerHandle | undefined;
  let heartbeat: TimerHandle | undefined;

  function transition(next: LeaderState, reason: string): void {
    const previous = state;
    if (previous === next) return;
    state = next;
    logger.info({ component, role: name, previous, current: next, reason }, `${name}: ${next}`);
  }

  function scheduleReconnect(): void {
    if (state === 'stopped' || retry !== undefined) return;
    const delay = backoffDelayMs(failures, RECONNECT);
    failures++;
    retry = clock.setTimeout(() => {
      retry = undefined;
      void open();
    }, delay);
    retry.unref?.();
  }

  /** The session ended or misbehaved: drop it (and the lock with it), step down, start over. */
  function lost(client: pg.Client, why: string, err?: Error): void {
    if (session !== client) return;
    session = undefined;
    stopHeartbeat();
    client.removeAllListeners();
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    const wasLeading = state === 'leading';
    if (state === 'stopped') return;
    transition('connecting', why);
    if (wasLeading) options.onDeposed(why);
    logger.warn({ component, role: name, why, err: err?.message }, `${name} lost its connection; reconnecting`);
    scheduleReconnect();
  }

  async function open(): Promise<void> {
    if (state === 'stopped') return;
    const client = new pg.Client({
      connectionString: options.url,
      application_name: options.applicationName,
      keepAlive: true,
    });
    session = client;
    client.on('error', (err) => lost(client, 'error', err));
    client.on('end', () => lost(client, 'end'));
    try {
      await client.connect();
      await client.query(`${KEEPALIVE}; SET lock_timeout = ${Math.max(1, Math.round(attemptMs))}`);
      if (options.lock !== undefined) {
        transition('waiting', 'connected');
        while (!(await tryLock(client, options.lock))) if (session !== client) return;
      }
      if (session !== client) return;
      failures = 0;
      transition('leading', options.lock === undefined ? 'connected' : 'lock acquired');
      await options.onElected(client);
      if (session === client) startHeartbeat(client);
    } catch (err) {
      lost(client, state === 'leading' ? 'setup failed' : 'connect', err as Error);
    }
  }

  /** One bounded wait for the lock: true when granted, false when `lock_timeout` ran out first. */
  async function tryLock(client: pg.Client, key: LockKey): Promise<boolean> {
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [key[0], key[1]]);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === LOCK_NOT_AVAILABLE) return false;
      throw err;
    }
  }

  /**
   * HEARTBEAT: a leader checks its session every `attemptMs`. A session that does not answer within
   * HEARTBEAT_TIMEOUT_MS may already have lost its lock to another node (PostgreSQL dropped it),
   * so this node steps down rather than act beside the new leader.
   */
  function startHeartbeat(client: pg.Client): void {
    heartbeat = clock.setTimeout(() => {
      heartbeat = undefined;
      let answered = false;
      const deadline = clock.setTimeout(() => {
        if (!answered) lost(client, 'heartbeat timeout');
      }, HEARTBEAT_TIMEOUT_MS);
      deadline.unref?.();
      client.query('SELECT 1').then(
        () => {
          answered = true;
          clock.clearTimeout(deadline);
          if (session === client) startHeartbeat(client);
        },
        (err: Error) => {
          answered = true;
          clock.clearTimeout(deadline);
          lost(client, 'heartbeat', err);
        },
      );
    }, attemptMs);
    heartbeat.unref?.();
  }

  function stopHeartbeat(): void {
    if (heartbeat !== undefined) clock.clearTimeout(heartbeat);
    heartbeat = undefined;
  }

  return {
    start() {
      void open();
    },
    async stop() {
      if (state === 'stopped') return;
      const wasLeading = state === 'leading';
      transition('stopped', 'stop');
      if (retry !== undefined) clock.clearTimeout(retry);
      retry = undefined;
      stopHeartbeat();
      if (wasLeading) options.onDeposed('stopped');
      const client = session;
      session = undefined;
      if (client === undefined) return;
      client.removeAllListeners();
      client.on('error', () => undefined);
      // Ending the session releases the lock: a node waiting for it leads at once.
      await client.end().catch(() => undefined);
    },
    get state() {
      return state;
    },
  };
}
