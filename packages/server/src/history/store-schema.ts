import { sql, type Kysely } from 'kysely';
import type { DialectMigration } from '../store/migrations.js';

/** The history tables keep their own migration history beside Tether's core one. */
export const HISTORY_MIGRATION_TABLE = 'tether_history_migrations';

/** Table shapes of the embedded event log, as Kysely sees them. */
export interface HistoryTables {
  /**
   * One row per stream: its epoch (random, chosen when the stream is created) and a floor of its
   * head. Written when the stream is created and before retention removes its newest entries; the
   * head is the larger of `head` and the stream's highest entry offset (from 0003).
   */
  tether_log_streams: { name: string; epoch: string; head: number };
  /** One row per event: `seq` is its append order, `body` the publish envelope as JSON, `at` ms since the Unix epoch. */
  tether_log_events: { seq: number; id: string; body: string; at: number };
  /** The streams' entries: `off` is the event's offset in `stream`. */
  tether_log_entries: { stream: string; off: number; seq: number };
}

/** Never edit an applied entry; add a new one. */
export const HISTORY_MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001-history': {
    async up(db) {
      await db.schema
        .createTable('tether_history_meta')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('epoch', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tether_history_events')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('tether_history_events_at').on('tether_history_events').column('at').execute();
    },
  },
  // One log per addressee (user, scope and its ancestors, channel) replaces the single sequence.
  // Positions of the old format are answered with `recovered: false`, so the old rows go.
  '0002-streams': {
    async up(db) {
      await db.schema.dropTable('tether_history_events').execute();
      await db.schema.dropTable('tether_history_meta').execute();
      await db.schema
        .createTable('tether_log_streams')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('epoch', 'text', (c) => c.notNull())
        .addColumn('head', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tether_log_events')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('tether_log_events_id').on('tether_log_events').column('id').execute();
      await db.schema.createIndex('tether_log_events_at').on('tether_log_events').column('at').execute();
      await db.schema
        .createTable('tether_log_entries')
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('off', 'bigint', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('tether_log_entries_pk', ['stream', 'off'])
        .execute();
      await db.schema.createIndex('tether_log_entries_seq').on('tether_log_entries').column('seq').execute();
    },
  },
  // Fewer B-trees per append, so fewer pages (and, on SQLite, fewer WAL writes) per commit: a stream's
  // row is no longer rewritten by every append (its head is its highest entry, and retention saves
  // it first); the `at` index goes (age retention walks `seq`, in which `at` never decreases). On
  // SQLite, `seq` becomes the rowid and entries and streams are stored in their primary key's
  // B-tree (WITHOUT ROWID) instead of a table plus an index each, so the three tables are rebuilt.
  '0003-lean-log': {
    async up(db, dialect) {
      if (dialect === 'postgres') {
        await db.schema.dropIndex('tether_log_events_at').execute();
        return;
      }
      // Kysely runs SQLite migrations outside a transaction: this one is its own, so a crash midway
      // leaves the old tables whole.
      await sql`BEGIN IMMEDIATE`.execute(db);
      try {
        await rebuildSqliteLog(db);
        await sql`COMMIT`.execute(db);
      } catch (err) {
        await sql`ROLLBACK`.execute(db);
        throw err;
      }
    },
  },
};

async function rebuildSqliteLog(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE tether_log_events_0003 (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL)`.execute(
    db,
  );
  await sql`INSERT INTO tether_log_events_0003 (seq, id, body, at) SELECT seq, id, body, at FROM tether_log_events`.execute(
    db,
  );
  await sql`CREATE TABLE tether_log_entries_0003 (stream TEXT NOT NULL, off INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (stream, off)) WITHOUT ROWID`.execute(
    db,
  );
  await sql`INSERT INTO tether_log_entries_0003 (stream, off, seq) SELECT stream, off, seq FROM tether_log_entries`.execute(
    db,
  );
  await sql`CREATE TABLE tether_log_streams_0003 (name TEXT NOT NULL PRIMARY KEY, epoch TEXT NOT NULL, head INTEGER NOT NULL) WITHOUT ROWID`.execute(
    db,
  );
  await sql`INSERT INTO tether_log_streams_0003 (name, epoch, head) SELECT name, epoch, head FROM tether_log_streams`.execute(
    db,
  );
  for (const table of ['tether_log_events', 'tether_log_entries', 'tether_log_streams']) {
    await sql`DROP TABLE ${sql.table(table)}`.execute(db);
    await sql`ALTER TABLE ${sql.table(`${table}_0003`)} RENAME TO ${sql.table(table)}`.execute(db);
  }
  await db.schema.createIndex('tether_log_events_id').on('tether_log_events').column('id').execute();
  await db.schema.createIndex('tether_log_entries_seq').on('tether_log_entries').column('seq').execute();
}
