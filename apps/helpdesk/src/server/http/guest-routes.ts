import type { FastifyInstance } from 'fastify';
import type { AreaDto, TicketDetailDto } from '../domain/dto.js';
import type { HelpdeskService } from '../domain/helpdesk-service.js';
import type { TicketsRepository } from '../db/tickets-repo.js';
import { guestOf, type Authenticate } from './caller.js';
import { idParam, MessageBody, OpenTicketBody, parse } from './schemas.js';

export interface GuestRouteDeps {
  authenticate: Authenticate;
  service: HelpdeskService;
  tickets: TicketsRepository;
  areas: () => readonly AreaDto[];
}

/** The customer page's API: a guest opens a ticket in a ward, writes, and reads its own tickets. */
export function registerGuestRoutes(app: FastifyInstance, deps: GuestRouteDeps): void {
  const { authenticate, service } = deps;

  // Public: the customer page's ward picker.
  app.get('/api/areas', async () => deps.areas());

  app.post('/api/guest/tickets', async (request, reply) => {
    const caller = await guestOf(request, authenticate);
    const body = parse(OpenTicketBody, request.body);
    const detail = await service.openTicket({
      customerId: caller.userId,
      customerName: body.name,
      ward: body.ward,
      body: body.body,
      messageId: body.id,
    });
    request.log.info(
      { event: 'ticket_opened', ticketId: detail.ticket.id, ward: detail.ticket.ward, customerId: caller.userId },
      'ticket opened',
    );
    return reply.code(201).send(detail);
  });

  app.get('/api/guest/tickets', async (request) => {
    const caller = await guestOf(request, authenticate);
    const tickets = await deps.tickets.listForCustomer(caller.userId);
    const out: TicketDetailDto[] = [];
    for (const t of tickets) out.push({ ticket: t, messages: await deps.tickets.messages(t.id), whispers: [] });
    return out;
  });

  app.post('/api/guest/tickets/:id/messages', async (request, reply) => {
    const caller = await guestOf(request, authenticate);
    const body = parse(MessageBody, request.body);
    const message = await service.customerMessage({
      customerId: caller.userId,
      ticketId: idParam(request.params),
      body: body.body,
      messageId: body.id,
    });
    return reply.code(201).send(message);
  });
}
