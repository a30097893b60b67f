import { describe, expect, it } from 'vitest';
import { outboxChannel } from './outbox-schema.js';
import { outboxEventId, outboxRequest, type OutboxRow } from './outbox.js';

const row = (over: Partial<OutboxRow> = {}): OutboxRow => ({
  id: 41,
  event: 'ticket_created',
  data: { ticketId: 't1' },
  recipients: { users: ['u1'], scopes: ['ke'] },
  event_id: null,
  created_us: 1_750_000_000_123_456,
  age_s: 0.01,
  ...over,
});

describe('outbox rows', () => {
  it("publish as {event, data, to: recipients} with the row's event id", () => {
    expect(outboxRequest(row())).toEqual({
      event: 'ticket_created',
      data: { ticketId: 't1' },
      to: { users: ['u1'], scopes: ['ke'] },
      id: outboxEventId(row()),
    });
  });

  it('keep an app-given event id', () => {
    expect(outboxEventId(row({ event_id: 'order-42' }))).toBe('order-42');
  });

  it('otherwise get one fixed by the row: the same on every attempt, another for a reused row id', () => {
    expect(outboxEventId(row())).toBe(outboxEventId(row()));
    expect(outboxEventId(row())).toMatch(/^outbox-41-[0-9a-z]+$/);
    // A restored database or RESTART IDENTITY hands out id 41 again, at another time.
    expect(outboxEventId(row({ created_us: 1_760_000_000_000_000 }))).not.toBe(outboxEventId(row()));
  });

  it('wake the consumer on a channel per schema that fits a NOTIFY channel name', () => {
    expect(outboxChannel('tether')).toBe('tether_outbox');
    expect(outboxChannel('a'.repeat(63)).length).toBeLessThanOrEqual(63);
  });
});
