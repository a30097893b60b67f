import type { DialectMigration } from '../store/migrations.js';

/** The history tables keep their own migration history beside Tether's core one. */
export const HISTORY_MIGRATION_TABLE = 'tether_history_migrations';

/** Table shapes of the embedded event log, as Kysely sees them. */
export interface HistoryTables {
  /** One row per stream: its epoch (random, chosen when the stream is created) and head offset. */
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
};
