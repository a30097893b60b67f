import type { DialectMigration } from '../store/migrations.js';

/** The history tables keep their own migration history beside Tether's core one. */
export const HISTORY_MIGRATION_TABLE = 'tether_history_migrations';

/** Table shapes of the embedded event log, as Kysely sees them. */
export interface HistoryTables {
  /** One row (`id = 1`): the epoch, chosen at random when the tables are created. */
  tether_history_meta: { id: number; epoch: string; created_at: number };
  /** `seq` is the offset; `body` the publish envelope as JSON; `at` ms since the Unix epoch. */
  tether_history_events: { seq: number; body: string; at: number };
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
};
