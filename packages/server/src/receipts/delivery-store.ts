import type BetterSqlite3 from 'better-sqlite3';
import { sql, type Generated, type Kysely } from 'kysely';
import { runMigrations, serialId, type DialectMigration } from '../store/migrations.js';
import type { StoreDialect } from '../store/schema.js';

/**
 * What the delivery record keeps, in the gateway's store (SQLite, or the PostgreSQL every node of a
 * cluster shares, so any node answers for all of them). Rows are only ever inserted, in batches,
 * and deleted by age and by count: the hot path never waits for the database.
 */

/** A delivery row's kind: addressed (one per user of a user-addressed publish), how it was written, its receipt, a push. */
export type DeliveryRowKind = 'addressed' | 'live' | 'recovery' | 'ack' | 'push';
/** As stored: addressed, live and recovery rows of one event written together are one `group` row. */
type StoredKind = DeliveryRowKind | 'group';

export interface DeliveryRow {
  event_id: string;
  user_id: string;
  /** The connection ('' for addressed and push rows). */
  session_id: string;
  /** The login session (refresh family) the connection's token belongs to, else the connection id. */
  device: string;
  kind: DeliveryRowKind;
  at: number;
  transport: string;
  node: string;
  /** addressed: the event name; push: why (`offline`, `no_receipt`). */
  detail: string | null;
  /**
   * live / recovery: when the connection's receipt came, if it came before the row was written (the
   * usual case: rows are held briefly for it); a later receipt is an `ack` row instead.
   */
  acked_at: number | null;
}

/** A connection timeline entry's kind. */
export type TimelineKind = 'connect' | 'reauth' | 'reauth_failed' | 'warning' | 'expired' | 'revoked' | 'disconnect';

export interface TimelineRow {
  user_id: string;
  session_id: string;
  device: string;
  kind: TimelineKind;
  /** The error code (`AUTH_EXPIRED`, `AUTH_REVOKED`, a reauth refusal's code), else null. */
  code: string | null;
  /** Why: the close reason (`heartbeat`, `client`, …) or the reauth refusal's reason; else null. */
  reason: string | null;
  transport: string;
  node: string;
  at: number;
  /** JSON: the user agent on connect, the token's expiry on warning and reauth. */
  detail: string | null;
}

export interface PendingPushRow {
  event_id: string;
  user_id: string;
  /** When to push if no device of the user has acknowledged the event by then. */
  due_at: number;
  /** JSON `{event, data}`. */
  body: string;
}

interface ReceiptTables {
  tether_deliveries: Omit<DeliveryRow, 'kind'> & { kind: StoredKind; id: Generated<number> };
  tether_timeline: TimelineRow & { id: Generated<number> };
  tether_pending_pushes: PendingPushRow;
}

/** The delivery tables keep their own migration history beside Tether's core one. */
export const RECEIPT_MIGRATION_TABLE = 'tether_receipt_migrations';

