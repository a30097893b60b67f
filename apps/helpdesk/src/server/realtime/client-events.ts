import type { Gateway } from '@tether/server';
import { z } from 'zod';
import type { HelpdeskSends } from '../domain/dto.js';
import type { HelpdeskService } from '../domain/helpdesk-service.js';
import { actorOf, asStaff, callerFromPrincipal } from '../http/caller.js';
import { parse } from '../http/schemas.js';

const id = z.string().min(1).max(200);
const schemas: { [K in keyof HelpdeskSends]: z.ZodType<HelpdeskSends[K]> } = {
  ticket_read: z.object({ ticketId: id }),
  dm_read: z.object({ peerId: id }),
};

/**
 * The staff page's client events (`HelpdeskSends`), handled on the gateway's realtime connections:
 * the sender is the connection's verified principal (its live grants), so the same rules as the
 * HTTP routes apply — staff only, a ticket only within the sender's grants. A bad payload answers
 * VALIDATION_FAILED, a guest FORBIDDEN, in the send's ack.
 */
export function registerClientEvents(gateway: Pick<Gateway, 'onClientEvent'>, service: HelpdeskService): () => void {
  const offs = [
    gateway.onClientEvent('ticket_read', async (ctx, data) => {
      const { ticketId } = parse(schemas.ticket_read, data);
      await service.markTicketRead(actorOf(asStaff(callerFromPrincipal(ctx.principal))), ticketId);
      return null;
    }),
    gateway.onClientEvent('dm_read', async (ctx, data) => {
      const { peerId } = parse(schemas.dm_read, data);
      const reader = asStaff(callerFromPrincipal(ctx.principal));
      return service.readDirect(reader.userId, peerId);
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}
