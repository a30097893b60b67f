import { TetherError, type PublishRequest, type PublishResult } from '@tether/protocol';
import { sql, type Kysely } from 'kysely';
import type { IngestMetrics } from '../observability/metrics.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { backoffDelayMs, type BackoffPolicy } from '../util/failure-backoff.js';
import type { Logger } from '../util/logger.js';
import { openOutboxDb } from './outbox-db.js';
import { outboxChannel } from './outbox-schema.js';
import { advisoryLockKey, createPgLeader } from './pg-leader.js';
import { quoteIdentifier } from './pg-notify.js';

/** The consumer's leadership session shows under this `application_name`. */
export const OUTBOX_APPLICATION_NAME = 'tether-outbox';
/** After a failed batch (the log or the outbox database unavailable): 250 ms doubling, at most 10 s. */
const RETRY: BackoffPolicy = { freeFailures: 0, baseMs: 250, maxMs: 10_000, forgetAfterMs: Infinity };

/** One outbox row as the consumer reads it. */
export interface OutboxRow {
  id: number;
  event: string;
  data: Record<string, unknown>;
  recipients: Record<string, unknown>;
  event_id: string | null;
  /** `created_at` in µs since the Unix epoch (part of the row's event id). */
  created_us: number;
  /** Seconds since `created_at`, by the database's clock. */
  age_s: number;
}

/**
 * The event id of a row: the app's own `event_id`, else `outbox-<id>-<created_at µs, base 36>`.
 * The same for every attempt, so a row published twice (a consumer died before deleting it) is
 * appended to the log once. `created_at` is in it so that ids restarting (a restored database,
 * `TRUNCATE … RESTART IDENTITY`) never match events the log still remembers.
 */
export function outboxEventId(row: Pick<OutboxRow, 'id' | 'event_id' | 'created_us'>): string {
  return row.event_id ?? `outbox-${row.id}-${row.created_us.toString(36)}`;
}

/** The publish a row stands for (the hub validates it like any other). */
export function outboxRequest(row: OutboxRow): PublishRequest {
  return {
    event: row.event,
    data: row.data,
    to: row.recipients as PublishRequest['to'],
    id: outboxEventId(row),
  };
}

export interface OutboxDeps {
  /** The database holding the outbox (`PG_OUTBOX_URL`). */
  url: string;
  /** The schema of the outbox table (`DATABASE_SCHEMA`). */
  schema: string;
  batchSize: number;
  pollMs: number;
  publish(request: PublishRequest): Promise<PublishResult>;
  logger: Logger;
  clock: Clock;
  metrics?: IngestMetrics;
}

export interface OutboxIngest {
  /** Creates the outbox if needed (throws if it cannot), then campaigns and consumes in the background. */
  start(): Promise<void>;
  /** Stops the batch in hand after its current row and commits it, then gives up leadership and closes. */
  stop(): Promise<void>;
  /** Whether this node is the one consuming. */
  leading(): boolean;
}

type BatchOutcome = 'drained' | 'more' | 'failed';

/**
 * The transactional outbox consumer. One node at a time (`pg-leader.ts`, lock per schema) reads
 * the outbox in id order, in batches, each in one transaction:
 *
 *   BEGIN
 *   SELECT … FROM outbox ORDER BY id LIMIT n FOR UPDATE   -- committed rows only
 *   publish row 1, row 2, …  (one after the other, each with its fixed event id)
 *   DELETE those rows (invalid ones are moved to outbox_rejected)
 *   COMMIT
 *
 * No high-water mark is kept: a row that commits late with a lower id is simply the first row of a
 * later batch, never skipped. A consumer that dies before COMMIT leaves its rows in place; the next
 * leader publishes them again with the same ids and the event log appends each id once (within its
 * memory of ids: docs/outbox.md). `FOR UPDATE` makes even two consumers (a leader whose lock session
 * is gone but which has not noticed yet) take turns instead of publishing the same rows side by side.
 *
 * Rows are published one after another, each awaited: a later row never enters the log before an
 * earlier one, even when a publish fails part-way through a batch (the batch stops there; what was
 * published is deleted; the rest waits for the retry).
 *
 * Wakes on the NOTIFY the outbox trigger sends at each commit, and polls every `pollMs` anyway.
 *
 * @example
 *   const outbox = createOutboxIngest({ url, schema: 'tether', batchSize: 200, pollMs: 1000, publish, logger, clock });
 *   await outbox.start();
 *   // app: BEGIN; …; SELECT tether.publish('ticket_created', '{"id":"t1"}', '{"users":["u1"]}'); COMMIT;
 */
