import { TetherError } from '@tether/protocol';
import type { Kysely, Selectable } from 'kysely';
import { wardFilter } from '../domain/access.js';
import type { MessageDto, TicketDto, WhisperDto } from '../domain/dto.js';
import type { HelpdeskDatabase, MessagesTable, TicketsTable, WhispersTable } from './schema.js';

export interface NewMessage {
  id: string;
  ticketId: string;
  authorKind: 'customer' | 'staff';
  authorId: string;
  authorName: string;
  body: string;
  at: number;
}

/** Tickets, their messages and whispers, and per-staff read marks. */
export class TicketsRepository {
  constructor(
    private readonly db: Kysely<HelpdeskDatabase>,
    /** Display name of a ward path (the area tree is loaded after the repository is made). */
    private readonly wardName: (path: string) => string,
  ) {}

  /** Opens a ticket with its first (customer) message, in one transaction. */
  async open(input: {
    ticketId: string;
    ward: string;
    customerId: string;
    customerName: string;
    first: Omit<NewMessage, 'ticketId'>;
  }): Promise<{ ticket: TicketDto; message: MessageDto }> {
    const first: NewMessage = { ...input.first, ticketId: input.ticketId };
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('hd_tickets')
        .values({
          id: input.ticketId,
          ward: input.ward,
          customer_id: input.customerId,
          customer_name: input.customerName,
          subject: first.body.slice(0, 80),
          status: 'open',
          created_at: first.at,
          updated_at: first.at,
          resolved_at: null,
          resolved_by: null,
          last_message_at: first.at,
          message_count: 1,
        })
        .execute();
      await trx.insertInto('hd_messages').values(messageRow(first)).execute();
    });
    const ticket = await this.get(input.ticketId);
    return { ticket: ticket!, message: toMessage(messageRow(first)) };
  }

  async get(id: string, forUser?: string): Promise<TicketDto | undefined> {
    const row = await this.db.selectFrom('hd_tickets').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    const unread = forUser === undefined ? 0 : ((await this.unreadCounts(forUser, [id])).get(id) ?? 0);
    return this.toTicket(row, unread);
  }

  /** The tickets a staff member's grants cover, newest activity first, with their unread counts. */
  async listForGrants(
    grants: readonly string[],
    userId: string,
    status: 'open' | 'resolved',
    limit = 200,
  ): Promise<TicketDto[]> {
    const filter = wardFilter(grants);
    let query = this.db.selectFrom('hd_tickets').selectAll().where('status', '=', status);
    if (filter !== null) {
      if (filter.exact.length === 0) return [];
      query = query.where((eb) =>
        // substr, not LIKE: scope segments may contain `_`, a LIKE wildcard, and SQLite's LIKE ignores case.
        eb.or([
          eb('ward', 'in', filter.exact),
          ...filter.prefixes.map((p) => eb(eb.fn<string>('substr', ['ward', eb.val(1), eb.val(p.length)]), '=', p)),
        ]),
      );
    }
    const rows = await query.orderBy('last_message_at', 'desc').limit(limit).execute();
    const unread = await this.unreadCounts(
      userId,
      rows.map((r) => r.id),
    );
    return rows.map((r) => this.toTicket(r, unread.get(r.id) ?? 0));
  }

  async listForCustomer(customerId: string): Promise<TicketDto[]> {
    const rows = await this.db
      .selectFrom('hd_tickets')
      .selectAll()
      .where('customer_id', '=', customerId)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => this.toTicket(r, 0));
  }

  async messages(ticketId: string): Promise<MessageDto[]> {
    const rows = await this.db
      .selectFrom('hd_messages')
      .selectAll()
      .where('ticket_id', '=', ticketId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toMessage);
  }

  async whispers(ticketId: string): Promise<WhisperDto[]> {
    const rows = await this.db
      .selectFrom('hd_whispers')
      .selectAll()
      .where('ticket_id', '=', ticketId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toWhisper);
  }

  async findMessage(id: string): Promise<MessageDto | undefined> {
    const row = await this.db.selectFrom('hd_messages').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toMessage(row);
  }

  /**
   * Adds a message unless one with its id exists. Idempotent: a retried POST (same client-chosen id)
   * returns the stored message with `created: false`, and nothing is published twice. An id taken by
   * a different ticket or author is a CONFLICT.
   */
  async addMessage(message: NewMessage): Promise<{ message: MessageDto; created: boolean }> {
    const existing = await this.findMessage(message.id);
    if (existing !== undefined) return { message: sameOrConflict(existing, message), created: false };
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('hd_messages').values(messageRow(message)).execute();
        await trx
          .updateTable('hd_tickets')
          .set((eb) => ({
            last_message_at: message.at,
            updated_at: message.at,
            message_count: eb('message_count', '+', 1),
          }))
          .where('id', '=', message.ticketId)
          .execute();
      });
    } catch (error) {
      // Two identical retries raced: the other one inserted it.
      const raced = await this.findMessage(message.id);
      if (raced === undefined) throw error;
      return { message: sameOrConflict(raced, message), created: false };
    }
    return { message: toMessage(messageRow(message)), created: true };
  }

  async addWhisper(whisper: WhisperDto): Promise<void> {
    await this.db
      .insertInto('hd_whispers')
      .values({
        id: whisper.id,
        ticket_id: whisper.ticketId,
        message_id: whisper.messageId,
        rule: whisper.rule,
        body: whisper.body,
        created_at: whisper.createdAt,
      })
      .execute();
  }

  /** Resolve or reopen. Returns undefined when the ticket was already in that state (nothing to announce). */
  async setStatus(id: string, status: 'open' | 'resolved', by: string, at: number): Promise<TicketDto | undefined> {
    const result = await this.db
      .updateTable('hd_tickets')
      .set({
        status,
        updated_at: at,
        resolved_at: status === 'resolved' ? at : null,
        resolved_by: status === 'resolved' ? by : null,
      })
      .where('id', '=', id)
      .where('status', '!=', status)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    return this.get(id);
  }

  async markRead(ticketId: string, userId: string, at: number): Promise<void> {
    await this.db
      .insertInto('hd_reads')
      .values({ ticket_id: ticketId, user_id: userId, last_read_at: at })
      .onConflict((oc) => oc.columns(['ticket_id', 'user_id']).doUpdateSet({ last_read_at: at }))
      .execute();
  }

  /** Customer messages newer than the user's read mark, per ticket. */
  private async unreadCounts(userId: string, ticketIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (ticketIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('hd_messages as m')
      .leftJoin('hd_reads as r', (join) => join.onRef('r.ticket_id', '=', 'm.ticket_id').on('r.user_id', '=', userId))
      .select(['m.ticket_id', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('m.ticket_id', 'in', ticketIds)
      .where('m.author_kind', '=', 'customer')
      .where((eb) => eb.or([eb('r.last_read_at', 'is', null), eb('m.created_at', '>', eb.ref('r.last_read_at'))]))
      .groupBy('m.ticket_id')
      .execute();
    for (const r of rows) out.set(r.ticket_id, Number(r.n));
    return out;
  }

  private toTicket(row: Selectable<TicketsTable>, unread: number): TicketDto {
    return {
      id: row.id,
      ward: row.ward,
      wardName: this.wardName(row.ward),
      customerId: row.customer_id,
      customerName: row.customer_name,
      subject: row.subject,
      status: row.status,
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      resolvedAt: row.resolved_at === null ? null : Number(row.resolved_at),
      resolvedBy: row.resolved_by,
      lastMessageAt: Number(row.last_message_at),
      messageCount: Number(row.message_count),
      unread,
    };
  }
}

function messageRow(m: NewMessage): Selectable<MessagesTable> {
  return {
    id: m.id,
    ticket_id: m.ticketId,
    author_kind: m.authorKind,
    author_id: m.authorId,
    author_name: m.authorName,
    body: m.body,
    created_at: m.at,
  };
}

function toMessage(row: Selectable<MessagesTable>): MessageDto {
  return {
    id: row.id,
    ticketId: row.ticket_id,
    authorKind: row.author_kind,
    authorId: row.author_id,
    authorName: row.author_name,
    body: row.body,
    createdAt: Number(row.created_at),
  };
}

function toWhisper(row: Selectable<WhispersTable>): WhisperDto {
  return {
    id: row.id,
    ticketId: row.ticket_id,
    messageId: row.message_id,
    rule: row.rule,
    body: row.body,
    createdAt: Number(row.created_at),
  };
}

function sameOrConflict(existing: MessageDto, attempt: NewMessage): MessageDto {
  if (existing.ticketId !== attempt.ticketId || existing.authorId !== attempt.authorId) {
    throw new TetherError('CONFLICT', 'Message id already used');
  }
  return existing;
}
