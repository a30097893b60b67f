import { TetherError } from '@tether/protocol';
import type { Kysely, Selectable } from 'kysely';
import type { DirectMessageDto } from '../domain/dto.js';
import type { DirectMessagesTable, HelpdeskDatabase } from './schema.js';

/** Direct messages between two staff members, with read receipts. */
export class DirectMessagesRepository {
  constructor(private readonly db: Kysely<HelpdeskDatabase>) {}

  /** Idempotent on the client-chosen id, like ticket messages. */
  async send(input: {
    id: string;
    fromId: string;
    toId: string;
    body: string;
    at: number;
  }): Promise<{ message: DirectMessageDto; created: boolean }> {
    const existing = await this.find(input.id);
    if (existing !== undefined) return { message: sameOrConflict(existing, input), created: false };
    try {
      await this.db
        .insertInto('hd_direct_messages')
        .values({
          id: input.id,
          from_id: input.fromId,
          to_id: input.toId,
          body: input.body,
          created_at: input.at,
          read_at: null,
        })
        .execute();
    } catch (error) {
      const raced = await this.find(input.id);
      if (raced === undefined) throw error;
      return { message: sameOrConflict(raced, input), created: false };
    }
    return {
      message: {
        id: input.id,
        fromId: input.fromId,
        toId: input.toId,
        body: input.body,
        createdAt: input.at,
        readAt: null,
      },
      created: true,
    };
  }

  async find(id: string): Promise<DirectMessageDto | undefined> {
    const row = await this.db.selectFrom('hd_direct_messages').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toDm(row);
  }

  /** The conversation between two users, oldest first (the latest `limit`). */
  async conversation(a: string, b: string, limit = 200): Promise<DirectMessageDto[]> {
    const rows = await this.db
      .selectFrom('hd_direct_messages')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([eb('from_id', '=', a), eb('to_id', '=', b)]),
          eb.and([eb('from_id', '=', b), eb('to_id', '=', a)]),
        ]),
      )
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse().map(toDm);
  }

  /** Marks what `peerId` sent to `readerId` as read; returns the ids newly marked. */
  async markRead(readerId: string, peerId: string, at: number): Promise<string[]> {
    const unread = await this.db
      .selectFrom('hd_direct_messages')
      .select('id')
      .where('to_id', '=', readerId)
      .where('from_id', '=', peerId)
      .where('read_at', 'is', null)
      .execute();
    if (unread.length === 0) return [];
    const ids = unread.map((r) => r.id);
    await this.db
      .updateTable('hd_direct_messages')
      .set({ read_at: at })
      .where('id', 'in', ids)
      .where('read_at', 'is', null)
      .execute();
    return ids;
  }

  /** Unread counts per sender, for the user. */
  async unreadBySender(userId: string): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('hd_direct_messages')
      .select(['from_id', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('to_id', '=', userId)
      .where('read_at', 'is', null)
      .groupBy('from_id')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.from_id, Number(r.n)]));
  }
}

function toDm(row: Selectable<DirectMessagesTable>): DirectMessageDto {
  return {
    id: row.id,
    fromId: row.from_id,
    toId: row.to_id,
    body: row.body,
    createdAt: Number(row.created_at),
    readAt: row.read_at === null ? null : Number(row.read_at),
  };
}

function sameOrConflict(existing: DirectMessageDto, attempt: { fromId: string; toId: string }): DirectMessageDto {
  if (existing.fromId !== attempt.fromId || existing.toId !== attempt.toId)
    throw new TetherError('CONFLICT', 'Message id already used');
  return existing;
}
