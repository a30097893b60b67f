import type { Kysely } from 'kysely';
import type { Clock } from '../util/clock.js';
import { toAuditEvent } from './rows.js';
import type { Database } from './schema.js';
import type { AuditEvent, AuditRepository } from './types.js';

export function createAuditRepository(db: Kysely<Database>, clock: Clock): AuditRepository {
  return {
    async record(event): Promise<void> {
      await db
        .insertInto('audit_log')
        .values({
          type: event.type,
          user_id: event.userId,
          family_id: event.familyId,
          ip: event.ip,
          detail: event.detail === null ? null : JSON.stringify(event.detail),
          at: event.at ?? clock.now(),
        })
        .execute();
    },

    async list(options = {}): Promise<AuditEvent[]> {
      let query = db.selectFrom('audit_log').selectAll();
      if (options.userId !== undefined) query = query.where('user_id', '=', options.userId);
      if (options.type !== undefined) query = query.where('type', '=', options.type);
      const rows = await query
        .orderBy('id', 'desc')
        .limit(options.limit ?? 100)
        .execute();
      return rows.map(toAuditEvent);
    },

    async purge(beforeMs): Promise<number> {
      const result = await db.deleteFrom('audit_log').where('at', '<', beforeMs).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
