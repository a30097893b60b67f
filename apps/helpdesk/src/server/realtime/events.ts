import { randomUUID } from 'node:crypto';
import type { PublishRequest, PublishResult } from '@tether/protocol';
import type {
  DirectMessageDto,
  HelpdeskEvents,
  MessageDto,
  PublishedEventDto,
  TicketDto,
  WhisperDto,
} from '../domain/dto.js';

export type Publish = (request: PublishRequest) => Promise<PublishResult>;

/**
 * Every realtime event the helpdesk sends, addressed by Tether's rules: ticket events to the
 * ticket's ward scope (admins `*`, and EOs of the ward, its district or its region, once per
 * device), plus the customer's user id where the customer should see it; direct messages to the
 * two users. Message events reuse the message id as the Tether event id, so a client that gets the
 * same message live and from a catch-up fetch shows it once.
 *
 * Events addressed to users by id are the ones Tether records deliveries and receipts of: each one
 * published is reported to `onUserEvent` (the dashboard's "recent events", where an admin finds the
 * id to look up).
 */
export class HelpdeskPublisher {
  constructor(
    private readonly publish: Publish,
    private readonly onUserEvent?: (event: PublishedEventDto) => void,
  ) {}

  private send<E extends keyof HelpdeskEvents>(
    event: E,
    data: HelpdeskEvents[E],
    to: PublishRequest['to'],
    id: string,
  ): Promise<PublishResult> {
    const published = this.publish({ event, data: data as unknown as Record<string, unknown>, to, id });
    const users = to.users ?? [];
    if (this.onUserEvent === undefined || users.length === 0) return published;
    return published.then((result) => {
      this.onUserEvent?.({ id: result.id, event, users: [...users], at: Date.now(), delivered: result.delivered });
      return result;
    });
  }

  ticketCreated(ticket: TicketDto, message: MessageDto): Promise<PublishResult> {
    return this.send(
      'ticket_created',
      { ticket: staffless(ticket), message },
      { scopes: [ticket.ward], users: [ticket.customerId] },
      ticket.id,
    );
  }

  messageReceived(ticket: TicketDto, message: MessageDto): Promise<PublishResult> {
    return this.send(
      'message_received',
      { ticket: staffless(ticket), message },
      { scopes: [ticket.ward], users: [ticket.customerId] },
      message.id,
    );
  }

  /** Staff only: whispers never reach the customer. */
  whisper(ticket: TicketDto, whisper: WhisperDto): Promise<PublishResult> {
    return this.send('whisper', { whisper }, { scopes: [ticket.ward] }, whisper.id);
  }

  resolved(ticket: TicketDto): Promise<PublishResult> {
    return this.send(
      'ticket_resolved',
      { ticket: staffless(ticket) },
      { scopes: [ticket.ward], users: [ticket.customerId] },
      randomUUID(),
    );
  }

  reopened(ticket: TicketDto): Promise<PublishResult> {
    return this.send(
      'ticket_reopened',
      { ticket: staffless(ticket) },
      { scopes: [ticket.ward], users: [ticket.customerId] },
      randomUUID(),
    );
  }

  directMessage(message: DirectMessageDto): Promise<PublishResult> {
    return this.send('direct_message', { message }, { users: [message.fromId, message.toId] }, message.id);
  }

  messageRead(readerId: string, peerId: string, ids: string[], readAt: number): Promise<PublishResult> {
    return this.send('message_read', { readerId, peerId, ids, readAt }, { users: [readerId, peerId] }, randomUUID());
  }
}

/** A broadcast goes to many staff: the per-user unread count in it would be wrong for all but one. */
function staffless(ticket: TicketDto): TicketDto {
  return { ...ticket, unread: 0 };
}
