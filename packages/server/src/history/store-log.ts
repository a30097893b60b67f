import { randomBytes } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import type { Kysely } from 'kysely';
import type { PublishEnvelope } from '../hub/types.js';
import { sqliteHandle } from '../store/connect.js';
import { runMigrations } from '../store/migrations.js';
import type { StoreDialect } from '../store/schema.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { HISTORY_MIGRATIONS, HISTORY_MIGRATION_TABLE, type HistoryTables } from './store-schema.js';
import type { EventLog, LoggedEvent, ReadResult } from './types.js';

export interface StoreLogOptions {
  /** Retention by count (0 = none). */
  maxEvents: number;
  /** Retention by age in seconds (0 = none). */
  maxAgeSeconds: number;
  clock: Clock;
  logger: Logger;
  /** How often retention runs. Default 60 s; 0 = only when `trim()` is called. */
  trimIntervalMs?: number;
  /** Rows removed per DELETE while trimming, so a large trim never holds the write lock for long. Default 5000. */
  trimBatch?: number;
  /** Most events written by one INSERT. Default 500. */
  maxBatch?: number;
}

/** The embedded log: `EventLog` plus what only it can do. */
export interface StoreEventLog extends EventLog {
  readonly kind: 'store';
  knownHead(): { epoch: string; offset: string };
}

interface Waiting {
  envelope: PublishEnvelope;
  at: number;
  resolve(event: LoggedEvent): void;
  reject(error: unknown): void;
}

/**
 * The event log of a single node, in the store (SQLite or PostgreSQL), with its own migrations.
 *
 * Offsets are the integers 1, 2, 3… of the epoch, assigned here: appends are written in batches
 * one after the other (group commit), so offsets are contiguous, committed in order, and `append`
 * promises resolve in offset order — the hub then delivers in that order. Contiguity is what makes
 * "nothing missing after O" provable: the first event read after O must be O+1.
 *
 * The epoch is a random id written once, with the tables. Retention never deletes the newest
 * event, so the highest offset survives a restart and offsets are never reused within the epoch.
 * One writer per database: two gateways sharing one without Redis would collide on offsets
 * (their appends then fail with PUBLISH_FAILED rather than corrupt the order).
 *
 * @example
 *   const log = await createStoreLog(store.db, store.kind, { maxEvents: 100_000, maxAgeSeconds: 86_400, clock, logger });
 *   const { epoch, offset } = await log.append(envelope);
 */
