import { describe, expect, it } from 'vitest';
import type { MessageDto, TicketDto } from '../server/domain/dto.js';
import { initialStaffState, mergeById, staffReducer } from './model.js';

const ticket = (id: string, over: Partial<TicketDto> = {}): TicketDto => ({
  id,
  ward: 'ke/a/b/c',
  wardName: 'C',
  customerId: 'guest:1',
  customerName: 'Mary',
  subject: 's',
  status: 'open',
  createdAt: 1,
  updatedAt: 1,
  resolvedAt: null,
  resolvedBy: null,
  lastMessageAt: 1,
  messageCount: 1,
  unread: 0,
  ...over,
});
const msg = (id: string, at: number, authorKind: 'customer' | 'staff' = 'customer'): MessageDto => ({
  id,
  ticketId: 't1',
  authorKind,
  authorId: 'x',
  authorName: 'x',
  body: id,
  createdAt: at,
});

describe('staffReducer', () => {
  it('shows a message once when it arrives live and again in a catch-up fetch', () => {
    let s = staffReducer(initialStaffState, { type: 'open_ticket', id: 't1' });
    s = staffReducer(s, { type: 'message', ticket: ticket('t1'), message: msg('m2', 2), me: 'me' });
    s = staffReducer(s, { type: 'message', ticket: ticket('t1'), message: msg('m2', 2), me: 'me' });
    s = staffReducer(s, {
      type: 'detail_loaded',
      detail: { ticket: ticket('t1'), messages: [msg('m1', 1), msg('m2', 2), msg('m3', 3)], whispers: [] },
    });
    expect(s.messages['t1']!.map((m) => m.id)).toEqual(['m1', 'm2', 'm3']);
  });

  it('counts unread customer messages of tickets not open, once per message id', () => {
    let s = staffReducer(initialStaffState, { type: 'tickets_loaded', status: 'open', tickets: [ticket('t1')] });
    s = staffReducer(s, { type: 'message', ticket: ticket('t1'), message: msg('m1', 1), me: 'me' });
    s = staffReducer(s, { type: 'message', ticket: ticket('t1'), message: msg('m2', 2, 'staff'), me: 'me' });
    expect(s.tickets['t1']!.unread).toBe(1);
    s = staffReducer(s, { type: 'open_ticket', id: 't1' });
    expect(s.tickets['t1']!.unread).toBe(0);
  });

  it('a new ticket arriving with its first customer message counts one unread', () => {
    const s = staffReducer(initialStaffState, {
      type: 'message',
      ticket: ticket('t9'),
      message: { ...msg('m1', 1), ticketId: 't9' },
      me: 'me',
    });
    expect(s.tickets['t9']!.unread).toBe(1);
  });

  it('marks direct messages read by id', () => {
    let s = staffReducer(initialStaffState, {
      type: 'dm',
      me: 'a',
      message: { id: 'd1', fromId: 'a', toId: 'b', body: 'hi', createdAt: 1, readAt: null },
    });
    s = staffReducer(s, { type: 'dm_read', ids: ['d1'], readAt: 5 });
    expect(s.dms['b']![0]!.readAt).toBe(5);
  });

  it('mergeById keeps time order and replaces by id', () => {
    expect(mergeById([msg('b', 2)], [msg('a', 1), msg('b', 2)]).map((m) => m.id)).toEqual(['a', 'b']);
  });
});
