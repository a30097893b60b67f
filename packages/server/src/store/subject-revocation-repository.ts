import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { SubjectRevocationRepository } from './types.js';

export function createSubjectRevocationRepository(db: Kysely<Database>): SubjectRevocationRepository {
  return {
    async revoke(userId, beforeMs) {
      await db
        .insertInto('subject_revocations')
        .values({ user_id: userId, revoked_before: beforeMs })
        .onConflict((oc) =>
          oc
            .column('user_id')
            .doUpdateSet({ revoked_before: beforeMs })
            .where('subject_revocations.revoked_before', '<', beforeMs),
        )
        .execute();
    },
    async list() {
      const rows = await db.selectFrom('subject_revocations').select(['user_id', 'revoked_before']).execute();
      return rows.map((r) => ({ userId: r.user_id, revokedBefore: Number(r.revoked_before) }));
    },
  };
}
