import { sql, type Generated, type Kysely } from 'kysely';
import { runMigrations, type DialectMigration } from '../store/migrations.js';
import type { StoreDialect } from '../store/schema.js';

/**
 * What the delivery record keeps, in the gateway's store (SQLite, or the PostgreSQL every node of a
 * cluster shares, so any node answers for all of them). Rows are only ever inserted, in batches,
 * and deleted by age and by count: the hot path never waits for the database.
 */

/** A delivery row's kind: addressed (one per user of a user-addressed publish), how it was written, its receipt, a push. */
export type DeliveryRowKind = 'addressed' | 'live' | 'recovery' | 'ack' | 'push';

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
  tether_deliveries: DeliveryRow & { id: Generated<number> };
  tether_timeline: TimelineRow & { id: Generated<number> };
  tether_pending_pushes: PendingPushRow;
}

/** The delivery tables keep their own migration history beside Tether's core one. */
export const RECEIPT_MIGRATION_TABLE = 'tether_receipt_migrations';

function serialId(dialect: StoreDialect) {
  return dialect === 'postgres' ? ('bigserial' as const) : ('integer' as const);
}

const RECEIPT_MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001-deliveries-timeline-pending-pushes': {
    async up(db, dialect) {
      await db.schema
        .createTable('tether_deliveries')
        .addColumn('id', serialId(dialect), (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('device', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('transport', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .execute();
      await db.schema
        .createIndex('tether_deliveries_event')
        .on('tether_deliveries')
        .columns(['event_id', 'user_id'])
        .execute();
      await db.schema.createIndex('tether_deliveries_at').on('tether_deliveries').column('at').execute();

      await db.schema
        .createTable('tether_timeline')
        .addColumn('id', serialId(dialect), (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
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
};

/** Rows per INSERT: well under SQLite's and PostgreSQL's bound-parameter limits at 10 columns. */
const INSERT_CHUNK = 500;

export interface DeliveryStore {
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
    const aged = await db.deleteFrom(table).where('at', '<', before).executeTakeFirst();
    let deleted = Number(aged.numDeletedRows);
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

  return {
    async write({ deliveries, timeline, pending }) {
      await db.transaction().execute(async (trx) => {
        for (let i = 0; i < deliveries.length; i += INSERT_CHUNK)
          await trx
            .insertInto('tether_deliveries')
            .values(deliveries.slice(i, i + INSERT_CHUNK))
            .execute();
        for (let i = 0; i < timeline.length; i += INSERT_CHUNK)
          await trx
            .insertInto('tether_timeline')
            .values(timeline.slice(i, i + INSERT_CHUNK))
            .execute();
        for (let i = 0; i < pending.length; i += INSERT_CHUNK)
          await trx
            .insertInto('tether_pending_pushes')
            .values(pending.slice(i, i + INSERT_CHUNK))
            // A re-published event (same id) keeps its first due time: one push per event and user.
            .onConflict((oc) => oc.columns(['event_id', 'user_id']).doNothing())
            .execute();
      });
    },
    async deliveriesOf(eventId, limit) {
      const rows = await db
        .selectFrom('tether_deliveries')
        .select(['event_id', 'user_id', 'session_id', 'device', 'kind', 'at', 'transport', 'node', 'detail'])
        .where('event_id', '=', eventId)
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.map(num);
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
      const row = await db
        .selectFrom('tether_deliveries')
        .select('id')
        .where('event_id', '=', eventId)
        .where('user_id', '=', userId)
        .where('kind', '=', 'ack')
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },
    async prune(before, maxRows) {
      return (
        (await pruneTable('tether_deliveries', before, maxRows)) +
        (await pruneTable('tether_timeline', before, maxRows))
      );
    },
  };
}
