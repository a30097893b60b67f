import type { Kysely } from 'kysely';
import { allowGuestFamilies } from './guest-families-migration.js';
import { serialId, type DialectMigration } from './migrations.js';
import type { StoreDialect } from './schema.js';

/** The table Tether records its own migrations in. */
export const CORE_MIGRATION_TABLE = 'tether_migrations';

async function createAuthTables(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('email_lower', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('channels', 'text', (c) => c.notNull())
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('tokens_revoked_before', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('refresh_families')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('revoke_reason', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('ip', 'text')
    .execute();
  await db.schema.createIndex('refresh_families_user').on('refresh_families').column('user_id').execute();
  await db.schema.createIndex('refresh_families_expires').on('refresh_families').column('expires_at').execute();
  await db.schema.createIndex('refresh_families_revoked').on('refresh_families').column('revoked_at').execute();

  await db.schema
    .createTable('refresh_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('family_id', 'text', (c) => c.notNull().references('refresh_families.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('replaced_by_id', 'text')
    .addColumn('grace_ciphertext', 'text')
    .execute();
  await db.schema.createIndex('refresh_tokens_family').on('refresh_tokens').column('family_id').execute();
  await db.schema.createIndex('refresh_tokens_expires').on('refresh_tokens').column('expires_at').execute();

  await db.schema
    .createTable('audit_log')
    .$call(serialId(dialect))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('family_id', 'text')
    .addColumn('ip', 'text')
    .addColumn('detail', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
  await db.schema.createIndex('audit_log_user').on('audit_log').columns(['user_id', 'id']).execute();
}

/** Kicks of subjects issued by an app's own backend must survive a restart like those of built-in users. */
async function createSubjectRevocations(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('subject_revocations')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('revoked_before', 'bigint', (c) => c.notNull())
    .execute();
}

/** Tether's own schema history. Never edit an applied entry; add a new one. */
export const CORE_MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001-auth-tables': { up: createAuthTables },
  '0002-subject-revocations': { up: createSubjectRevocations },
  '0003-guest-refresh-families': { up: allowGuestFamilies },
};
