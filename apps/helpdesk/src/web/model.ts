import type {
  DirectMessageDto,
  MessageDto,
  StaffDto,
  TicketDetailDto,
  TicketDto,
  WhisperDto,
} from '../server/domain/dto.js';

/**
 * The staff pages' state and its one reducer. Every list is keyed by id, so a message that arrives
 * live *and* in a catch-up fetch (after a reconnect) is shown once; merging never loses a message
 * either side has.
 */
export interface StaffState {
  tickets: Record<string, TicketDto>;
  messages: Record<string, MessageDto[]>;
  whispers: Record<string, WhisperDto[]>;
  openTicketId: string | null;
  staff: StaffDto[];
  dms: Record<string, DirectMessageDto[]>;
  dmUnread: Record<string, number>;
  openPeerId: string | null;
}

export const initialStaffState: StaffState = {
  tickets: {},
  messages: {},
  whispers: {},
  openTicketId: null,
  staff: [],
  dms: {},
  dmUnread: {},
  openPeerId: null,
};

export type StaffAction =
  | { type: 'tickets_loaded'; tickets: TicketDto[]; status: 'open' | 'resolved' }
  | { type: 'ticket'; ticket: TicketDto }
  | { type: 'message'; ticket: TicketDto; message: MessageDto; me: string }
  | { type: 'whisper'; whisper: WhisperDto }
  | { type: 'detail_loaded'; detail: TicketDetailDto }
  | { type: 'open_ticket'; id: string | null }
  | { type: 'staff_loaded'; staff: StaffDto[]; unread: Record<string, number> }
  | { type: 'dm'; message: DirectMessageDto; me: string }
  | { type: 'dms_loaded'; peerId: string; messages: DirectMessageDto[] }
  | { type: 'dm_read'; ids: string[]; readAt: number }
  | { type: 'open_peer'; id: string | null };

/** Adds items to a list by id (a newer copy replaces an older one), kept in time order. */
export function mergeById<T extends { id: string; createdAt: number }>(
  list: readonly T[] | undefined,
  items: readonly T[],
): T[] {
  const byId = new Map((list ?? []).map((i) => [i.id, i]));
  for (const i of items) byId.set(i.id, i);
  return [...byId.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
}

export function staffReducer(state: StaffState, action: StaffAction): StaffState {
  switch (action.type) {
    case 'tickets_loaded': {
      // The server's list is the truth for its status; keep the other status's tickets.
      const tickets: Record<string, TicketDto> = {};
      for (const t of Object.values(state.tickets)) if (t.status !== action.status) tickets[t.id] = t;
      for (const t of action.tickets) tickets[t.id] = t.id === state.openTicketId ? { ...t, unread: 0 } : t;
      return { ...state, tickets };
    }
    case 'ticket': {
      const known = state.tickets[action.ticket.id];
      const unread = known === undefined ? (action.ticket.id === state.openTicketId ? 0 : 1) : known.unread;
      return { ...state, tickets: { ...state.tickets, [action.ticket.id]: { ...action.ticket, unread } } };
    }
    case 'message': {
      const { message, ticket } = action;
      const had = (state.messages[ticket.id] ?? []).some((m) => m.id === message.id);
      const known = state.tickets[ticket.id];
      const counts = !had && message.authorKind === 'customer' && ticket.id !== state.openTicketId;
      const unread = (known?.unread ?? 0) + (counts ? 1 : 0);
      return {
        ...state,
        tickets: { ...state.tickets, [ticket.id]: { ...ticket, unread } },
        messages:
          state.messages[ticket.id] === undefined && ticket.id !== state.openTicketId
            ? state.messages
            : { ...state.messages, [ticket.id]: mergeById(state.messages[ticket.id], [message]) },
      };
    }
    case 'whisper': {
      const id = action.whisper.ticketId;
      if (state.whispers[id] === undefined && id !== state.openTicketId) return state;
      return { ...state, whispers: { ...state.whispers, [id]: mergeById(state.whispers[id], [action.whisper]) } };
    }
    case 'detail_loaded': {
      const { ticket, messages, whispers } = action.detail;
      return {
        ...state,
        tickets: {
          ...state.tickets,
          [ticket.id]: ticket.id === state.openTicketId ? { ...ticket, unread: 0 } : ticket,
        },
        messages: { ...state.messages, [ticket.id]: mergeById(state.messages[ticket.id], messages) },
        whispers: { ...state.whispers, [ticket.id]: mergeById(state.whispers[ticket.id], whispers) },
      };
    }
    case 'open_ticket': {
      const tickets = { ...state.tickets };
      const t = action.id === null ? undefined : tickets[action.id];
      if (t !== undefined) tickets[t.id] = { ...t, unread: 0 };
      return { ...state, openTicketId: action.id, tickets };
    }
    case 'staff_loaded':
      return { ...state, staff: action.staff, dmUnread: action.unread };
    case 'dm': {
      const { message, me } = action;
      const peer = message.fromId === me ? message.toId : message.fromId;
      const had = (state.dms[peer] ?? []).some((m) => m.id === message.id);
      const counts = !had && message.toId === me && peer !== state.openPeerId;
      return {
        ...state,
        dms: { ...state.dms, [peer]: mergeById(state.dms[peer], [message]) },
        dmUnread: counts ? { ...state.dmUnread, [peer]: (state.dmUnread[peer] ?? 0) + 1 } : state.dmUnread,
      };
    }
    case 'dms_loaded':
      return { ...state, dms: { ...state.dms, [action.peerId]: mergeById(state.dms[action.peerId], action.messages) } };
    case 'dm_read': {
      const ids = new Set(action.ids);
      const dms: Record<string, DirectMessageDto[]> = {};
      for (const [peer, list] of Object.entries(state.dms))
        dms[peer] = list.map((m) => (ids.has(m.id) && m.readAt === null ? { ...m, readAt: action.readAt } : m));
      return { ...state, dms };
    }
    case 'open_peer':
      return {
        ...state,
        openPeerId: action.id,
        dmUnread: action.id === null ? state.dmUnread : { ...state.dmUnread, [action.id]: 0 },
      };
  }
}
