import { AUTH_MESSAGES } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import type { HubSession } from './session.js';
import { createTestHub, makePrincipal } from './testing.js';

// The test hub warns 30 s before exp.
const W = 30_000;

describe('hub token lifecycle', () => {
  it('sends session_created with the grants, then token_expiring once at exp - W', () => {
    const { clock, connect } = createTestHub();
    const exp = clock.now() + 120_000;
    const { sink, session } = connect({
      userId: 'amina',
      scopes: ['ke/muranga'],
      channels: ['support:*'],
      expiresAt: exp,
    });

    expect(sink.system[0]).toEqual({
      kind: 'session_created',
      payload: {
        sessionId: session.id,
        userId: 'amina',
        isGuest: false,
        expiresAt: exp,
        timestamp: clock.now(),
        scopes: ['ke/muranga'],
        channels: ['support:*'],
      },
    });
    clock.advanceTo(exp - W - 1);
    expect(sink.systemOf('token_expiring')).toEqual([]);
    clock.advance(1);
    expect(sink.systemOf('token_expiring')).toEqual([
      { kind: 'token_expiring', payload: { expiresAt: exp, secondsLeft: 30 } },
    ]);
    clock.advance(W - 1);
    expect(sink.systemOf('token_expiring')).toHaveLength(1);
    expect(sink.closedWith).toBeUndefined();
  });

  it('warns right away when the token is already inside the warning window at connect', () => {
    const { clock, connect } = createTestHub();
    const { sink } = connect({ userId: 'a', expiresAt: clock.now() + 10_000 });
    expect(sink.system.map((m) => m.kind)).toEqual(['session_created', 'token_expiring']);
    expect(sink.systemOf('token_expiring')[0]?.payload.secondsLeft).toBe(10);
  });

  it('at exp without reauth sends auth_error AUTH_EXPIRED and closes, at exp exactly', () => {
    const closed: string[] = [];
    const { clock, hub, connect } = createTestHub({
      observer: { onSessionClosed: (_s, reason, code) => closed.push(`${reason}:${code}`) },
    });
    const exp = clock.now() + 60_000;
    const { sink } = connect({ userId: 'a', expiresAt: exp });

    clock.advanceTo(exp - 1);
    expect(sink.closedWith).toBeUndefined();
    clock.advance(1);
    expect(sink.systemOf('auth_error')).toEqual([
      { kind: 'auth_error', payload: { code: 'AUTH_EXPIRED', message: AUTH_MESSAGES.expired, timestamp: exp } },
    ]);
    expect(sink.closedWith?.code).toBe('AUTH_EXPIRED');
    expect(sink.system.at(-1)?.kind).toBe('auth_error');
    expect(closed).toEqual(['expired:AUTH_EXPIRED']);
    expect(hub.stats().sessions).toBe(0);
  });

  it('expires every session due at the same instant in one timer turn', () => {
    const { clock, hub, connect } = createTestHub({ env: { MAX_CONNECTIONS_PER_USER: '1000' } });
    const exp = clock.now() + 60_000;
    const sinks = Array.from({ length: 500 }, (_, i) => connect({ userId: `u${i % 7}`, expiresAt: exp }).sink);
    expect(clock.pendingTimers).toBe(1);
    clock.advanceTo(exp);
    expect(sinks.every((s) => s.closedWith?.code === 'AUTH_EXPIRED')).toBe(true);
    expect(hub.stats().sessions).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('reauth moves both the warning and the expiry to the new token', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const exp1 = clock.now() + 60_000;
    const { sink, session } = connect({ userId: 'a', expiresAt: exp1 });
    clock.advanceTo(exp1 - W);
    expect(sink.systemOf('token_expiring')).toHaveLength(1);

    const exp2 = exp1 + 60_000;
    authenticator.add('t2', makePrincipal({ userId: 'a', expiresAt: exp2 }));
    expect(await hub.reauth(session, 't2')).toEqual({ ok: true, expiresAt: exp2 });
    expect(session.principal.expiresAt).toBe(exp2);

    clock.advanceTo(exp1 + 1);
    expect(sink.closedWith).toBeUndefined();
    expect(sink.systemOf('token_expiring')).toHaveLength(1);
    clock.advanceTo(exp2 - W);
    expect(sink.systemOf('token_expiring').map((m) => m.payload.expiresAt)).toEqual([exp1, exp2]);
    clock.advanceTo(exp2);
    expect(sink.closedWith?.code).toBe('AUTH_EXPIRED');
  });

  it('stays open across three successive token lifetimes with reauth, arming one timer throughout', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    let exp = clock.now() + 60_000;
    const { sink, session } = connect({ userId: 'a', expiresAt: exp });
    for (let i = 0; i < 3; i++) {
      clock.advanceTo(exp - W);
      const next = exp + 60_000;
      authenticator.add(`t${i}`, makePrincipal({ userId: 'a', expiresAt: next }));
      expect(await hub.reauth(session, `t${i}`)).toEqual({ ok: true, expiresAt: next });
      expect(clock.pendingTimers).toBe(1);
      exp = next;
    }
    clock.advanceTo(exp - 1);
    expect(sink.closedWith).toBeUndefined();
    expect(sink.systemOf('token_expiring')).toHaveLength(4);
  });

  it('reauth with another user’s token is refused and the session stays until its own token expires', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const exp = clock.now() + 60_000;
    const { sink, session } = connect({ userId: 'a', scopes: ['ke'], expiresAt: exp });
    authenticator.add('other', makePrincipal({ userId: 'b', scopes: ['*'], expiresAt: exp + 600_000 }));

    expect(await hub.reauth(session, 'other')).toEqual({
      ok: false,
      code: 'AUTH_INVALID',
      message: AUTH_MESSAGES.invalid,
    });
    expect(session.closed).toBe(false);
    expect(session.principal.scopes).toEqual(['ke']);
    expect((await hub.publish({ event: 'e', to: { users: ['a'] } })).delivered).toBe(1);
    expect((await hub.publish({ event: 'e', to: { scopes: ['other'] } })).delivered).toBe(0);

    clock.advanceTo(exp);
    expect(sink.closedWith?.code).toBe('AUTH_EXPIRED');
  });

  it('a failed verification is answered with its code and the session stays', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const { sink, session } = connect({ userId: 'a' });
    authenticator.add('stale', makePrincipal({ userId: 'a', expiresAt: clock.now() - 1 }));
    expect(await hub.reauth(session, 'garbage')).toEqual({
      ok: false,
      code: 'AUTH_INVALID',
      message: AUTH_MESSAGES.invalid,
    });
    expect(await hub.reauth(session, 'stale')).toEqual({
      ok: false,
      code: 'AUTH_EXPIRED',
      message: AUTH_MESSAGES.expired,
    });
    expect(session.closed).toBe(false);
    expect(sink.closedWith).toBeUndefined();
  });

  it('reauth with narrower scopes stops delivery of the removed scopes at once', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const { sink, session } = connect({ userId: 'a', scopes: ['ke/muranga', 'ke/nyeri'] });
    expect((await hub.publish({ event: 'before', to: { scopes: ['ke/nyeri/x'] } })).delivered).toBe(1);

    authenticator.add(
      'narrow',
      makePrincipal({ userId: 'a', scopes: ['ke/muranga'], expiresAt: clock.now() + 600_000 }),
    );
    expect(await hub.reauth(session, 'narrow')).toMatchObject({ ok: true });

    expect((await hub.publish({ event: 'after', to: { scopes: ['ke/nyeri/x'] } })).delivered).toBe(0);
    expect((await hub.publish({ event: 'kept', to: { scopes: ['ke/muranga/x'] } })).delivered).toBe(1);
    expect(sink.eventNames).toEqual(['before', 'kept']);
  });

  it('reauth with the same grants keeps the indexes, channels and scopes read, on the new token’s arrays', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const grants = { userId: 'a', scopes: ['ke/muranga', 'ke/nyeri'], channels: ['support:*'] };
    const { sink, session } = connect({ ...grants, expiresAt: clock.now() + 60_000 });
    hub.subscribe(session, 'support:9');
    const fresh = makePrincipal({
      ...grants,
      scopes: [...grants.scopes],
      channels: [...grants.channels],
      expiresAt: clock.now() + 600_000,
    });
    authenticator.add('t', fresh);
    expect(await hub.reauth(session, 't')).toEqual({ ok: true, expiresAt: fresh.expiresAt });

    // Renewed in place, not re-indexed: the connection holds the new token's grants, not a copy of them.
    expect(session.principal).toBe(fresh);
    expect((session as HubSession).scopeReads).toBe(fresh.scopes);
    await hub.publish({ event: 'scope', to: { scopes: ['ke/nyeri/x'] } });
    await hub.publish({ event: 'channel', to: { channels: ['support:9'] } });
    expect(sink.eventNames).toEqual(['scope', 'channel']);
  });

  it('reauth with the same grants into another refresh family is revoked with the new family, not the old', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const { sink, session } = connect({
      userId: 'a',
      scopes: ['ke'],
      sessionFamilyId: 'f1',
      expiresAt: clock.now() + 60_000,
    });
    authenticator.add(
      't',
      makePrincipal({ userId: 'a', scopes: ['ke'], sessionFamilyId: 'f2', expiresAt: clock.now() + 600_000 }),
    );
    expect(await hub.reauth(session, 't')).toMatchObject({ ok: true });
    expect(hub.revokeFamily('f1')).toBe(0);
    expect(sink.closedWith).toBeUndefined();
    expect(hub.revokeFamily('f2')).toBe(1);
    expect(sink.closedWith?.code).toBe('AUTH_REVOKED');
  });

  it('reauth drops channel subscriptions the new token no longer allows', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const { sink, session } = connect({ userId: 'a', channels: ['support:*', 'project:1'] });
    hub.subscribe(session, 'support:9');
    hub.subscribe(session, 'project:1');
    authenticator.add('t', makePrincipal({ userId: 'a', channels: ['project:1'], expiresAt: clock.now() + 600_000 }));
    await hub.reauth(session, 't');
    expect([...session.channels]).toEqual(['project:1']);
    await hub.publish({ event: 'support', to: { channels: ['support:9'] } });
    await hub.publish({ event: 'project', to: { channels: ['project:1'] } });
    expect(sink.eventNames).toEqual(['project']);
  });

  it('reauth is rate-limited per connection', async () => {
    const { clock, hub, authenticator, connect } = createTestHub({ env: { REAUTH_RATE_PER_MINUTE: '3' } });
    const a = connect({ userId: 'a' });
    const b = connect({ userId: 'a' });
    authenticator.add('t', makePrincipal({ userId: 'a', expiresAt: clock.now() + 600_000 }));
    for (let i = 0; i < 3; i++) expect(await hub.reauth(a.session, 't')).toMatchObject({ ok: true });
    expect(await hub.reauth(a.session, 't')).toMatchObject({ ok: false, code: 'RATE_LIMITED' });
    expect(authenticator.calls).toBe(3);
    // Another connection of the same user has its own budget.
    expect(await hub.reauth(b.session, 't')).toMatchObject({ ok: true });
    clock.advance(20_000);
    expect(await hub.reauth(a.session, 't')).toMatchObject({ ok: true });
  });

  it('a session that closes while its reauth is being verified stays closed and the reauth is refused', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const { session } = connect({ userId: 'a' });
    authenticator.add('t', makePrincipal({ userId: 'a', scopes: ['*'], expiresAt: clock.now() + 600_000 }));
    let release!: () => void;
    authenticator.delay = new Promise<void>((resolve) => (release = resolve));

    const pending = hub.reauth(session, 't');
    expect(hub.disconnectUser('a')).toBe(1);
    release();

    expect(await pending).toMatchObject({ ok: false, code: 'AUTH_REVOKED' });
    expect(hub.stats().sessions).toBe(0);
    expect((await hub.publish({ event: 'e', to: { scopes: ['x'] } })).delivered).toBe(0);
    expect(hub.schedulerStats().live).toBe(0);
  });

  it('concurrent reauths apply in the order they were sent', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const { session } = connect({ userId: 'a' });
    authenticator.add('older', makePrincipal({ userId: 'a', expiresAt: clock.now() + 700_000 }));
    authenticator.add('newer', makePrincipal({ userId: 'a', expiresAt: clock.now() + 800_000 }));
    // The older request's verification is slow; without ordering it would land last and win.
    let release!: () => void;
    authenticator.delays.set('older', new Promise<void>((resolve) => (release = resolve)));
    const olderAck = hub.reauth(session, 'older');
    const newerAck = hub.reauth(session, 'newer');
    setImmediate(release);
    const [first, second] = await Promise.all([olderAck, newerAck]);
    expect(first).toMatchObject({ ok: true });
    expect(second).toMatchObject({ ok: true });
    expect(session.principal.expiresAt).toBe(clock.now() + 800_000);
  });

  it('registering 10k sessions arms one timer for all their warnings and expiries, one queued deadline each', () => {
    const { clock, hub, connect } = createTestHub({ env: { MAX_CONNECTIONS_PER_USER: '100000' } });
    for (let i = 0; i < 10_000; i++) connect({ userId: `u${i % 100}`, expiresAt: clock.now() + 60_000 + i * 10 });
    expect(clock.pendingTimers).toBe(1);
    // The warning only: each expiry is queued when its warning fires.
    expect(hub.schedulerStats()).toEqual({
      entries: 10_000,
      live: 10_000,
      stale: 0,
      armedTimers: 1,
      nextAt: clock.now() + 60_000 - W,
    });
  });

  it('keeps one queued deadline per session: the warning, then the expiry, then one after a reauth', async () => {
    const { clock, hub, authenticator, connect } = createTestHub();
    const exp = clock.now() + 120_000;
    const { sink, session } = connect({ userId: 'a', expiresAt: exp });
    expect(hub.schedulerStats()).toMatchObject({ entries: 1, live: 1, nextAt: exp - W });
    clock.advanceTo(exp - W);
    expect(sink.systemOf('token_expiring')).toHaveLength(1);
    expect(hub.schedulerStats()).toMatchObject({ entries: 1, live: 1, nextAt: exp });

    authenticator.add('t', makePrincipal({ userId: 'a', expiresAt: exp + 120_000 }));
    expect(await hub.reauth(session, 't')).toMatchObject({ ok: true });
    // The old expiry is a tombstone until it surfaces; the new warning is the one live entry.
    expect(hub.schedulerStats()).toMatchObject({ live: 1, nextAt: exp + 120_000 - W });
    clock.advanceTo(exp + 120_000 - W);
    expect(sink.systemOf('token_expiring')).toHaveLength(2);
    expect(hub.schedulerStats()).toMatchObject({ entries: 1, live: 1, stale: 0, nextAt: exp + 120_000 });
    clock.advanceTo(exp + 120_000);
    expect(sink.closedWith?.code).toBe('AUTH_EXPIRED');
    expect(hub.schedulerStats()).toMatchObject({ entries: 0, live: 0, armedTimers: 0 });
  });

  it('an expiry queued when its warning fires keeps its place among same-instant deadlines (connect order)', () => {
    const order: string[] = [];
    const { clock, connect } = createTestHub({
      observer: {
        onExpiryWarning: (s) => order.push(`warn:${s.userId}`),
        onSessionClosed: (s, reason) => order.push(`${reason}:${s.userId}`),
      },
    });
    const t = clock.now() + 120_000;
    // a expires at t; b, connected after a, is warned at t. Both were queued before a's warning
    // fired, so a's expiry comes first, as it did when both of a's deadlines were queued at connect.
    connect({ userId: 'a', expiresAt: t });
    connect({ userId: 'b', expiresAt: t + W });
    // c, connected after a's warning fired, expires at t too: after a, and after b's warning.
    clock.advanceTo(t - W);
    connect({ userId: 'c', expiresAt: t });
    clock.advanceTo(t);
    expect(order).toEqual(['warn:a', 'warn:c', 'expired:a', 'warn:b', 'expired:c']);
  });

  it('a token already expired at register is refused with AUTH_EXPIRED', () => {
    const { clock, hub, connect } = createTestHub();
    expect(() => connect({ userId: 'a', expiresAt: clock.now() })).toThrow(
      expect.objectContaining({ code: 'AUTH_EXPIRED' }),
    );
    expect(() => hub.admit(makePrincipal({ userId: 'a', expiresAt: clock.now() - 5 }))).toThrow(AUTH_MESSAGES.expired);
    expect(hub.stats().sessions).toBe(0);
  });

  it('logs the lifecycle without the token', async () => {
    const { clock, hub, authenticator, connect, logLines } = createTestHub();
    const secret = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl';
    const { session } = connect({ userId: 'a', expiresAt: clock.now() + 60_000 });
    authenticator.add(secret, makePrincipal({ userId: 'a', expiresAt: clock.now() + 120_000 }));
    await hub.reauth(session, secret);
    await hub.reauth(session, secret + 'x');
    clock.advance(120_000);
    const events = logLines.map((line) => (JSON.parse(line) as { event?: string }).event);
    expect(events).toEqual(expect.arrayContaining(['connect', 'reauth', 'expiry_warning', 'disconnect']));
    const disconnect = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'disconnect');
    expect(disconnect).toMatchObject({ reason: 'expired', code: 'AUTH_EXPIRED', durationMs: 120_000 });
    expect(logLines.join('\n')).not.toContain(secret.slice(0, 20));
  });
});
