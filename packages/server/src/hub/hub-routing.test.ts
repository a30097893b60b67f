import { TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { createTestHub } from './testing.js';

describe('hub routing', () => {
  it('an event to ke/muranga/kiharu/ward-5 reaches the admin and the Murang’a officer once each, not the Nyeri officer', async () => {
    const { hub, connect } = createTestHub();
    const admin = connect({ userId: 'admin', scopes: ['*'] });
    const muranga = connect({ userId: 'officer-m', scopes: ['ke/muranga'] });
    const nyeri = connect({ userId: 'officer-n', scopes: ['ke/nyeri'] });

    const result = await hub.publish({
      event: 'case_opened',
      data: { caseId: 'c1' },
      to: { scopes: ['ke/muranga/kiharu/ward-5'] },
    });

    expect(result.delivered).toBe(2);
    expect(admin.sink.eventNames).toEqual(['case_opened']);
    expect(muranga.sink.eventNames).toEqual(['case_opened']);
    expect(nyeri.sink.events).toEqual([]);
    expect(admin.sink.events[0]).toMatchObject({ id: result.id, event: 'case_opened', data: { caseId: 'c1' } });
  });

  it('an officer holding both ke/muranga and ke/muranga/kiharu receives the event once', async () => {
    const { hub, connect } = createTestHub();
    const officer = connect({ userId: 'officer-m', scopes: ['ke/muranga', 'ke/muranga/kiharu'] });
    const admin = connect({ userId: 'admin', scopes: ['*', 'ke'] });

    await hub.publish({ event: 'case_opened', to: { scopes: ['ke/muranga/kiharu/ward-5', 'ke/muranga/kiharu'] } });

    expect(officer.sink.events).toHaveLength(1);
    expect(admin.sink.events).toHaveLength(1);
  });

  it('a grant on a sibling sharing a name prefix does not match', async () => {
    const { hub, connect } = createTestHub();
    const other = connect({ userId: 'u', scopes: ['ke/murang'] });
    expect((await hub.publish({ event: 'e', to: { scopes: ['ke/muranga'] } })).delivered).toBe(0);
    expect(other.sink.events).toEqual([]);
  });

  it('a user-addressed event reaches each of the user’s 3 devices once, on both transports', async () => {
    const { hub, connect } = createTestHub();
    const tab1 = connect({ userId: 'amina' }, 'socket.io');
    const tab2 = connect({ userId: 'amina' }, 'socket.io');
    const kiosk = connect({ userId: 'amina' }, 'ws');
    const someoneElse = connect({ userId: 'baraka' });

    const result = await hub.publish({ event: 'note', to: { users: ['amina', 'amina'] } });

    expect(result.delivered).toBe(3);
    for (const device of [tab1, tab2, kiosk]) expect(device.sink.events).toHaveLength(1);
    expect(someoneElse.sink.events).toEqual([]);
  });

  it('a session matched by user, scope and channel at once receives the event once', async () => {
    const { hub, connect } = createTestHub();
    const s = connect({ userId: 'amina', scopes: ['ke/muranga'], channels: ['project:*'] });
    expect(hub.subscribe(s.session, 'project:42')).toEqual({ ok: true, channel: 'project:42' });

    const result = await hub.publish({
      event: 'e',
      to: { users: ['amina'], scopes: ['ke/muranga/x'], channels: ['project:42'] },
    });

    expect(result.delivered).toBe(1);
    expect(s.sink.events).toHaveLength(1);
  });

  it('builds one OutboundEvent per publish, shared by every recipient', async () => {
    const { hub, connect } = createTestHub();
    const a = connect({ userId: 'a', scopes: ['*'] }, 'ws');
    const b = connect({ userId: 'b', scopes: ['*'] }, 'socket.io');
    await hub.publish({ event: 'e', data: { x: 1 }, to: { scopes: ['z'] }, id: 'given-id' });
    expect(a.sink.events[0]).toBe(b.sink.events[0]);
    expect(a.sink.events[0]?.id).toBe('given-id');
  });

  it('publishing to a scope with 2 recipients among 20k sessions writes exactly twice', async () => {
    const { hub, connect } = createTestHub({ env: { MAX_CONNECTIONS_PER_USER: '100000' } });
    const bystanders = Array.from(
      { length: 20_000 },
      (_, i) => connect({ userId: `u${i % 5000}`, scopes: [`region-${i % 100}/district-${i}`, 'target/other'] }).sink,
    );
    const recipients = [
      connect({ userId: 'x', scopes: ['target/area'] }).sink,
      connect({ userId: 'y', scopes: ['target'] }).sink,
    ];

    const result = await hub.publish({ event: 'e', to: { scopes: ['target/area/ward-1'] } });

    expect(result.delivered).toBe(2);
    expect(recipients.map((sink) => sink.events.length)).toEqual([1, 1]);
    expect(bystanders.reduce((writes, sink) => writes + sink.events.length, 0)).toBe(0);
  });

  it('channel events reach subscribers only; a token without the channel right is refused', async () => {
    const { hub, connect } = createTestHub();
    const member = connect({ userId: 'a', channels: ['support:*'] });
    const outsider = connect({ userId: 'b', channels: ['project:1'] });
    const notJoined = connect({ userId: 'c', channels: ['support:*'] });

    expect(hub.subscribe(member.session, 'support:7')).toEqual({ ok: true, channel: 'support:7' });
    expect(hub.subscribe(outsider.session, 'support:7')).toMatchObject({ ok: false, code: 'CHANNEL_FORBIDDEN' });
    expect(hub.subscribe(member.session, 'bad channel!')).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });

    await hub.publish({ event: 'msg', to: { channels: ['support:7'] } });
    expect(member.sink.events).toHaveLength(1);
    expect(outsider.sink.events).toEqual([]);
    expect(notJoined.sink.events).toEqual([]);

    expect(hub.unsubscribe(member.session, 'support:7')).toEqual({ ok: true, channel: 'support:7' });
    await hub.publish({ event: 'msg', to: { channels: ['support:7'] } });
    expect(member.sink.events).toHaveLength(1);
  });

  it('a closed session receives nothing and leaves no index entries', async () => {
    const { hub, connect } = createTestHub();
    const s = connect({ userId: 'a', scopes: ['*'], channels: ['*'] });
    hub.subscribe(s.session, 'room');
    hub.unregister(s.session, 'client');
    hub.unregister(s.session, 'client');
    expect((await hub.publish({ event: 'e', to: { users: ['a'], scopes: ['x'], channels: ['room'] } })).delivered).toBe(
      0,
    );
    expect(hub.stats()).toEqual({ sessions: 0, users: 0, byTransport: { 'socket.io': 0, ws: 0 }, guests: 0 });
    expect(hub.schedulerStats().live).toBe(0);
  });

  it('refuses an invalid publish with VALIDATION_FAILED naming the field', async () => {
    const { hub } = createTestHub();
    await expect(hub.publish({ event: 'auth_error', to: { users: ['a'] } })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(hub.publish({ event: 'e', to: {} })).rejects.toBeInstanceOf(TetherError);
    await expect(hub.publish({ event: 'e', to: { scopes: ['no spaces allowed'] } })).rejects.toThrow(/to\.scopes\[0\]/);
  });

  it('reports each publish to the observer once with the delivery count', async () => {
    const delivered: number[] = [];
    const published: string[] = [];
    const { hub, connect } = createTestHub({
      observer: {
        onDelivered: (count) => delivered.push(count),
        onPublish: (result, event) => published.push(`${event}:${result.delivered}`),
      },
    });
    connect({ userId: 'a' });
    connect({ userId: 'a' });
    await hub.publish({ event: 'e', to: { users: ['a'] } });
    expect(delivered).toEqual([2]);
    expect(published).toEqual(['e:2']);
  });

  it('deliverLocal routes an envelope from another node without validating it again', () => {
    const { hub, connect } = createTestHub();
    const s = connect({ userId: 'a' });
    const count = hub.deliverLocal({
      id: 'remote-1',
      event: 'e',
      data: {},
      to: { users: ['a'], scopes: [], channels: [] },
    });
    expect(count).toBe(1);
    expect(s.sink.events[0]?.id).toBe('remote-1');
  });
});