const RECEIPT_MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001-deliveries-timeline-pending-pushes': {
    async up(db, dialect) {
      await db.schema
        .createTable('tether_deliveries')
        .$call(serialId(dialect))
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('device', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('transport', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .addColumn('acked_at', 'bigint')
        .execute();
      // No index on `at`: it would cost every insert; pruning by age walks the ids, which grow with time.
      await db.schema
        .createIndex('tether_deliveries_event')
        .on('tether_deliveries')
        .columns(['event_id', 'user_id'])
        .execute();

      await db.schema
        .createTable('tether_timeline')
        .$call(serialId(dialect))
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('device', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('code', 'text')
        .addColumn('reason', 'text')
        .addColumn('transport', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('tether_timeline_user').on('tether_timeline').columns(['user_id', 'id']).execute();
      await db.schema.createIndex('tether_timeline_at').on('tether_timeline').column('at').execute();

      await db.schema
        .createTable('tether_pending_pushes')
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('due_at', 'bigint', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('tether_pending_pushes_pk', ['event_id', 'user_id'])
        .execute();
      await db.schema.createIndex('tether_pending_pushes_due').on('tether_pending_pushes').column('due_at').execute();
    },
  },
  // Pruning walks ids (as for deliveries) and reads go by user: no query used the index on `at`, and
  // every timeline row (one per connect, reauth, warning, disconnect…) paid for it (~1 µs of ~10).
  '0002-timeline-without-at-index': {
    async up(db) {
      await db.schema.dropIndex('tether_timeline_at').execute();
    },
  },
};

/** Rows per INSERT statement (each is one JSON parameter). */
const INSERT_CHUNK = 2000;
/** Rows deleted per statement when pruning by age. */
const PRUNE_CHUNK = 10_000;

const DELIVERY_COLUMNS = {
  event_id: 'text',
  user_id: 'text',
  session_id: 'text',
  device: 'text',
  kind: 'text',
  at: 'bigint',
  transport: 'text',
  node: 'text',
  detail: 'text',
  acked_at: 'bigint',
} as const;
const DELIVERY_SELECT = Object.keys(DELIVERY_COLUMNS) as (keyof typeof DELIVERY_COLUMNS)[];
const TIMELINE_COLUMNS = {
  user_id: 'text',
  session_id: 'text',
  device: 'text',
  kind: 'text',
  code: 'text',
  reason: 'text',
  transport: 'text',
  node: 'text',
  at: 'bigint',
  detail: 'text',
} as const;
const PENDING_COLUMNS = { event_id: 'text', user_id: 'text', due_at: 'bigint', body: 'text' } as const;

/** The record's tables and every column of each (the embedded record's worker copies them by name). */
export const RECORD_TABLES = {
  tether_deliveries: ['id', ...Object.keys(DELIVERY_COLUMNS)],
  tether_timeline: ['id', ...Object.keys(TIMELINE_COLUMNS)],
  tether_pending_pushes: Object.keys(PENDING_COLUMNS),
} as const satisfies Record<keyof ReceiptTables, readonly string[]>;
export type RecordTable = keyof typeof RECORD_TABLES;

type StoredRow = Omit<DeliveryRow, 'kind'> & { kind: StoredKind };

/** Kinds written per event and connection: packed into one row per event and write. */
const PACKED: ReadonlySet<string> = new Set(['addressed', 'live', 'recovery']);

/**
 * One row per event for its addressed, live and recovery rows written together (the recorder holds
 * them briefly, so an event's usually are): each row costs an index entry, which is most of an
 * insert. `detail` holds `[user, session, device, kind, at, transport, detail, acked_at]` per row.
 */
function pack(rows: readonly DeliveryRow[]): StoredRow[] {
  const out: StoredRow[] = [];
  const byEvent = new Map<string, DeliveryRow[]>();
  for (const row of rows) {
    if (!PACKED.has(row.kind)) {
      out.push(row);
      continue;
    }
    const group = byEvent.get(row.event_id);
    if (group === undefined) byEvent.set(row.event_id, [row]);
    else group.push(row);
  }
  for (const [eventId, group] of byEvent) {
    const first = group[0]!;
    if (group.length === 1) {
      out.push(first);
      continue;
    }
    out.push({
      event_id: eventId,
      user_id: group.every((row) => row.user_id === first.user_id) ? first.user_id : '',
      session_id: '',
      device: '',
      kind: 'group',
      at: first.at,
      transport: '',
      node: first.node,
      detail: JSON.stringify(
        group.map((r) => [r.user_id, r.session_id, r.device, r.kind, r.at, r.transport, r.detail, r.acked_at]),
      ),
      acked_at: null,
    });
  }
  return out;
}

function unpack(row: StoredRow): DeliveryRow[] {
  if (row.kind !== 'group') return [row as DeliveryRow];
  const entries = JSON.parse(row.detail ?? '[]') as [
    string,
    string,
    string,
    DeliveryRowKind,
    number,
    string,
    string | null,
    number | null,
  ][];
  return entries.map(([user_id, session_id, device, kind, at, transport, detail, acked_at]) => ({
    event_id: row.event_id,
    user_id,
    session_id,
    device,
    kind,
    at,
    transport,
    node: row.node,
    detail,
    acked_at,
  }));
}

type Inserter = (
  db: Kysely<ReceiptTables>,
  table: keyof ReceiptTables,
  columns: Readonly<Record<string, 'text' | 'bigint'>>,
  rows: readonly object[],
  ignoreConflictOn?: readonly string[],
) => Promise<void>;

/**
 * Many rows in one statement with one parameter: the rows as a JSON array, unpacked by the database
 * (SQLite `json_each`, PostgreSQL `json_to_recordset`). A query builder's multi-row insert binds ten
 * parameters per row and builds a node per value: measured, that was most of the record's cost.
 */
function bulkInsert(dialect: StoreDialect): Inserter {
  return async (db, table, columns, rows, ignoreConflictOn) => {
    if (rows.length === 0) return;
    const names = Object.keys(columns);
    const list = sql.join(names.map((name) => sql.ref(name)));
    const json = JSON.stringify(rows);
    const source =
      dialect === 'postgres'
        ? sql`SELECT ${list} FROM json_to_recordset(${json}::json) AS r(${sql.raw(
            names.map((name) => `${name} ${columns[name]}`).join(', '),
          )})`
        : sql`SELECT ${sql.join(names.map((name) => sql`value ->> ${sql.lit(name)}`))} FROM json_each(${json}) WHERE true`;
    const conflict =
      ignoreConflictOn === undefined
        ? sql``
        : sql` ON CONFLICT (${sql.join(ignoreConflictOn.map((name) => sql.ref(name)))}) DO NOTHING`;
    await sql`INSERT INTO ${sql.table(table)} (${list}) ${source}${conflict}`.execute(db);
  };
}

/**
 * `DeliveryStore.write` for a SQLite database used from one thread only (the embedded record's
 * worker): statements prepared once and run in one transaction. Measured against the JSON bulk
 * insert through Kysely: 16 against 28 µs of CPU per timeline row in transactions of 250 rows.
 */
export function preparedWrite(database: BetterSqlite3.Database): DeliveryStore['write'] {
  const statement = (table: keyof typeof RECORD_TABLES, columns: readonly string[], conflict = '') =>
    database.prepare(
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})${conflict}`,
    );
  const deliveryColumns = Object.keys(DELIVERY_COLUMNS) as (keyof StoredRow)[];
  const timelineColumns = Object.keys(TIMELINE_COLUMNS) as (keyof TimelineRow)[];
  const pendingColumns = Object.keys(PENDING_COLUMNS) as (keyof PendingPushRow)[];
  const delivery = statement('tether_deliveries', deliveryColumns);
  const timeline = statement('tether_timeline', timelineColumns);
  const pending = statement('tether_pending_pushes', pendingColumns, ' ON CONFLICT (event_id, user_id) DO NOTHING');
  const write = database.transaction((rows: Parameters<DeliveryStore['write']>[0]) => {
    for (const row of pack(rows.deliveries)) delivery.run(deliveryColumns.map((name) => row[name]));
    for (const row of rows.timeline) timeline.run(timelineColumns.map((name) => row[name]));
    for (const row of rows.pending) pending.run(pendingColumns.map((name) => row[name]));
  });
  return async (rows) => {
    write(rows);
  };
}

export interface DeliveryStore {
  /**
   * Rows the recorder sends per `write` at most (default 250): on a store that writes on the event
   * loop's thread a big transaction holds every delivery, so a busy flush goes in slices, a turn apart.
   */
  readonly writeSliceRows?: number;
  /** Inserts everything given in one transaction. */
  write(rows: {
    deliveries: readonly DeliveryRow[];
    timeline: readonly TimelineRow[];
    pending: readonly PendingPushRow[];
  }): Promise<void>;
  deliveriesOf(eventId: string, limit: number): Promise<DeliveryRow[]>;
  /** The newest `limit` entries of the user's timeline (older than `beforeId` when given), newest first. */
  timelineOf(userId: string, limit: number, beforeId?: number): Promise<(TimelineRow & { id: number })[]>;
  /** Connects of the user since `since` (ms), and how many devices made them. */
  connectsSince(userId: string, since: number): Promise<{ connects: number; devices: number }>;
  /** Pending pushes due by `now`, oldest first. */
  duePushes(now: number, limit: number): Promise<PendingPushRow[]>;
  /** Removes a pending push; true for the one caller that removed it (the one that pushes). */
  claimPush(eventId: string, userId: string): Promise<boolean>;
  /** Whether any device of the user acknowledged the event. */
  acknowledged(eventId: string, userId: string): Promise<boolean>;
  /** Deletes rows older than `before` and, past `maxRows`, the oldest of each table. Returns rows deleted. */
  prune(before: number, maxRows: number): Promise<number>;
}

/**
 * Opens the delivery record's tables in the gateway's store, applying their migrations.
 *
 * @example
 *   const store = await openDeliveryStore(db, 'sqlite');
 *   await store.write({ deliveries: [row], timeline: [], pending: [] });
 */
export async function openDeliveryStore<DB>(handle: Kysely<DB>, dialect: StoreDialect): Promise<DeliveryStore> {
  await runMigrations(handle, dialect, RECEIPT_MIGRATIONS, RECEIPT_MIGRATION_TABLE);
  const db = handle as unknown as Kysely<ReceiptTables>;
  const num = <T extends { at?: unknown; id?: unknown; due_at?: unknown }>(row: T): T => ({
    ...row,
    ...(row.at === undefined ? {} : { at: Number(row.at) }),
    ...(row.id === undefined ? {} : { id: Number(row.id) }),
    ...(row.due_at === undefined ? {} : { due_at: Number(row.due_at) }),
  });

  async function pruneTable(table: 'tether_deliveries' | 'tether_timeline', before: number, maxRows: number) {
    let deleted = 0;
    // By age: ids grow with time (one sequence for every node), so the oldest rows are the lowest ids;
    // delete in id ranges while the lowest row is old, without an index on `at`.
    for (;;) {
      const oldest = await db.selectFrom(table).select(['id', 'at']).orderBy('id').limit(1).executeTakeFirst();
      if (oldest === undefined || Number(oldest.at) >= before) break;
      const result = await db
        .deleteFrom(table)
        .where('id', '<', Number(oldest.id) + PRUNE_CHUNK)
        .where('at', '<', before)
        .executeTakeFirst();
      const n = Number(result.numDeletedRows);
      deleted += n;
      if (n === 0) break;
    }
    // Ids grow with every insert (on every node: one sequence), so "more than maxRows" is an id bound.
    const newest = await db.selectFrom(table).select('id').orderBy('id', 'desc').limit(1).executeTakeFirst();
    if (newest !== undefined) {
      const over = await db
        .deleteFrom(table)
        .where('id', '<=', Number(newest.id) - maxRows)
        .executeTakeFirst();
      deleted += Number(over.numDeletedRows);
    }
    return deleted;
  }

  const insert = bulkInsert(dialect);
  return {
    async write({ deliveries, timeline, pending }) {
      await db.transaction().execute(async (trx) => {
        const packed = pack(deliveries);
        for (let i = 0; i < packed.length; i += INSERT_CHUNK)
          await insert(trx, 'tether_deliveries', DELIVERY_COLUMNS, packed.slice(i, i + INSERT_CHUNK));
        for (let i = 0; i < timeline.length; i += INSERT_CHUNK)
          await insert(trx, 'tether_timeline', TIMELINE_COLUMNS, timeline.slice(i, i + INSERT_CHUNK));
        // A re-published event (same id) keeps its first due time: one push per event and user.
        for (let i = 0; i < pending.length; i += INSERT_CHUNK)
          await insert(trx, 'tether_pending_pushes', PENDING_COLUMNS, pending.slice(i, i + INSERT_CHUNK), [
            'event_id',
            'user_id',
          ]);
      });
    },
    async deliveriesOf(eventId, limit) {
      const rows = await db
        .selectFrom('tether_deliveries')
        .select(DELIVERY_SELECT)
        .where('event_id', '=', eventId)
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.flatMap((row) =>
        unpack({ ...num(row), acked_at: row.acked_at === null ? null : Number(row.acked_at) }),
      );
    },
    async timelineOf(userId, limit, beforeId) {
      let query = db.selectFrom('tether_timeline').selectAll().where('user_id', '=', userId);
      if (beforeId !== undefined) query = query.where('id', '<', beforeId);
      const rows = await query.orderBy('id', 'desc').limit(limit).execute();
      return rows.map(num);
    },
    async connectsSince(userId, since) {
      const row = await db
        .selectFrom('tether_timeline')
        .select([sql<number>`count(*)`.as('connects'), sql<number>`count(distinct device)`.as('devices')])
        .where('user_id', '=', userId)
        .where('kind', '=', 'connect')
        .where('at', '>=', since)
        .executeTakeFirst();
      return { connects: Number(row?.connects ?? 0), devices: Number(row?.devices ?? 0) };
    },
    async duePushes(now, limit) {
      const rows = await db
        .selectFrom('tether_pending_pushes')
        .selectAll()
        .where('due_at', '<=', now)
        .orderBy('due_at')
        .limit(limit)
        .execute();
      return rows.map(num);
    },
    async claimPush(eventId, userId) {
      const result = await db
        .deleteFrom('tether_pending_pushes')
        .where('event_id', '=', eventId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
    async acknowledged(eventId, userId) {
      const rows = await db
        .selectFrom('tether_deliveries')
        .select(DELIVERY_SELECT)
        .where('event_id', '=', eventId)
        .where('kind', 'in', ['ack', 'live', 'recovery', 'group'])
        .execute();
      return rows
        .flatMap((row) => unpack(row as StoredRow))
        .some((row) => row.user_id === userId && (row.kind === 'ack' || row.acked_at !== null));
    },
    async prune(before, maxRows) {
      return (
        (await pruneTable('tether_deliveries', before, maxRows)) +
        (await pruneTable('tether_timeline', before, maxRows))
      );
    },
  };
}
