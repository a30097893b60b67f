import { useCallback, useEffect, useReducer, useRef } from 'react';
import type { DirectMessageDto, StaffDto, TicketDetailDto, TicketDto } from '../../server/domain/dto.js';
import { initialStaffState, staffReducer, type StaffAction, type StaffState } from '../model.js';
import type { Session } from '../session.js';

/**
 * The staff pages' data: initial fetches, live events from the SDK, and a catch-up fetch on every
 * (re)connection — so whatever was published while the page was offline appears, and the reducer's
 * merge-by-id keeps anything that arrived both ways from showing twice.
 */
export function useStaffData(
  session: Session,
  me: string | null,
): {
  state: StaffState;
  dispatch: (a: StaffAction) => void;
  refreshTicket: (id: string) => Promise<void>;
  refreshPeer: (id: string) => Promise<void>;
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

  useEffect(() => {
    if (me === null) return;
    const catchUp = async () => {
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
    };
    const safely = () => {
      catchUp().catch(() => undefined); // Offline again: the next session catches up.
    };
    const markRead = (ticketId: string) => {
      api.post(`/api/tickets/${encodeURIComponent(ticketId)}/read`).catch(() => undefined);
    };
    const offs = [
      realtime.onSession(safely),
      // The first message carries the ticket: one action, so the new ticket counts one unread.
      realtime.on('ticket_created', (d) => dispatch({ type: 'message', ticket: d.ticket, message: d.message, me })),
      realtime.on('message_received', (d) => {
        dispatch({ type: 'message', ticket: d.ticket, message: d.message, me });
        if (d.ticket.id === latest.current.openTicketId && d.message.authorKind === 'customer') markRead(d.ticket.id);
      }),
      realtime.on('whisper', (d) => dispatch({ type: 'whisper', whisper: d.whisper })),
      realtime.on('ticket_resolved', (d) => dispatch({ type: 'ticket', ticket: d.ticket })),
      realtime.on('ticket_reopened', (d) => dispatch({ type: 'ticket', ticket: d.ticket })),
      realtime.on('direct_message', (d) => {
        dispatch({ type: 'dm', message: d.message, me });
        if (d.message.toId === me && d.message.fromId === latest.current.openPeerId) {
          api.post(`/api/dm/${encodeURIComponent(d.message.fromId)}/read`).catch(() => undefined);
        }
      }),
      realtime.on('message_read', (d) => dispatch({ type: 'dm_read', ids: d.ids, readAt: d.readAt })),
    ];
    safely();
    return () => {
      for (const off of offs) off();
    };
  }, [api, realtime, me, refreshTicket, refreshPeer]);

  return { state, dispatch, refreshTicket, refreshPeer };
}
