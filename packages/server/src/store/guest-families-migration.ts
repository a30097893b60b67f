import { sql, type Kysely } from 'kysely';
import type { StoreDialect } from './schema.js';

/**
 * Migration 0003: a refresh family may belong to a guest. Guests are not rows of `users`, so a
 * family gets an owner column of each kind — `user_id` (now nullable, still a foreign key to
 * `users`, still cascading) or `guest_id` (no foreign key: the guest exists only as its families)
 * — and a check that exactly one is set. User families keep the integrity they had.
 *
 * Both back ends end with the same table. PostgreSQL changes it in place (dropping NOT NULL and
 * adding a nullable column rewrite no rows). SQLite cannot drop NOT NULL, so it rebuilds
 * `refresh_families` — and `refresh_tokens` with it, in one transaction:
 *
 *   create refresh_families_next, refresh_tokens_next (→ refresh_families_next); copy every row
 *   drop refresh_tokens, then refresh_families   (nothing references either any more, so the
 *                                                 implicit DELETE of DROP TABLE cascades nowhere)
 *   rename *_next → the old names                (SQLite rewrites refresh_tokens' reference)
 *   recreate the indexes
 *
 * Rebuilding the child table too is what makes this safe with `foreign_keys = ON`, which cannot
 * be switched off inside a transaction: dropping `refresh_families` while `refresh_tokens` still
 * pointed at it would delete every token through the cascade.
 */
export async function allowGuestFamilies(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  if (dialect === 'postgres') {
    await sql`ALTER TABLE refresh_families ALTER COLUMN user_id DROP NOT NULL`.execute(db);
    await db.schema.alterTable('refresh_families').addColumn('guest_id', 'text').execute();
    await db.schema.alterTable('refresh_families').addCheckConstraint('refresh_families_owner', ownerCheck).execute();
    await db.schema.createIndex('refresh_families_guest').on('refresh_families').column('guest_id').execute();
    return;
  }
  // SQLite migrations run outside a transaction (Kysely: no transactional DDL); this one needs one.
  await db.transaction().execute(async (trx) => {
    await trx.schema
      .createTable('refresh_families_next')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
      .addColumn('guest_id', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('revoke_reason', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('ip', 'text')
      .addCheckConstraint('refresh_families_owner', ownerCheck)
      .execute();
    await sql`INSERT INTO refresh_families_next
      (id, user_id, guest_id, created_at, expires_at, revoked_at, revoke_reason, user_agent, ip)
      SELECT id, user_id, NULL, created_at, expires_at, revoked_at, revoke_reason, user_agent, ip
      FROM refresh_families`.execute(trx);

    await trx.schema
      .createTable('refresh_tokens_next')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('family_id', 'text', (c) => c.notNull().references('refresh_families_next.id').onDelete('cascade'))
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .addColumn('replaced_by_id', 'text')
      .addColumn('grace_ciphertext', 'text')
      .execute();
    await sql`INSERT INTO refresh_tokens_next
      (id, family_id, user_id, token_hash, created_at, expires_at, used_at, replaced_by_id, grace_ciphertext)
      SELECT id, family_id, user_id, token_hash, created_at, expires_at, used_at, replaced_by_id, grace_ciphertext
      FROM refresh_tokens`.execute(trx);

    await trx.schema.dropTable('refresh_tokens').execute();
    await trx.schema.dropTable('refresh_families').execute();
    await trx.schema.alterTable('refresh_families_next').renameTo('refresh_families').execute();
    await trx.schema.alterTable('refresh_tokens_next').renameTo('refresh_tokens').execute();

    await trx.schema.createIndex('refresh_families_user').on('refresh_families').column('user_id').execute();
    await trx.schema.createIndex('refresh_families_guest').on('refresh_families').column('guest_id').execute();
    await trx.schema.createIndex('refresh_families_expires').on('refresh_families').column('expires_at').execute();
    await trx.schema.createIndex('refresh_families_revoked').on('refresh_families').column('revoked_at').execute();
    await trx.schema.createIndex('refresh_tokens_family').on('refresh_tokens').column('family_id').execute();
    await trx.schema.createIndex('refresh_tokens_expires').on('refresh_tokens').column('expires_at').execute();
  });
}

/** Exactly one owner: a user or a guest. */
const ownerCheck = sql`(user_id IS NULL) <> (guest_id IS NULL)`;
