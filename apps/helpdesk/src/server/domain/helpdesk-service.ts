import { randomUUID } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import type { AreasRepository } from '../db/areas-repo.js';
import type { DirectMessagesRepository } from '../db/direct-messages-repo.js';
import type { TicketsRepository } from '../db/tickets-repo.js';
import type { HelpdeskPublisher } from '../realtime/events.js';
import { assertCanSeeWard } from './access.js';
import type { DirectMessageDto, MessageDto, TicketDetailDto, TicketDto, WhisperDto } from './dto.js';
import { suggestReplies } from './suggester.js';

export interface ServiceDeps {
  tickets: TicketsRepository;
  dms: DirectMessagesRepository;
  areas: AreasRepository;
  publisher: HelpdeskPublisher;
  now: () => number;
  /** Is `userId` a staff member one may write to (direct messages)? */
  isStaff: (userId: string) => Promise<boolean>;
}

export interface Actor {
  userId: string;
  name: string;
  grants: readonly string[];
}

/**
 * The helpdesk's use cases. Each change is stored first and published after, so whatever a client
 * receives live can also be fetched; a retried request with the same message id changes and
 * publishes nothing.
 */
export class HelpdeskService {
  constructor(private readonly deps: ServiceDeps) {}

  /** A customer's first message opens a ticket in a ward. */
  async openTicket(input: {
    customerId: string;
    customerName: string;
    ward: string;
    body: string;
    messageId?: string | undefined;
  }): Promise<TicketDetailDto> {
    const { tickets, areas, publisher, now } = this.deps;
    if (!areas.isWard(input.ward)) throw new TetherError('VALIDATION_FAILED', 'ward: not a known ward');
    const messageId = input.messageId ?? randomUUID();
    const existing = await tickets.findMessage(messageId);
    if (existing !== undefined) {
      // A retried open: answer with what the first attempt created.
      if (existing.authorId !== input.customerId) throw new TetherError('CONFLICT', 'Message id already used');
      return this.detail(existing.ticketId, false);
    }
    const at = now();
    const { ticket, message } = await tickets.open({
      ticketId: randomUUID(),
      ward: input.ward,
      customerId: input.customerId,
      customerName: input.customerName,
      first: {
        id: messageId,
        authorKind: 'customer',
        authorId: input.customerId,
        authorName: input.customerName,
        body: input.body,
        at,
      },
    });
    await publisher.ticketCreated(ticket, message);
    await this.whisper(ticket, message);
    return { ticket, messages: [message], whispers: [] };
  }

  async customerMessage(input: {
    customerId: string;
    ticketId: string;
    body: string;
    messageId?: string | undefined;
  }): Promise<MessageDto> {
    const ticket = await this.deps.tickets.get(input.ticketId);
    if (ticket === undefined || ticket.customerId !== input.customerId)
      throw new TetherError('NOT_FOUND', 'No such ticket');
    const { message, created } = await this.deps.tickets.addMessage({
      id: input.messageId ?? randomUUID(),
      ticketId: ticket.id,
      authorKind: 'customer',
      authorId: input.customerId,
      authorName: ticket.customerName,
      body: input.body,
      at: this.deps.now(),
    });
    if (created) {
      // A customer writing again reopens a resolved request.
      const current = ticket.status === 'resolved' ? await this.setStatus(ticket, 'open', input.customerId) : ticket;
      await this.deps.publisher.messageReceived(await this.fresh(current), message);
      await this.whisper(ticket, message);
    }
    return message;
  }

  async staffReply(
    actor: Actor,
    input: { ticketId: string; body: string; messageId?: string | undefined },
  ): Promise<MessageDto> {
    const ticket = await this.visibleTicket(actor, input.ticketId);
    const { message, created } = await this.deps.tickets.addMessage({
      id: input.messageId ?? randomUUID(),
      ticketId: ticket.id,
      authorKind: 'staff',
      authorId: actor.userId,
      authorName: actor.name,
      body: input.body,
      at: this.deps.now(),
    });
    if (created) await this.deps.publisher.messageReceived(await this.fresh(ticket), message);
    return message;
  }

