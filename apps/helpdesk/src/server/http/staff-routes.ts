import type { FastifyInstance } from 'fastify';
import type { HelpdeskService } from '../domain/helpdesk-service.js';
import type { MeDto, StaffDto } from '../domain/dto.js';
import type { DirectMessagesRepository } from '../db/direct-messages-repo.js';
import type { TicketsRepository } from '../db/tickets-repo.js';
import { actorOf, staffOf, type Authenticate } from './caller.js';
import { idParam, MessageBody, parse, StatusQuery } from './schemas.js';

export interface StaffRouteDeps {
  authenticate: Authenticate;
  service: HelpdeskService;
  tickets: TicketsRepository;
  /** The staff directory (built-in users with a staff role). */
  listStaff: () => Promise<StaffDto[]>;
  dms: DirectMessagesRepository;
  /** The areas grants cover, by their display names. */
  describeArea: (scopes: readonly string[]) => string;
}

/** Inbox, ticket view, replies, resolve/reopen and direct messages: staff only. */
export function registerStaffRoutes(app: FastifyInstance, deps: StaffRouteDeps): void {
  const { authenticate, service } = deps;

  app.get('/api/me', async (request) => {
    const caller = await staffOf(request, authenticate);
    const claims = caller.principal.claims;
    const me: MeDto = {
      id: caller.userId,
      name: caller.name,
      email: typeof claims['email'] === 'string' ? claims['email'] : '',
      role: caller.principal.role ?? 'staff',
      scopes: caller.principal.scopes,
      area: deps.describeArea(caller.principal.scopes),
      isAdmin: caller.principal.scopes.includes('*'),
    };
    return me;
  });

  app.get('/api/tickets', async (request) => {
    const caller = await staffOf(request, authenticate);
    const { status } = parse(StatusQuery, request.query);
    return deps.tickets.listForGrants(caller.principal.scopes, caller.userId, status);
  });

  app.get('/api/tickets/:id', async (request) => {
    const caller = await staffOf(request, authenticate);
    return service.staffDetail(actorOf(caller), idParam(request.params));
  });

  app.post('/api/tickets/:id/messages', async (request, reply) => {
    const caller = await staffOf(request, authenticate);
    const body = parse(MessageBody, request.body);
    const message = await service.staffReply(actorOf(caller), {
      ticketId: idParam(request.params),
      body: body.body,
      messageId: body.id,
    });
    return reply.code(201).send(message);
  });

  app.post('/api/tickets/:id/resolve', async (request) => {
    const caller = await staffOf(request, authenticate);
    const ticket = await service.setTicketStatus(actorOf(caller), idParam(request.params), 'resolved');
    request.log.info(
      { event: 'ticket_status', ticketId: ticket.id, status: ticket.status, by: caller.userId },
      'ticket status changed',
    );
    return ticket;
  });

  app.post('/api/tickets/:id/reopen', async (request) => {
    const caller = await staffOf(request, authenticate);
    const ticket = await service.setTicketStatus(actorOf(caller), idParam(request.params), 'open');
    request.log.info(
      { event: 'ticket_status', ticketId: ticket.id, status: ticket.status, by: caller.userId },
      'ticket status changed',
    );
    return ticket;
  });

  app.post('/api/tickets/:id/read', async (request, reply) => {
    const caller = await staffOf(request, authenticate);
    await service.markTicketRead(actorOf(caller), idParam(request.params));
    return reply.code(204).send();
  });

  app.get('/api/staff', async (request) => {
    const caller = await staffOf(request, authenticate);
    const [staff, unread] = await Promise.all([deps.listStaff(), deps.dms.unreadBySender(caller.userId)]);
    return { staff: staff.filter((s) => s.id !== caller.userId), unread };
  });

  app.get('/api/dm/:peerId', async (request) => {
    const caller = await staffOf(request, authenticate);
    return deps.dms.conversation(caller.userId, idParam(request.params, 'peerId'));
  });

  app.post('/api/dm/:peerId', async (request, reply) => {
    const caller = await staffOf(request, authenticate);
    const body = parse(MessageBody, request.body);
    const message = await service.sendDirect(caller.userId, {
      toId: idParam(request.params, 'peerId'),
      body: body.body,
      messageId: body.id,
    });
    return reply.code(201).send(message);
  });

  app.post('/api/dm/:peerId/read', async (request) => {
    const caller = await staffOf(request, authenticate);
    return service.readDirect(caller.userId, idParam(request.params, 'peerId'));
  });
}
