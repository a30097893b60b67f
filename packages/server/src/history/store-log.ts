import { randomBytes } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import { sql, type Kysely } from 'kysely';
import { idWasGenerated } from '../hub/publish.js';
import type { PublishEnvelope } from '../hub/types.js';
import { sqliteHandle } from '../store/connect.js';
import { runMigrations } from '../store/migrations.js';
import type { StoreDialect } from '../store/schema.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { HISTORY_MIGRATIONS, HISTORY_MIGRATION_TABLE, type HistoryTables } from './store-schema.js';
import { EPOCH_CHARS, StreamLayout } from './streams.js';
import {
  NO_EPOCH,
  contiguous,
  continues,
  type Cursor,
  type EventLog,
  type LoggedEvent,
  type StreamRead,
} from './types.js';

export interface StoreLogOptions {
  /** Retention by count, per stream (0 = none). */
  maxEvents: number;
  /** Retention by age in seconds (0 = none). */
  maxAgeSeconds: number;
  clock: Clock;
  logger: Logger;
  /** How often retention runs. Default 60 s; 0 = only when `trim()` is called. */
  trimIntervalMs?: number;
  /** Rows removed per DELETE while trimming, so a large trim never holds the write lock for long. Default 5000. */
  trimBatch?: number;
  /** Most events written by one transaction. Default 500. */
  maxBatch?: number;
  /**
   * Group commit under load: an append arriving less than this many ms after the last commit
   * waits until this long after it, with the appends that come meanwhile (one transaction for
   * them all). An append to an idle log is written in the next turn. Default 1; 0 = every turn.
   */
  commitWindowMs?: number;
  /** Told of each transaction written: its events and how long it took (metrics). */
  onCommit?(events: number, seconds: number): void;
  /** Scope stream layout. Default one stream per scope (spreading helps a Redis Cluster only). */
  layout?: StreamLayout;
}

/** The embedded log: `EventLog` over the store. */
export interface StoreEventLog extends EventLog {
  readonly kind: 'store';
}

interface Waiting {
  envelope: PublishEnvelope;
  resolve(event: LoggedEvent): void;
  reject(error: unknown): void;
}

interface Head {
  epoch: string;
  head: number;
}

/** What one batch writes, in one transaction. */
interface BatchRows {
  events: { seq: number; id: string; body: string; at: number }[];
  entries: { stream: string; off: number; seq: number }[];
  /** Streams created by this batch. */
  streams: { name: string; epoch: string; head: number }[];
}

/** Successful appends remembered by id, so a retried publish is appended once. */
const RECENT_IDS = 4096;
/** Streams remembered as absent at most; past it the memory starts again (a miss is one lookup). */
const MAX_ABSENT = 100_000;
/** Names per `IN (…)` when loading stream heads. */
const LOAD_CHUNK = 500;

