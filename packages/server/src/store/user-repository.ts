import { randomUUID } from 'node:crypto';
import type { Kysely, Updateable } from 'kysely';
import type { Clock } from '../util/clock.js';
import { conflict, isUniqueViolation, toUser } from './rows.js';
import type { Database, UsersTable } from './schema.js';
import type { NewUser, UserPatch, UserRecord, UserRepository } from './types.js';

/**
 * The canonical form of an email: trimmed and lowercased, so `Ann@X.org` and `ann@x.org` are one
 * account. Emails are stored in this form (and `email_lower` keeps the unique key explicit).
 */
export function emailKey(email: string): string {
  return email.trim().toLowerCase();
}

export function createUserRepository(db: Kysely<Database>, clock: Clock): UserRepository {
  const findById = async (id: string): Promise<UserRecord | undefined> => {
    const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toUser(row);
  };

  return {
    async create(user: NewUser): Promise<UserRecord> {
      const now = clock.now();
      const id = user.id ?? randomUUID();
      try {
        await db
          .insertInto('users')
          .values({
            id,
            email: emailKey(user.email),
            email_lower: emailKey(user.email),
            name: user.name,
            role: user.role,
            scopes: JSON.stringify(user.scopes),
            channels: JSON.stringify(user.channels),
            active: user.active === false ? 0 : 1,
            password_hash: user.passwordHash,
            tokens_revoked_before: null,
            created_at: now,
            updated_at: now,
          })
          .execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict('A user with this email (or id) already exists', err);
        throw err;
      }
      const created = await findById(id);
      if (created === undefined) throw new Error(`user ${id} vanished after insert`);
      return created;
    },

    findById,

    async findByEmail(email: string): Promise<UserRecord | undefined> {
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('email_lower', '=', emailKey(email))
        .executeTakeFirst();
      return row === undefined ? undefined : toUser(row);
    },

    async update(id: string, patch: UserPatch): Promise<UserRecord | undefined> {
      const values: Updateable<UsersTable> = { updated_at: clock.now() };
      if (patch.name !== undefined) values.name = patch.name;
      if (patch.role !== undefined) values.role = patch.role;
      if (patch.scopes !== undefined) values.scopes = JSON.stringify(patch.scopes);
      if (patch.channels !== undefined) values.channels = JSON.stringify(patch.channels);
      if (patch.active !== undefined) values.active = patch.active ? 1 : 0;
      if (patch.passwordHash !== undefined) values.password_hash = patch.passwordHash;
      if (patch.tokensRevokedBefore !== undefined) values.tokens_revoked_before = patch.tokensRevokedBefore;
      const result = await db.updateTable('users').set(values).where('id', '=', id).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return undefined;
      return findById(id);
    },

    async list(options: { limit?: number; offset?: number } = {}): Promise<UserRecord[]> {
      const rows = await db
        .selectFrom('users')
        .selectAll()
        .orderBy('created_at')
        .orderBy('id')
        .limit(options.limit ?? 100)
        .offset(options.offset ?? 0)
        .execute();
      return rows.map(toUser);
    },

    async listRevoked() {
      const rows = await db
        .selectFrom('users')
        .select(['id', 'active', 'tokens_revoked_before'])
        .where((eb) => eb.or([eb('active', '=', 0), eb('tokens_revoked_before', 'is not', null)]))
        .execute();
      return rows.map((r) => ({
        id: r.id,
        active: Number(r.active) === 1,
        tokensRevokedBefore: r.tokens_revoked_before === null ? null : Number(r.tokens_revoked_before),
      }));
    },
  };
}
