import type { Kysely } from 'kysely';
import type { DialectMigration } from '@tether/server';

/** The table our schema history is recorded in, apart from Tether's own. */
export const HELPDESK_MIGRATION_TABLE = 'helpdesk_migrations';

async function createTables(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('hd_areas')
    .addColumn('path', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('level', 'text', (c) => c.notNull())
    .addColumn('parent', 'text')
    .execute();

  await db.schema
    .createTable('hd_tickets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('ward', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('customer_name', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('resolved_at', 'bigint')
    .addColumn('resolved_by', 'text')
    .addColumn('last_message_at', 'bigint', (c) => c.notNull())
    .addColumn('message_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('hd_tickets_ward').on('hd_tickets').columns(['ward', 'last_message_at']).execute();
  await db.schema.createIndex('hd_tickets_customer').on('hd_tickets').column('customer_id').execute();

  await db.schema
    .createTable('hd_messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('ticket_id', 'text', (c) => c.notNull().references('hd_tickets.id').onDelete('cascade'))
    .addColumn('author_kind', 'text', (c) => c.notNull())
    .addColumn('author_id', 'text', (c) => c.notNull())
    .addColumn('author_name', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hd_messages_ticket').on('hd_messages').columns(['ticket_id', 'created_at']).execute();

  await db.schema
    .createTable('hd_whispers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('ticket_id', 'text', (c) => c.notNull().references('hd_tickets.id').onDelete('cascade'))
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hd_whispers_ticket').on('hd_whispers').columns(['ticket_id', 'created_at']).execute();

  await db.schema
    .createTable('hd_reads')
    .addColumn('ticket_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('last_read_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('hd_reads_pk', ['ticket_id', 'user_id'])
    .execute();

  await db.schema
    .createTable('hd_direct_messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('from_id', 'text', (c) => c.notNull())
    .addColumn('to_id', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('read_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('hd_dm_pair')
    .on('hd_direct_messages')
    .columns(['from_id', 'to_id', 'created_at'])
    .execute();
  await db.schema.createIndex('hd_dm_unread').on('hd_direct_messages').columns(['to_id', 'read_at']).execute();
}

/** The helpdesk's schema history. Never edit an applied entry; add a new one. */
export const HELPDESK_MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001-helpdesk-tables': { up: (db) => createTables(db) },
};