  async setTicketStatus(actor: Actor, ticketId: string, status: 'open' | 'resolved'): Promise<TicketDto> {
    const ticket = await this.visibleTicket(actor, ticketId);
    return this.setStatus(ticket, status, actor.userId);
  }

  async detail(ticketId: string, withWhispers: boolean, forUser?: string): Promise<TicketDetailDto> {
    const ticket = await this.deps.tickets.get(ticketId, forUser);
    if (ticket === undefined) throw new TetherError('NOT_FOUND', 'No such ticket');
    const [messages, whispers] = await Promise.all([
      this.deps.tickets.messages(ticketId),
      withWhispers ? this.deps.tickets.whispers(ticketId) : Promise.resolve([]),
    ]);
    return { ticket, messages, whispers };
  }

  async staffDetail(actor: Actor, ticketId: string): Promise<TicketDetailDto> {
    await this.visibleTicket(actor, ticketId);
    return this.detail(ticketId, true, actor.userId);
  }

  async markTicketRead(actor: Actor, ticketId: string): Promise<void> {
    await this.visibleTicket(actor, ticketId);
    await this.deps.tickets.markRead(ticketId, actor.userId, this.deps.now());
  }

  async sendDirect(
    fromId: string,
    input: { toId: string; body: string; messageId?: string | undefined },
  ): Promise<DirectMessageDto> {
    if (input.toId === fromId) throw new TetherError('VALIDATION_FAILED', 'to: cannot message yourself');
    if (!(await this.deps.isStaff(input.toId))) throw new TetherError('NOT_FOUND', 'No such staff member');
    const { message, created } = await this.deps.dms.send({
      id: input.messageId ?? randomUUID(),
      fromId,
      toId: input.toId,
      body: input.body,
      at: this.deps.now(),
    });
    if (created) await this.deps.publisher.directMessage(message);
    return message;
  }

  async readDirect(readerId: string, peerId: string): Promise<{ ids: string[]; readAt: number }> {
    const readAt = this.deps.now();
    const ids = await this.deps.dms.markRead(readerId, peerId, readAt);
    if (ids.length > 0) await this.deps.publisher.messageRead(readerId, peerId, ids, readAt);
    return { ids, readAt };
  }

  private async visibleTicket(actor: Actor, ticketId: string): Promise<TicketDto> {
    const ticket = await this.deps.tickets.get(ticketId);
    if (ticket === undefined) throw new TetherError('NOT_FOUND', 'No such ticket');
    assertCanSeeWard(actor.grants, ticket.ward);
    return ticket;
  }

  private async setStatus(ticket: TicketDto, status: 'open' | 'resolved', by: string): Promise<TicketDto> {
    const changed = await this.deps.tickets.setStatus(ticket.id, status, by, this.deps.now());
    if (changed === undefined) return ticket;
    if (status === 'resolved') await this.deps.publisher.resolved(changed);
    else await this.deps.publisher.reopened(changed);
    return changed;
  }

  private async fresh(ticket: TicketDto): Promise<TicketDto> {
    return (await this.deps.tickets.get(ticket.id)) ?? ticket;
  }

  /** Rule-based reply suggestions for the staff on the ticket (never shown to the customer). */
  private async whisper(ticket: TicketDto, message: MessageDto): Promise<void> {
    for (const suggestion of suggestReplies(message.body)) {
      const whisper: WhisperDto = {
        id: randomUUID(),
        ticketId: ticket.id,
        messageId: message.id,
        rule: suggestion.rule,
        body: suggestion.body,
        createdAt: this.deps.now(),
      };
      await this.deps.tickets.addWhisper(whisper);
      await this.deps.publisher.whisper(ticket, whisper);
    }
  }
}
