import { ERRORS, TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { createTestHub, makePrincipal } from './testing.js';

describe('hub sessions: revocation, limits, presence, shutdown', () => {
  it('disconnectUser sends auth_error AUTH_REVOKED then closes every connection of the user, others untouched', async () => {
    const { hub, connect } = createTestHub();
    const devices = [connect({ userId: 'a' }), connect({ userId: 'a' }, 'ws'), connect({ userId: 'a' })];
    const other = connect({ userId: 'b' });

    expect(hub.disconnectUser('a')).toBe(3);

    for (const { sink } of devices) {
      expect(sink.system.at(-1)).toEqual({
        kind: 'auth_error',
        payload: {
          code: 'AUTH_REVOKED',
          message: ERRORS.AUTH_REVOKED.message,
          timestamp: expect.any(Number) as number,
        },
      });
      expect(sink.closedWith?.code).toBe('AUTH_REVOKED');
    }
    expect(other.sink.closedWith).toBeUndefined();
    expect(hub.presence('a')).toEqual([]);
    expect(hub.disconnectUser('a')).toBe(0);
    expect((await hub.publish({ event: 'e', to: { users: ['a', 'b'] } })).delivered).toBe(1);
  });

  it('revokeFamily closes only the connections of that login (device A), not another login of the same user (device B)', () => {
    const closed: string[] = [];
    const { hub, connect } = createTestHub({
      observer: { onSessionClosed: (s, reason, code) => closed.push(`${s.id}:${reason}:${code}`) },
    });
    const a1 = connect({ userId: 'u', sessionFamilyId: 'fam-A' });
    const a2 = connect({ userId: 'u', sessionFamilyId: 'fam-A' }, 'ws');
    const b = connect({ userId: 'u', sessionFamilyId: 'fam-B' });

    expect(hub.revokeFamily('fam-A')).toBe(2);

    expect(a1.sink.closedWith?.code).toBe('AUTH_REVOKED');
    expect(a2.sink.systemOf('auth_error')[0]?.payload.code).toBe('AUTH_REVOKED');
    expect(b.sink.closedWith).toBeUndefined();
    expect(hub.presence('u').map((p) => p.sessionId)).toEqual([b.session.id]);
    expect(closed).toEqual([`${a1.session.id}:revoked:AUTH_REVOKED`, `${a2.session.id}:revoked:AUTH_REVOKED`]);
    expect(hub.revokeFamily('unknown')).toBe(0);
  });

  it('a reauth into another refresh family is indexed under the new family', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const { session, sink } = connect({ userId: 'u', sessionFamilyId: 'old' });
    authenticator.add('t', makePrincipal({ userId: 'u', sessionFamilyId: 'new', expiresAt: clock.now() + 600_000 }));
    await hub.reauth(session, 't');
    expect(hub.revokeFamily('old')).toBe(0);
    expect(hub.revokeFamily('new')).toBe(1);
    expect(sink.closedWith?.code).toBe('AUTH_REVOKED');
  });

  it('the transport reporting the close during revocation does not double-count or change the reason', () => {
    const reasons: string[] = [];
    const { hub, connect } = createTestHub({ observer: { onSessionClosed: (_s, reason) => reasons.push(reason) } });
    connect({ userId: 'a' }); // its sink reports hub.unregister(…, 'client') from close()
    expect(hub.disconnectUser('a')).toBe(1);
    expect(reasons).toEqual(['revoked']);
  });

  it('updateGrants gives a user’s live connections new scopes and channel rights at once', async () => {
    const { hub, connect } = createTestHub();
    const s = connect({ userId: 'a', scopes: ['ke/nyeri'], channels: ['project:*'] });
    const guest = connect({ userId: 'guest:1', isGuest: true });
    hub.subscribe(s.session, 'project:1');

    expect(hub.updateGrants('a', { scopes: ['ke/muranga'], channels: [] })).toBe(1);
    expect(hub.updateGrants('guest:1', { scopes: ['*'] })).toBe(0);

    expect((await hub.publish({ event: 'e', to: { scopes: ['ke/nyeri'] } })).delivered).toBe(0);
    expect((await hub.publish({ event: 'e', to: { scopes: ['ke/muranga/x'] } })).delivered).toBe(1);
    expect((await hub.publish({ event: 'e', to: { channels: ['project:1'] } })).delivered).toBe(0);
    expect(hub.subscribe(s.session, 'project:2')).toMatchObject({ ok: false, code: 'CHANNEL_FORBIDDEN' });
    expect(guest.sink.events).toEqual([]);
  });

  it('refuses a connection beyond the per-user cap with CONNECTION_LIMIT; a freed slot can be reused', () => {
    const { hub, clock, connect } = createTestHub({ env: { MAX_CONNECTIONS_PER_USER: '2' } });
    const first = connect({ userId: 'a' });
    connect({ userId: 'a' });
    expect(() => hub.admit(makePrincipal({ userId: 'a', expiresAt: clock.now() + 60_000 }))).toThrow(TetherError);
    expect(() => connect({ userId: 'a' })).toThrow(expect.objectContaining({ code: 'CONNECTION_LIMIT' }));
    expect(() => connect({ userId: 'b' })).not.toThrow();
    hub.unregister(first.session, 'client');
    expect(() => connect({ userId: 'a' })).not.toThrow();
    expect(hub.stats().sessions).toBe(3);
  });

  it('presence lists each device with transport, connect time and token expiry; stats count sessions', () => {
    const { hub, clock, connect } = createTestHub();
    const exp = clock.now() + 90_000;
    const tab = connect({ userId: 'a', expiresAt: exp }, 'socket.io');
    clock.advance(1000);
    const kiosk = connect({ userId: 'a', expiresAt: exp + 1 }, 'ws');
    connect({ userId: 'guest:9', isGuest: true }, 'ws');

    expect(hub.presence('a')).toEqual([
      {
        sessionId: tab.session.id,
        userId: 'a',
        transport: 'socket.io',
        connectedAt: kiosk.session.connectedAt - 1000,
        expiresAt: exp,
        ip: '127.0.0.1',
        userAgent: 'vitest',
        isGuest: false,
        node: 'test-node',
      },
      {
        sessionId: kiosk.session.id,
        userId: 'a',
        transport: 'ws',
        connectedAt: kiosk.session.connectedAt,
        expiresAt: exp + 1,
        ip: '127.0.0.1',
        userAgent: 'vitest',
        isGuest: false,
        node: 'test-node',
      },
    ]);
    expect(hub.presence('nobody')).toEqual([]);
    expect(
      hub
        .listSessions()
        .map((e) => e.userId)
        .sort(),
    ).toEqual(['a', 'a', 'guest:9']);
    expect(hub.stats()).toEqual({ sessions: 3, users: 2, byTransport: { 'socket.io': 1, ws: 2 }, guests: 1 });
  });

  it('shutdown tells every client to reconnect within the grace period and resolves when they have all left', async () => {
    const { hub, clock, connect } = createTestHub({ random: () => 0.5 });
    const a = connect({ userId: 'a' });
    const b = connect({ userId: 'b' }, 'ws');

    const done = hub.shutdown(4000);
    expect(a.sink.systemOf('server_shutdown')[0]?.payload.reconnectInMs).toBe(2000);
    expect(b.sink.systemOf('server_shutdown')).toHaveLength(1);
    expect(() => hub.admit(makePrincipal({ userId: 'c', expiresAt: clock.now() + 60_000 }))).toThrow(
      expect.objectContaining({ code: 'SERVER_SHUTDOWN' }),
    );

    // The clients reconnect elsewhere: their transports report the close.
    hub.unregister(a.session, 'client');
    hub.unregister(b.session, 'client');
    await done;
    expect(a.sink.closedWith).toBeUndefined();
    expect(hub.schedulerStats().armedTimers).toBe(0);
  });

  it('shutdown closes the connections still open when the grace period ends with SERVER_SHUTDOWN', async () => {
    const reasons: string[] = [];
    const { hub, clock, connect } = createTestHub({
      observer: { onSessionClosed: (_s, reason, code) => reasons.push(`${reason}:${code}`) },
    });
    const stubborn = connect({ userId: 'a' });
    const done = hub.shutdown(5000);
    clock.advance(4999);
    expect(stubborn.sink.closedWith).toBeUndefined();
    clock.advance(1);
    await done;
    expect(stubborn.sink.closedWith?.code).toBe('SERVER_SHUTDOWN');
    expect(stubborn.sink.systemOf('auth_error')).toEqual([]);
    expect(reasons).toEqual(['shutdown:SERVER_SHUTDOWN']);
    expect(hub.shutdown(5000)).toBe(done);
  });

  it('shutdown with no sessions resolves at once', async () => {
    const { hub } = createTestHub();
    await hub.shutdown(10_000);
    expect(hub.stats().sessions).toBe(0);
  });

  it('a throwing observer or sink does not break the hub', async () => {
    const { hub, connect } = createTestHub({
      observer: {
        onSessionOpened: () => {
          throw new Error('observer bug');
        },
      },
    });
    const broken = connect({ userId: 'a' });
    broken.sink.sendEvent = () => {
      throw new Error('socket gone');
    };
    const fine = connect({ userId: 'a' });
    expect((await hub.publish({ event: 'e', to: { users: ['a'] } })).delivered).toBe(1);
    expect(fine.sink.events).toHaveLength(1);
  });
});
