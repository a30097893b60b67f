import type { Kysely } from 'kysely';
import { toFamily, toToken } from './rows.js';
import type { Database } from './schema.js';
import type { RefreshFamilyRecord, RefreshRepository, RefreshTokenRecord } from './types.js';

export function createRefreshRepository(db: Kysely<Database>): RefreshRepository {
  return {
    async createFamily(input): Promise<RefreshFamilyRecord> {
      const { guest = false, ...family } = input;
      await db
        .insertInto('refresh_families')
        .values({
          id: family.id,
          user_id: guest ? null : family.userId,
          guest_id: guest ? family.userId : null,
          created_at: family.createdAt,
          expires_at: family.expiresAt,
          revoked_at: null,
          revoke_reason: null,
          user_agent: family.userAgent,
          ip: family.ip,
        })
        .execute();
      return { ...family, guest, revokedAt: null, revokeReason: null };
    },

    async getFamily(id: string): Promise<RefreshFamilyRecord | undefined> {
      const row = await db.selectFrom('refresh_families').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toFamily(row);
    },

    async insertToken(token): Promise<void> {
      await db
        .insertInto('refresh_tokens')
        .values({
          id: token.id,
          family_id: token.familyId,
          user_id: token.userId,
          token_hash: token.tokenHash,
          created_at: token.createdAt,
          expires_at: token.expiresAt,
          used_at: null,
          replaced_by_id: null,
          grace_ciphertext: null,
        })
        .execute();
    },

    async findByHash(tokenHash: string): Promise<RefreshTokenRecord | undefined> {
      const row = await db
        .selectFrom('refresh_tokens')
        .selectAll()
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst();
      return row === undefined ? undefined : toToken(row);
    },

    async markUsed(id, usedAt, replacedById, graceCiphertext): Promise<boolean> {
      // The `used_at IS NULL` guard makes this a compare-and-set: of two concurrent callers, the
      // database lets exactly one update the row (PostgreSQL re-checks the guard after the row lock).
      const result = await db
        .updateTable('refresh_tokens')
        .set({ used_at: usedAt, replaced_by_id: replacedById, grace_ciphertext: graceCiphertext })
        .where('id', '=', id)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async rotate(usedId, usedAt, next, graceCiphertext): Promise<boolean> {
      // One transaction: the successor exists exactly when the old token is marked used, so a
      // concurrent request that reads the grace pair can use its refresh token at once.
      return db.transaction().execute(async (trx) => {
        const marked = await trx
          .updateTable('refresh_tokens')
          .set({ used_at: usedAt, replaced_by_id: next.id, grace_ciphertext: graceCiphertext })
          .where('id', '=', usedId)
          .where('used_at', 'is', null)
          .executeTakeFirst();
        if (Number(marked.numUpdatedRows) !== 1) return false;
        await trx
          .insertInto('refresh_tokens')
          .values({
            id: next.id,
            family_id: next.familyId,
            user_id: next.userId,
            token_hash: next.tokenHash,
            created_at: next.createdAt,
            expires_at: next.expiresAt,
            used_at: null,
            replaced_by_id: null,
            grace_ciphertext: null,
          })
          .execute();
        return true;
      });
    },

    async revokeFamily(id: string, reason: string, at: number): Promise<boolean> {
      const result = await db
        .updateTable('refresh_families')
        .set({ revoked_at: at, revoke_reason: reason })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async revokeUserFamilies(userId: string, reason: string, at: number): Promise<string[]> {
      const rows = await db
        .updateTable('refresh_families')
        .set({ revoked_at: at, revoke_reason: reason })
        .where((eb) => eb.or([eb('user_id', '=', userId), eb('guest_id', '=', userId)]))
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', at)
        .returning('id')
        .execute();
      return rows.map((r) => r.id);
    },

    async listRevokedFamiliesSince(sinceMs: number) {
      const rows = await db
        .selectFrom('refresh_families')
        .select(['id', 'revoked_at'])
        .where('revoked_at', '>=', sinceMs)
        .execute();
      return rows.map((r) => ({ id: r.id, revokedAt: r.revoked_at === null ? null : Number(r.revoked_at) }));
    },

    async purgeExpired(beforeMs: number): Promise<number> {
      // Tokens first, so the count is right on both back ends (the cascade would delete them silently).
      const tokens = await db.deleteFrom('refresh_tokens').where('expires_at', '<', beforeMs).executeTakeFirst();
      const families = await db.deleteFrom('refresh_families').where('expires_at', '<', beforeMs).executeTakeFirst();
      return Number(tokens.numDeletedRows) + Number(families.numDeletedRows);
    },
  };
}