/**
 * The event log of a single node, in the store (SQLite or PostgreSQL), with its own migrations:
 * one row per event (its body once, however many streams it went to), one entry per stream it went
 * to, and one row per stream with its epoch, written when the stream is created. A stream's head is
 * its highest entry; retention saves it in the stream's row before removing that entry, so offsets
 * are never reused. An append thus writes no row of its streams but a new one's.
 *
 * Offsets are assigned here from the streams' heads, which this process keeps in memory once read:
 * appends are written in batches one after the other (group commit), so each stream's offsets are
 * contiguous, committed in order, and `append` promises resolve in append order — the hub then
 * delivers in that order. Heads change only after their batch committed, so a reader never waits
 * for an offset that may still be rolled back. One writer per database: two gateways sharing one
 * without Redis would collide on offsets (their appends then fail with PUBLISH_FAILED rather than
 * corrupt the order).
 *
 * @example
 *   const log = await createStoreLog(store.db, store.kind, { maxEvents: 10_000, maxAgeSeconds: 86_400, clock, logger });
 *   const { cursors } = await log.append(envelope);
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
  const commitWindowMs = options.commitWindowMs ?? 1;
  const layout = options.layout ?? StreamLayout.SINGLE;
  const trimBatch = options.trimBatch ?? 5000;

  /** Committed heads of the streams this process has read or written. */
  const heads = new Map<string, Head>();
  /**
   * Streams looked up and not found. Most connections read a stream nothing was written to yet (their
   * user's): without this, every connect of that user asked the store again (~25 µs of a connect's
   * CPU on SQLite). Sound because this process is the log's only writer: a stream appears here first.
   */
  let absent = new Set<string>();
  const recent = new Map<string, LoggedEvent>();
  // `at` never decreases along `seq`: the last event has both.
  const last = await db
    .selectFrom('tether_log_events')
    .select(['seq', 'at'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  let seq = Number(last?.seq ?? 0);
  let lastAt = Number(last?.at ?? 0);

  const queue: Waiting[] = [];
  let writing = false;
  /** When the last batch was written (performance.now()). */
  let lastCommit = Number.NEGATIVE_INFINITY;
  let closed = false;
  let trimming: Promise<number> | undefined;
  let timer: TimerHandle | undefined;

  const writeRows = sqliteWriter(handle) ?? ((rows: BatchRows) => kyselyWrite(db, dialect, rows));
  // Every append batch checks its ids (retries): on SQLite one prepared lookup per id, no compile.
  const sqliteHas = sqliteIdLookup(handle);
  // Recovery reads a few streams per reconnect: on SQLite a statement prepared once, as for appends.
  const readRows =
    sqliteReader(handle) ??
    ((stream: string, after: number, upTo: number, count: number) =>
      db
        .selectFrom('tether_log_entries as e')
        .innerJoin('tether_log_events as v', 'v.seq', 'e.seq')
        .select(['e.off', 'v.body', 'v.at', 'v.seq'])
        .where('e.stream', '=', stream)
        .where('e.off', '>', after)
        .where('e.off', '<=', upTo)
        .orderBy('e.off')
        .limit(count)
        .execute());

  // Every connect loads the heads of the streams it reads: on SQLite one prepared lookup per stream.
  const sqliteHead = sqliteHeadLookup(handle);
  const greatest = sql.raw(dialect === 'postgres' ? 'greatest' : 'max');

  /** Loads the heads of streams not in memory yet (absent streams stay absent). */
  async function loadHeads(names: Iterable<string>): Promise<void> {
    const missing = [...new Set(names)].filter((name) => !heads.has(name) && !absent.has(name));
    if (missing.length === 0) return;
    if (sqliteHead !== undefined) {
      for (const name of missing) {
        const row = sqliteHead(name);
        if (row !== undefined) heads.set(name, { epoch: row.epoch, head: Number(row.head) });
      }
    } else {
      for (let i = 0; i < missing.length; i += LOAD_CHUNK) {
        const rows = await db
          .selectFrom('tether_log_streams as s')
          .select([
            's.name',
            's.epoch',
            sql<number>`${greatest}(s.head, coalesce((SELECT max(e.off) FROM tether_log_entries e WHERE e.stream = s.name), 0))`.as(
              'head',
            ),
          ])
          .where('s.name', 'in', missing.slice(i, i + LOAD_CHUNK))
          .execute();
        for (const row of rows)
          if (!heads.has(row.name)) heads.set(row.name, { epoch: row.epoch, head: Number(row.head) });
      }
    }
    if (absent.size + missing.length > MAX_ABSENT) absent = new Set();
    for (const name of missing) if (!heads.has(name)) absent.add(name);
  }

  /** An event appended before (a retried publish), with its cursors, from memory or the store. */
  async function findAppended(id: string): Promise<LoggedEvent | undefined> {
    const known = recent.get(id);
    if (known !== undefined) return known;
    const event = await db
      .selectFrom('tether_log_events')
      .select(['seq', 'body', 'at'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (event === undefined) return undefined;
    const entries = await db
      .selectFrom('tether_log_entries')
      .select(['stream', 'off'])
      .where('seq', '=', event.seq)
      .execute();
    await loadHeads(entries.map((e) => e.stream));
    const cursors = new Map<string, Cursor>();
    for (const e of entries)
      cursors.set(e.stream, { epoch: heads.get(e.stream)?.epoch ?? NO_EPOCH, offset: Number(e.off) });
    return {
      envelope: JSON.parse(event.body) as PublishEnvelope,
      at: Number(event.at),
      seq: Number(event.seq),
      cursors,
    };
  }

  /** Which of these ids the store already holds (one query per batch; ids generated here are not asked). */
  async function storedIds(ids: string[]): Promise<Set<string>> {
    const unique = [...new Set(ids)];
    if (sqliteHas !== undefined) return new Set(unique.filter((id) => sqliteHas(id)));
    const out = new Set<string>();
    for (let i = 0; i < unique.length; i += LOAD_CHUNK) {
      const rows = await db
        .selectFrom('tether_log_events')
        .select('id')
        .where('id', 'in', unique.slice(i, i + LOAD_CHUNK))
        .execute();
      for (const row of rows) out.add(row.id);
    }
    return out;
  }

  function remember(event: LoggedEvent): void {
    recent.set(event.envelope.id, event);
    if (recent.size > RECENT_IDS) recent.delete(recent.keys().next().value as string);
  }

  /** Writes one batch: offsets from the committed heads, published to memory only after commit. */
  async function writeBatch(batch: Waiting[]): Promise<void> {
    const fresh: Waiting[] = [];
    const firstOfId = new Map<string, Waiting[]>();
    const stored = await storedIds(
      batch.filter((w) => !recent.has(w.envelope.id) && !idWasGenerated(w.envelope)).map((w) => w.envelope.id),
    );
    for (const w of batch) {
      const id = w.envelope.id;
      const earlier = recent.has(id) || stored.has(id) ? await findAppended(id) : undefined;
      if (earlier !== undefined) {
        w.resolve(earlier);
        continue;
      }
      const same = firstOfId.get(w.envelope.id);
      if (same !== undefined)
        same.push(w); // the same id twice in one batch: appended once
      else {
        firstOfId.set(w.envelope.id, [w]);
        fresh.push(w);
      }
    }
    if (fresh.length === 0) return;
    const streamsByEvent = fresh.map((w) => layout.streamsOf(w.envelope));
    await loadHeads(streamsByEvent.flat());

    const working = new Map<string, Head>();
    const created = new Set<string>();
    const rows: BatchRows = { events: [], entries: [], streams: [] };
    const logged: LoggedEvent[] = [];
    let nextSeq = seq;
    const at = Math.max(clock.now(), lastAt);
    fresh.forEach((w, i) => {
      const eventSeq = ++nextSeq;
      const cursors = new Map<string, Cursor>();
      for (const stream of streamsByEvent[i]!) {
        let head = working.get(stream);
        if (head === undefined) {
          const committed = heads.get(stream);
          head = committed === undefined ? { epoch: newEpoch(), head: 0 } : { ...committed };
          if (committed === undefined) created.add(stream);
          working.set(stream, head);
        }
        head.head++;
        cursors.set(stream, { epoch: head.epoch, offset: head.head });
        rows.entries.push({ stream, off: head.head, seq: eventSeq });
      }
      rows.events.push({ seq: eventSeq, id: w.envelope.id, body: JSON.stringify(w.envelope), at });
      logged.push({ envelope: w.envelope, at, seq: eventSeq, cursors });
    });
    // A stream's row is written once, when it is created (its head is its highest entry).
    for (const name of created) rows.streams.push({ name, epoch: working.get(name)!.epoch, head: 0 });

    const started = performance.now();
    try {
      await writeRows(rows);
    } catch (err) {
      logger.error(
        { component: 'history', err: (err as Error).message, events: fresh.length },
        'event log append failed',
      );
      const error = new TetherError(
        'PUBLISH_FAILED',
        'The event log could not be written; the event was not published',
        {
          cause: err,
        },
      );
      for (const w of fresh) for (const same of firstOfId.get(w.envelope.id) ?? []) same.reject(error);
      // Another writer may have moved the heads: read them again before the next batch.
      for (const name of working.keys()) {
        heads.delete(name);
        absent.delete(name);
      }
      return;
    }
    options.onCommit?.(fresh.length, (performance.now() - started) / 1000);
    seq = nextSeq;
    lastAt = at;
    for (const [name, head] of working) {
      heads.set(name, head);
      absent.delete(name);
    }
    fresh.forEach((w, i) => {
      const event = logged[i]!;
      remember(event);
      for (const same of firstOfId.get(w.envelope.id) ?? []) same.resolve(event);
    });
  }

  /**
   * Writes one batch of queued appends, then schedules the next while any are queued. A commit costs
   * about as much as several appends (SQLite: ~70 µs of CPU, then ~20 µs per event): idle, an append
   * is written in the next turn, with whatever else that turn's I/O brought; busy (the last commit
   * less than the window ago), the next batch waits out the window, so it grows with the load and
   * its cost per event falls. A full batch never waits.
   */
  async function drain(): Promise<void> {
    const batch = queue.splice(0, maxBatch);
    try {
      await writeBatch(batch);
    } catch (err) {
      // A read before the write failed (the store is gone): nothing of this batch was written.
      const error = new TetherError('PUBLISH_FAILED', 'The event log is unreachable; the event was not published', {
        cause: err,
      });
      for (const w of batch) w.reject(error);
    }
    lastCommit = performance.now();
    if (queue.length > 0) scheduleDrain();
    else writing = false;
  }

  function scheduleDrain(): void {
    const wait = queue.length >= maxBatch ? 0 : lastCommit + commitWindowMs - performance.now();
    if (wait > 0) setTimeout(() => void drain(), wait);
    else setImmediate(() => void drain());
  }

  function append(envelope: PublishEnvelope): Promise<LoggedEvent> {
    if (closed) return Promise.reject(new TetherError('PUBLISH_FAILED', 'The event log is closed'));
    return new Promise<LoggedEvent>((resolve, reject) => {
      queue.push({ envelope, resolve, reject });
      if (writing) return;
      writing = true;
      scheduleDrain();
    });
  }

  async function headOf(stream: string): Promise<Cursor> {
    await loadHeads([stream]);
    const head = heads.get(stream);
    return head === undefined ? { epoch: NO_EPOCH, offset: 0 } : { epoch: head.epoch, offset: head.head };
  }

  async function read(stream: string, from: Cursor, limit: number): Promise<StreamRead> {
    const head = await headOf(stream);
    if (!continues(from, head)) return { entries: [], complete: false, head };
    if (from.offset === head.offset) return { entries: [], complete: true, head };
    const rows = await readRows(stream, from.offset, head.offset, limit + 1);
    const entries = rows.slice(0, limit).map((row) => ({
      offset: Number(row.off),
      envelope: JSON.parse(row.body) as PublishEnvelope,
      at: Number(row.at),
      seq: Number(row.seq),
    }));
    // Contiguous from the cursor (trimming only removes the oldest entries) and not cut by the limit.
    const complete = contiguous(from, entries[0]?.offset, rows.length, limit);
    return { entries, complete, head };
  }

  async function headsOf(streams: readonly string[]): Promise<Map<string, Cursor>> {
    await loadHeads(streams);
    const out = new Map<string, Cursor>();
    for (const stream of streams) {
      const head = heads.get(stream);
      out.set(stream, head === undefined ? { epoch: NO_EPOCH, offset: 0 } : { epoch: head.epoch, offset: head.head });
    }
    return out;
  }

  /** Runs `statement` (a DELETE of at most `trimBatch` rows) until it removes fewer; returns how many. */
  async function deleteBatched(statement: () => Promise<bigint | undefined>): Promise<number> {
    let removed = 0;
    for (;;) {
      const count = Number((await statement()) ?? 0n);
      removed += count;
      if (count < trimBatch || closed) return removed;
    }
  }

  async function runTrim(): Promise<number> {
    let removed = 0;
    if (options.maxEvents > 0) {
      // Per stream: what lies more than maxEvents below the stream's head (its highest entry, which
      // this never removes). CROSS JOIN: SQLite then walks the streams and seeks each one's old
      // entries, rather than visiting every entry.
      removed += await deleteBatched(async () => {
        const result = await sql`DELETE FROM tether_log_entries WHERE (stream, off) IN (
            SELECT e.stream, e.off FROM tether_log_streams s CROSS JOIN tether_log_entries e
            WHERE e.stream = s.name
              AND e.off <= (SELECT max(x.off) FROM tether_log_entries x WHERE x.stream = s.name) - ${options.maxEvents}
            LIMIT ${trimBatch})`.execute(db);
        return result.numAffectedRows;
      });
    }
    if (options.maxAgeSeconds > 0) {
      // `at` never decreases along `seq`: entries of events before the first young one go. Each
      // batch first saves the heads of the streams it trims, which may lose their highest entry.
      const young = await db
        .selectFrom('tether_log_events')
        .select('seq')
        .where('at', '>=', clock.now() - options.maxAgeSeconds * 1000)
        .orderBy('seq')
        .limit(1)
        .executeTakeFirst();
      const before = young === undefined ? seq + 1 : Number(young.seq);
      const batch = sql`SELECT stream, off FROM tether_log_entries WHERE seq < ${before} ORDER BY seq, stream, off LIMIT ${trimBatch}`;
      removed += await deleteBatched(() =>
        db.transaction().execute(async (trx) => {
          await sql`UPDATE tether_log_streams SET head = ${greatest}(head, coalesce((
              SELECT max(e.off) FROM tether_log_entries e WHERE e.stream = tether_log_streams.name), 0))
            WHERE name IN (SELECT b.stream FROM (${batch}) b)`.execute(trx);
          const result = await sql`DELETE FROM tether_log_entries WHERE (stream, off) IN (${batch})`.execute(trx);
          return result.numAffectedRows;
        }),
      );
    }
    // Bodies no stream refers to any more. Stream rows stay: they carry each stream's epoch and head.
    await deleteBatched(async () => {
      const result = await sql`DELETE FROM tether_log_events WHERE seq IN (
          SELECT v.seq FROM tether_log_events v
          WHERE v.seq <= ${seq} AND NOT EXISTS (SELECT 1 FROM tether_log_entries e WHERE e.seq = v.seq)
          LIMIT ${trimBatch})`.execute(db);
      return result.numAffectedRows;
    });
    if (removed > 0) logger.debug({ component: 'history', removed }, 'event log trimmed');
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
    layout,
    append,
    read,
    heads: headsOf,
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

/** A random stream epoch: 8 base64url characters, never the all-zero stand-in for "no epoch". */
export function newEpoch(): string {
  for (;;) {
    const epoch = randomBytes(6).toString('base64url');
    if (epoch.length === EPOCH_CHARS && epoch !== '0'.repeat(EPOCH_CHARS)) return epoch;
  }
}

/**
 * The batch writer over the raw SQLite handle, or undefined when the store is not embedded SQLite:
 * statements prepared once and run in one transaction (Kysely's per-query compile and prepare cost
 * about as much as the insert itself on the publish path).
 */
function sqliteWriter(handle: object): ((rows: BatchRows) => void) | undefined {
  const raw = sqliteHandle(handle);
  if (raw === undefined) return undefined;
  const insertEvent = raw.prepare('INSERT INTO tether_log_events (seq, id, body, at) VALUES (?, ?, ?, ?)');
  const insertEntry = raw.prepare('INSERT INTO tether_log_entries (stream, off, seq) VALUES (?, ?, ?)');
  // A plain insert: a stream created by another writer fails the batch (its heads are then read again).
  const insertStream = raw.prepare('INSERT INTO tether_log_streams (name, epoch, head) VALUES (?, ?, ?)');
  return raw.transaction((rows: BatchRows) => {
    for (const e of rows.events) insertEvent.run(e.seq, e.id, e.body, e.at);
    for (const e of rows.entries) insertEntry.run(e.stream, e.off, e.seq);
    for (const s of rows.streams) insertStream.run(s.name, s.epoch, s.head);
  });
}

/** Whether an event id is in the log, over the raw SQLite handle (undefined when not embedded SQLite). */
function sqliteIdLookup(handle: object): ((id: string) => boolean) | undefined {
  const raw = sqliteHandle(handle);
  if (raw === undefined) return undefined;
  const select = raw.prepare('SELECT 1 FROM tether_log_events WHERE id = ? LIMIT 1').pluck();
  return (id) => select.get(id) !== undefined;
}

/** A stream's stored head, over the raw SQLite handle (undefined when not embedded SQLite). */
function sqliteHeadLookup(handle: object): ((name: string) => Head | undefined) | undefined {
  const raw = sqliteHandle(handle);
  if (raw === undefined) return undefined;
  const select = raw.prepare(
    `SELECT epoch, max(head, coalesce((SELECT max(off) FROM tether_log_entries WHERE stream = ?), 0)) AS head
       FROM tether_log_streams WHERE name = ?`,
  );
  return (name) => select.get(name, name) as Head | undefined;
}

type EntryRow = { off: number; body: string; at: number; seq: number };

/** Entries of one stream after an offset, over the raw SQLite handle (undefined when not embedded SQLite). */
function sqliteReader(
  handle: object,
): ((stream: string, after: number, upTo: number, count: number) => Promise<EntryRow[]>) | undefined {
  const raw = sqliteHandle(handle);
  if (raw === undefined) return undefined;
  const select = raw.prepare(
    `SELECT e.off AS off, v.body AS body, v.at AS at, v.seq AS seq
       FROM tether_log_entries e JOIN tether_log_events v ON v.seq = e.seq
      WHERE e.stream = ? AND e.off > ? AND e.off <= ? ORDER BY e.off LIMIT ?`,
  );
  return (stream, after, upTo, count) => Promise.resolve(select.all(stream, after, upTo, count) as EntryRow[]);
}

/** The same batch through Kysely (PostgreSQL), in chunks under the parameter limit. */
async function kyselyWrite(db: Kysely<HistoryTables>, _dialect: StoreDialect, rows: BatchRows): Promise<void> {
  const CHUNK = 1000;
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < rows.events.length; i += CHUNK)
      await trx
        .insertInto('tether_log_events')
        .values(rows.events.slice(i, i + CHUNK))
        .execute();
    for (let i = 0; i < rows.entries.length; i += CHUNK)
      await trx
        .insertInto('tether_log_entries')
        .values(rows.entries.slice(i, i + CHUNK))
        .execute();
    for (let i = 0; i < rows.streams.length; i += CHUNK)
      await trx
        .insertInto('tether_log_streams')
        .values(rows.streams.slice(i, i + CHUNK))
        .execute();
  });
}