export function createOutboxIngest(deps: OutboxDeps): OutboxIngest {
  const { logger, clock, metrics } = deps;
  const component = 'outbox';
  let db: Kysely<unknown> | undefined;
  let leading = false;
  let stopped = false;
  /** Advances on every election and deposition: a batch of an earlier term stops at its next row. */
  let term = 0;
  let running: Promise<void> | undefined;
  let again = false;
  let backingOff = false;
  let failures = 0;
  let timer: TimerHandle | undefined;

  function schedule(ms: number): void {
    cancelTimer();
    timer = clock.setTimeout(() => {
      timer = undefined;
      wake(true);
    }, ms);
    timer.unref?.();
  }

  function cancelTimer(): void {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
  }

  /** A NOTIFY (or the poll timer) says there may be rows; a NOTIFY does not cut a retry backoff short. */
  function wake(fromTimer: boolean): void {
    if (!leading || (backingOff && !fromTimer)) return;
    if (running !== undefined) {
      again = true;
      return;
    }
    cancelTimer();
    backingOff = false;
    const myTerm = term;
    running = drain(myTerm).finally(() => {
      running = undefined;
      // Re-elected while an earlier term's batch was finishing: start this term's reading now.
      if (leading && term !== myTerm) wake(true);
    });
  }

  async function drain(myTerm: number): Promise<void> {
    for (;;) {
      again = false;
      const outcome = await consumeBatch(myTerm);
      if (myTerm !== term) return;
      if (outcome === 'failed') {
        backingOff = true;
        schedule(backoffDelayMs(failures++, RETRY));
        return;
      }
      failures = 0;
      if (outcome === 'drained' && !again) {
        schedule(deps.pollMs);
        return;
      }
    }
  }

  /**
   * Rows this node published whose batch then failed to commit (the database went away), by row id,
   * with their event ids. Their publish resolved, so they are in the log: the retry deletes them
   * without publishing again. (Publishing again would be harmless — the log keeps an id once — but
   * in cluster mode a publish waits up to 2 s for a copy of its event that a duplicate never gets.)
   */
  const appended = new Map<number, string>();

  /** One batch in one transaction; never throws. */
  async function consumeBatch(myTerm: number): Promise<BatchOutcome> {
    const handle = db;
    if (handle === undefined) return 'failed';
    const done: OutboxRow[] = [];
    /** Per row of `done`: seconds from its insert to its publish (reported once the batch commits). */
    const lags: number[] = [];
    try {
      const outcome = await handle.transaction().execute(async (trx) => {
        const { rows } = await sql<OutboxRow>`
          SELECT id, event, data, recipients, event_id,
                 (extract(epoch FROM created_at) * 1000000)::bigint AS created_us,
                 extract(epoch FROM clock_timestamp() - created_at)::float8 AS age_s
          FROM outbox ORDER BY id LIMIT ${deps.batchSize} FOR UPDATE`.execute(trx);
        metrics?.outboxLag(rows[0]?.age_s ?? 0);
        // `age_s` is by the database's clock at the read; the time since is by ours (no skew between them).
        const readAt = performance.now();
        let outcome: BatchOutcome = rows.length < deps.batchSize ? 'drained' : 'more';
        for (const row of rows) {
          // Deposed: stop here; the next leader starts at the first row this batch does not delete.
          if (myTerm !== term) {
            outcome = 'drained';
            break;
          }
          try {
            if (appended.get(row.id) !== outboxEventId(row)) await deps.publish(outboxRequest(row));
            done.push(row);
            lags.push(row.age_s + (performance.now() - readAt) / 1000);
          } catch (err) {
            if (err instanceof TetherError && !err.retryable) {
              await setAside(trx, row, err.message);
              continue;
            }
            // The log is unavailable (Redis down, store failing): this row and all after it wait.
            metrics?.outboxFailed('publish');
            const code = err instanceof TetherError ? err.code : 'INTERNAL';
            logger.warn(
              { component, row: row.id, code, reason: (err as Error).message },
              'outbox row not published; retrying later',
            );
            outcome = 'failed';
            break;
          }
        }
        if (done.length > 0)
          await sql`DELETE FROM outbox WHERE id = ANY(${done.map((row) => row.id)}::bigint[])`.execute(trx);
        return outcome;
      });
      for (const row of done) appended.delete(row.id);
      // Counted once committed: the rows of a batch rolled back are still in the outbox.
      if (done.length > 0) metrics?.outboxPublished(done.length);
      for (const lag of lags) metrics?.outboxInsertToPublish(lag);
      return outcome;
    } catch (err) {
      // Bounded: the rows of the last few failed batches at most (a row is added once per failure).
      if (appended.size > 10 * deps.batchSize) appended.clear();
      for (const row of done) appended.set(row.id, outboxEventId(row));
      metrics?.outboxFailed('database');
      logger.warn({ component, reason: (err as Error).message }, 'outbox batch failed; retrying later');
      return 'failed';
    }
  }

  /** An invalid row leaves the queue for outbox_rejected, with the reason (never its data in the log). */
  async function setAside(trx: Kysely<unknown>, row: OutboxRow, reason: string): Promise<void> {
    metrics?.outboxFailed('rejected');
    logger.warn({ component, row: row.id, reason }, 'invalid outbox row set aside');
    await sql`
      WITH moved AS (DELETE FROM outbox WHERE id = ${row.id} RETURNING *)
      INSERT INTO outbox_rejected (id, event, data, recipients, event_id, created_at, reason)
      SELECT id, event, data, recipients, event_id, created_at, ${reason} FROM moved`.execute(trx);
  }

  const leader = createPgLeader({
    url: deps.url,
    lock: advisoryLockKey(`outbox:${deps.schema}`),
    name: 'outbox consumer',
    applicationName: OUTBOX_APPLICATION_NAME,
    logger,
    clock,
    async onElected(session) {
      if (stopped) return;
      // LISTEN before the first read: a commit between the two still wakes this node.
      session.on('notification', () => wake(false));
      await session.query(`LISTEN ${quoteIdentifier(outboxChannel(deps.schema))}`);
      leading = true;
      term++;
      metrics?.leader('outbox', true);
      wake(true);
    },
    onDeposed: stepDown,
  });

  function stepDown(reason: string): void {
    if (!leading) return;
    leading = false;
    term++;
    cancelTimer();
    metrics?.leader('outbox', false);
    metrics?.outboxLag(0);
    logger.info({ component, reason }, 'outbox consumer stepped down');
  }

  return {
    async start() {
      db = await openOutboxDb(deps.url, deps.schema, logger);
      leader.start();
    },
    async stop() {
      // The batch in hand stops at its next row and commits; only then is the lock given up.
      stopped = true;
      stepDown('stopped');
      await running;
      await leader.stop();
      await db?.destroy();
      db = undefined;
    },
    leading: () => leading,
  };
}