export async function createStoreLog<DB>(
  handle: Kysely<DB>,
  dialect: StoreDialect,
  options: StoreLogOptions,
): Promise<StoreEventLog> {
  await runMigrations(handle, dialect, HISTORY_MIGRATIONS, HISTORY_MIGRATION_TABLE);
  const db = handle as unknown as Kysely<HistoryTables>;
  const { clock, logger } = options;
  const maxBatch = options.maxBatch ?? 500;
  const trimBatch = options.trimBatch ?? 5000;

  await db
    .insertInto('tether_history_meta')
    .values({ id: 1, epoch: randomBytes(8).toString('hex'), created_at: clock.now() })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  const meta = await db.selectFrom('tether_history_meta').select('epoch').where('id', '=', 1).executeTakeFirstOrThrow();
  const epoch = meta.epoch;
  let head = await readMaxSeq();

  const queue: Waiting[] = [];
  let writing = false;
  let closed = false;
  let trimming: Promise<number> | undefined;
  let timer: TimerHandle | undefined;

  async function readMaxSeq(): Promise<number> {
    const row = await db
      .selectFrom('tether_history_events')
      .select((eb) => eb.fn.max('seq').as('max'))
      .executeTakeFirst();
    return Number(row?.max ?? 0);
  }

  type Row = { seq: number; body: string; at: number };
  /**
   * Writes one batch. On SQLite, a statement prepared once and run in one transaction: Kysely's
   * per-query compile and prepare cost about as much as the insert itself on the publish path.
   */
  const insertRows =
    sqliteInsert(handle) ?? ((rows: Row[]) => db.insertInto('tether_history_events').values(rows).execute());

  /** Writes queued appends, one batch at a time, until the queue is empty. */
  async function drain(): Promise<void> {
    writing = true;
    while (queue.length > 0) {
      const batch = queue.splice(0, maxBatch);
      const first = head + 1;
      try {
        await insertRows(batch.map((w, i) => ({ seq: first + i, body: JSON.stringify(w.envelope), at: w.at })));
      } catch (err) {
        logger.error(
          { component: 'history', err: (err as Error).message, events: batch.length },
          'event log append failed',
        );
        const error = new TetherError(
          'PUBLISH_FAILED',
          'The event log could not be written; the event was not published',
          { cause: err },
        );
        for (const w of batch) w.reject(error);
        // Another writer may have taken these offsets: continue after whatever is there now.
        head = await readMaxSeq().catch(() => head);
        continue;
      }
      head = first + batch.length - 1;
      batch.forEach((w, i) => w.resolve({ epoch, offset: String(first + i), envelope: w.envelope, at: w.at }));
    }
    writing = false;
  }

  function append(envelope: PublishEnvelope): Promise<LoggedEvent> {
    if (closed) return Promise.reject(new TetherError('PUBLISH_FAILED', 'The event log is closed'));
    return new Promise<LoggedEvent>((resolve, reject) => {
      queue.push({ envelope, at: clock.now(), resolve, reject });
      // Appends made in the same turn go into one INSERT.
      if (!writing) {
        writing = true;
        queueMicrotask(() => void drain());
      }
    });
  }

  async function readAfter(askedEpoch: string, offset: string, limit: number): Promise<ReadResult> {
    const after = /^\d{1,15}$/.test(offset) ? Number(offset) : Number.NaN;
    if (askedEpoch !== epoch || !Number.isSafeInteger(after) || after > head) return { events: [], complete: false };
    const rows = await db
      .selectFrom('tether_history_events')
      .select(['seq', 'body', 'at'])
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(limit + 1)
      .execute();
    if (rows.length === 0) return { events: [], complete: after === head };
    const events = rows.slice(0, limit).map((row) => ({
      epoch,
      offset: String(row.seq),
      envelope: JSON.parse(row.body) as PublishEnvelope,
      at: Number(row.at),
    }));
    // Contiguous from after+1 (trimming only removes the oldest rows) and not cut by the limit.
    return { events, complete: Number(rows[0]?.seq) === after + 1 && rows.length <= limit };
  }

  /** Deletes rows up to offset `upTo` (and older than `olderThan`, when given) in batches; returns how many. */
  async function deleteBatched(upTo: number, olderThan: number | undefined): Promise<number> {
    let removed = 0;
    for (;;) {
      let select = db.selectFrom('tether_history_events').select('seq').where('seq', '<=', upTo);
      if (olderThan !== undefined) select = select.where('at', '<', olderThan);
      const result = await db
        .deleteFrom('tether_history_events')
        .where('seq', 'in', select.orderBy('seq').limit(trimBatch))
        .executeTakeFirst();
      const count = Number(result.numDeletedRows);
      removed += count;
      if (count < trimBatch || closed) return removed;
    }
  }

  async function runTrim(): Promise<number> {
    // The newest event always stays: it carries the highest offset across restarts.
    const newest = head - 1;
    let removed = 0;
    if (options.maxEvents > 0) removed += await deleteBatched(Math.min(newest, head - options.maxEvents), undefined);
    if (options.maxAgeSeconds > 0) removed += await deleteBatched(newest, clock.now() - options.maxAgeSeconds * 1000);
    if (removed > 0) logger.debug({ component: 'history', removed, head }, 'event log trimmed');
    return removed;
  }

  function trim(): Promise<number> {
    trimming ??= runTrim().finally(() => {
      trimming = undefined;
    });
    return trimming;
  }

  const interval = options.trimIntervalMs ?? 60_000;
  function schedule(): void {
    if (interval <= 0 || closed) return;
    timer = clock.setTimeout(() => {
      trim()
        .catch((err: unknown) =>
          logger.warn({ component: 'history', err: (err as Error).message }, 'event log trim failed'),
        )
        .finally(schedule);
    }, interval);
    timer.unref?.();
  }
  schedule();

  return {
    kind: 'store',
    epoch: () => epoch,
    append,
    readAfter,
    head: () => Promise.resolve({ epoch, offset: String(head) }),
    knownHead: () => ({ epoch, offset: String(head) }),
    trim,
    async close() {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      // Appends already queued are written; the store is closed after us.
      while (writing) await new Promise((resolve) => setImmediate(resolve));
      await trimming?.catch(() => 0);
    },
  };
}

/** A batch insert over the raw SQLite handle, or undefined when the store is not embedded SQLite. */
function sqliteInsert(handle: object): ((rows: { seq: number; body: string; at: number }[]) => void) | undefined {
  const raw = sqliteHandle(handle);
  if (raw === undefined) return undefined;
  const insert = raw.prepare('INSERT INTO tether_history_events (seq, body, at) VALUES (?, ?, ?)');
  return raw.transaction((rows: { seq: number; body: string; at: number }[]) => {
    for (const row of rows) insert.run(row.seq, row.body, row.at);
  });
}
