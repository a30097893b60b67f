import { useCallback, useReducer, useRef } from 'react';
import type { DirectMessageDto, StaffDto, TicketDetailDto, TicketDto } from '../../server/domain/dto.js';
import { initialStaffState, staffReducer, type StaffAction, type StaffState } from '../model.js';
import { useCatchUp, useHelpdeskEvent, useHelpdeskSend } from '../hooks.js';
import type { Session } from '../session.js';

/**
 * The staff pages' data: initial fetches, live events from the SDK (`@tether/react`'s `useEvent`),
 * and a catch-up fetch on every (re)connection — so whatever was published while the page was
 * offline appears, and the reducer's merge-by-id keeps anything that arrived both ways from showing
 * twice. Reads of an open ticket or conversation go as client events (`useSend`) on the socket.
 */
export function useStaffData(
  session: Session,
  me: string | null,
): {
  state: StaffState;
  dispatch: (a: StaffAction) => void;
  refreshTicket: (id: string) => Promise<void>;
  refreshPeer: (id: string) => Promise<void>;
  markTicketRead: (data: { ticketId: string }) => Promise<unknown>;
  markDmRead: (data: { peerId: string }) => Promise<unknown>;
} {
  const [state, dispatch] = useReducer(staffReducer, initialStaffState);
  const latest = useRef(state);
  latest.current = state;
  const { api, realtime } = session;

  const refreshTicket = useCallback(
    async (id: string) => {
      const detail = await api.get<TicketDetailDto>(`/api/tickets/${encodeURIComponent(id)}`);
      dispatch({ type: 'detail_loaded', detail });
    },
    [api],
  );
  const refreshPeer = useCallback(
    async (id: string) => {
      const messages = await api.get<DirectMessageDto[]>(`/api/dm/${encodeURIComponent(id)}`);
      dispatch({ type: 'dms_loaded', peerId: id, messages });
    },
    [api],
  );

  const markTicketRead = useHelpdeskSend('ticket_read', realtime);
  const markDmRead = useHelpdeskSend('dm_read', realtime);

  useCatchUp(
    realtime,
    async () => {
      if (me === null) return;
      const [open, resolved, staff] = await Promise.all([
        api.get<TicketDto[]>('/api/tickets?status=open'),
        api.get<TicketDto[]>('/api/tickets?status=resolved'),
        api.get<{ staff: StaffDto[]; unread: Record<string, number> }>('/api/staff'),
      ]);
      dispatch({ type: 'tickets_loaded', status: 'open', tickets: open });
      dispatch({ type: 'tickets_loaded', status: 'resolved', tickets: resolved });
      dispatch({ type: 'staff_loaded', staff: staff.staff, unread: staff.unread });
      const { openTicketId, openPeerId } = latest.current;
      if (openTicketId !== null) await refreshTicket(openTicketId);
      if (openPeerId !== null) await refreshPeer(openPeerId);
    },
    true,
  );

  // Live events (the reducer ignores them until `me` is known).
  useHelpdeskEvent(
    'ticket_created',
    (d) => me !== null && dispatch({ type: 'message', ticket: d.ticket, message: d.message, me }),
    realtime,
  );
  useHelpdeskEvent(
    'message_received',
    (d) => {
      if (me === null) return;
      dispatch({ type: 'message', ticket: d.ticket, message: d.message, me });
      if (d.ticket.id === latest.current.openTicketId && d.message.authorKind === 'customer') {
        void markTicketRead({ ticketId: d.ticket.id });
      }
    },
    realtime,
  );
  useHelpdeskEvent('whisper', (d) => dispatch({ type: 'whisper', whisper: d.whisper }), realtime);
  useHelpdeskEvent('ticket_resolved', (d) => dispatch({ type: 'ticket', ticket: d.ticket }), realtime);
  useHelpdeskEvent('ticket_reopened', (d) => dispatch({ type: 'ticket', ticket: d.ticket }), realtime);
  useHelpdeskEvent(
    'direct_message',
    (d) => {
      if (me === null) return;
      dispatch({ type: 'dm', message: d.message, me });
      if (d.message.toId === me && d.message.fromId === latest.current.openPeerId) {
        void markDmRead({ peerId: d.message.fromId });
      }
    },
    realtime,
  );
  useHelpdeskEvent('message_read', (d) => dispatch({ type: 'dm_read', ids: d.ids, readAt: d.readAt }), realtime);

  return { state, dispatch, refreshTicket, refreshPeer, markTicketRead, markDmRead };
}
