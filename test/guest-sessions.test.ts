import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

/** The payload of a JWT, unverified (the gateway verifies; the test reads what it was given). */
function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

interface GuestAnswer {
  access_token: string;
  refresh_token: string;
  guest_id: string;
  expires_in: number;
  token_type: string;
}

const refreshCookieOf = (headers: Headers) =>
  headers
    .getSetCookie()
    .find((h) => h.startsWith('refresh_token='))
    ?.split(';')[0];

/**
 * Guest sessions: a guest keeps its server-made id across token renewals while its session (a
 * refresh family owned by the guest id) lives, with the rotation, reuse detection and revocation
 * of a user's session.
 */
describe('guest sessions', () => {
  let gw: TestGateway;
  const open: Array<{ close(): void }> = [];

  const newGuest = async (body?: unknown): Promise<GuestAnswer> => {
    const res = await gw.http('POST', '/auth/guest', body);
    expect(res.status).toBe(200);
    expect(typeof res.body.refresh_token).toBe('string');
    return res.body as GuestAnswer;
  };
  const refresh = (refreshToken: string, path = '/auth/refresh-mobile', extra: Record<string, unknown> = {}) =>
    gw.http('POST', path, { refresh_token: refreshToken, ...extra });

  beforeAll(async () => {
    gw = await startGateway({
      REFRESH_REUSE_GRACE_SECONDS: '0',
      AUTH_RATE_PER_MINUTE: '1000',
      GUEST_TOKEN_TTL_SECONDS: '60',
      GUEST_CHANNELS: 'support:*',
    });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await gw.close();
  });

  it('a guest refresh rotates the token and signs the same guest id, with the claims of issue', async () => {
    const guest = await newGuest();
    expect(guest.guest_id).toMatch(/^guest:[0-9a-f-]{36}$/);
    const first = claimsOf(guest.access_token);
    expect(first).toMatchObject({ sub: guest.guest_id, guest: true, scopes: [], channels: ['support:*'] });
    expect(typeof first.sid).toBe('string');

    let refreshToken = guest.refresh_token;
    const seen = new Set([refreshToken]);
    // Both refresh endpoints, several times: each rotates, none changes who the guest is.
    for (const path of ['/auth/refresh-mobile', '/auth/refresh', '/auth/refresh-mobile', '/auth/refresh']) {
      const res = await refresh(refreshToken, path);
      expect(res.status).toBe(200);
      expect(seen.has(res.body.refresh_token)).toBe(false);
      seen.add(res.body.refresh_token);
      refreshToken = res.body.refresh_token;
      const claims = claimsOf(res.body.access_token);
      expect(claims).toMatchObject({ sub: guest.guest_id, guest: true, scopes: [], channels: ['support:*'] });
      expect(claims.sid).toBe(first.sid);
      expect(claims).not.toHaveProperty('role');
      expect(claims).not.toHaveProperty('email');
      const principal = await gw.internals.authenticator.authenticate(res.body.access_token);
      expect(principal).toMatchObject({ userId: guest.guest_id, isGuest: true, scopes: [] });
    }
    // Logged by id, never by token.
    expect(gw.logs()).toContain(guest.guest_id);
    for (const token of seen) expect(gw.logs()).not.toContain(token);
  });

  it('a live guest connection is reauthenticated in place with the refreshed token', async () => {
    const guest = await newGuest();
    const socket = new SioClient(gw.url, { auth: { token: guest.access_token } });
    open.push(socket);
    expect(await socket.session()).toMatchObject({ userId: guest.guest_id, isGuest: true });
    const renewed = await refresh(guest.refresh_token);
    const ack = await socket.request<{ ok: boolean }>('reauth', { token: renewed.body.access_token });
    expect(ack).toMatchObject({ ok: true });
    await gw.gateway.publish({ event: 'still_me', data: { n: 1 }, to: { users: [guest.guest_id] } });
    expect(await socket.first('still_me')).toEqual({ n: 1 });
    expect(socket.count('session_created')).toBe(1);
  });

  it("reusing a rotated guest refresh token revokes the guest's family and closes its live socket", async () => {
    const guest = await newGuest();
    const rotated = await refresh(guest.refresh_token);
    expect(rotated.status).toBe(200);
    const socket = new WsClient(gw.url, { headers: { authorization: `Bearer ${rotated.body.access_token}` } });
    open.push(socket);
    expect(await socket.first('session_created')).toMatchObject({ userId: guest.guest_id, isGuest: true });

    const reused = await refresh(guest.refresh_token);
    expect(reused.status).toBe(401);
    expect(reused.body.code).toBe('REFRESH_REUSED');
    expect(await socket.first('auth_error')).toMatchObject({ code: 'AUTH_REVOKED' });
    expect(await socket.closed()).toMatchObject({ code: 1008, reason: 'AUTH_REVOKED' });

    // The whole family is over: the newest refresh token and the access tokens too.
    const newest = await refresh(rotated.body.refresh_token);
    expect(newest.status).toBe(401);
    expect(newest.body.code).toBe('REFRESH_REUSED');
    const again = new SioClient(gw.url, { auth: { token: rotated.body.access_token } });
    open.push(again);
    expect((await again.refusal()).data).toMatchObject({ code: 'AUTH_REVOKED' });
    // Another guest's session is untouched.
    const other = await newGuest();
    expect((await refresh(other.refresh_token)).status).toBe(200);
  });

  it('logout ends a guest session, by its refresh token or by its access token alone', async () => {
    const byRefresh = await newGuest();
    const socket = new SioClient(gw.url, { auth: { token: byRefresh.access_token } });
    open.push(socket);
    await socket.session();
    const out = await gw.http(
      'POST',
      '/auth/logout',
      { refresh_token: byRefresh.refresh_token },
      { authorization: `Bearer ${byRefresh.access_token}` },
    );
    expect(out.status).toBe(204);
    expect(await socket.first('auth_error')).toMatchObject({ code: 'AUTH_REVOKED' });
    const after = await refresh(byRefresh.refresh_token);
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('REFRESH_INVALID');

    const byAccess = await newGuest();
    const out2 = await gw.http('POST', '/auth/logout', undefined, {
      authorization: `Bearer ${byAccess.access_token}`,
    });
    expect(out2.status).toBe(204);
    expect((await refresh(byAccess.refresh_token)).body.code).toBe('REFRESH_INVALID');
  });

  it('disconnecting a guest by id revokes its session: its refresh token stops working', async () => {
    const guest = await newGuest();
    const socket = new WsClient(gw.url, { headers: { authorization: `Bearer ${guest.access_token}` } });
    open.push(socket);
    await socket.first('session_created');
    const kicked = await gw.api('POST', `/v1/users/${encodeURIComponent(guest.guest_id)}/disconnect`);
    expect(kicked.status).toBe(200);
    expect(kicked.body).toEqual({ disconnected: 1 });
    expect(await socket.first('auth_error')).toMatchObject({ code: 'AUTH_REVOKED' });
    const after = await refresh(guest.refresh_token);
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('REFRESH_INVALID');
  });

  it('a guest refresh token never becomes a user’s, and a client cannot choose a guest id', async () => {
    const user = { email: 'g-test@example.com', password: 'guest test pw 1', name: 'U', role: 'agent', scopes: ['ke'] };
    const created = await gw.api('POST', '/v1/users', user);
    expect(created.status).toBe(201);

    // Whatever the request says, the id is the gateway's.
    const guest = await newGuest({ guest_id: 'guest:chosen', sub: created.body.id, guest: false });
    expect(guest.guest_id).not.toBe('guest:chosen');
    expect(claimsOf(guest.access_token)).toMatchObject({ sub: guest.guest_id, guest: true });
    const renewed = await refresh(guest.refresh_token, '/auth/refresh', {
      guest_id: 'guest:chosen',
      sub: created.body.id,
      user_id: created.body.id,
    });
    expect(renewed.status).toBe(200);
    const claims = claimsOf(renewed.body.access_token);
    expect(claims).toMatchObject({ sub: guest.guest_id, guest: true, scopes: [] });
    expect(claims.sub).not.toBe(created.body.id);

    // And a user's refresh token stays the user's.
    const login = await gw.http('POST', '/auth/login', { email: user.email, password: user.password });
    const userRenewed = await refresh(login.body.refresh_token);
    expect(claimsOf(userRenewed.body.access_token)).toMatchObject({ sub: created.body.id, scopes: ['ke'] });
    expect(claimsOf(userRenewed.body.access_token)).not.toHaveProperty('guest');

    // A token claiming to be a guest is a guest only when the gateway's own key signed it.
    const forged = await startGateway();
    try {
      const foreign = forged.sign({ sub: 'guest:forged', guest: true }, 60);
      await expect(gw.internals.authenticator.authenticate(foreign)).rejects.toMatchObject({ code: 'AUTH_INVALID' });
    } finally {
      await forged.close();
    }
  });

  it('cookie mode: the guest cookie only when asked, renewed by cookie, and never written by a body refresh', async () => {
    const plain = await gw.http('POST', '/auth/guest');
    expect(refreshCookieOf(plain.headers)).toBeUndefined();

    const asked = await gw.http('POST', '/auth/guest', { cookie: true });
    expect(asked.status).toBe(200);
    const cookie = refreshCookieOf(asked.headers);
    expect(cookie).toBe(`refresh_token=${asked.body.refresh_token}`);
    const byCookie = await gw.http('POST', '/auth/refresh', undefined, { cookie: cookie! });
    expect(byCookie.status).toBe(200);
    expect(claimsOf(byCookie.body.access_token)).toMatchObject({ sub: asked.body.guest_id, guest: true });
    expect(refreshCookieOf(byCookie.headers)).toBe(`refresh_token=${byCookie.body.refresh_token}`);

    // A body-mode guest beside a signed-in tab of the same origin must leave that tab's cookie alone.
    const bodyGuest = await newGuest();
    const byBody = await gw.http('POST', '/auth/refresh', { refresh_token: bodyGuest.refresh_token });
    expect(byBody.status).toBe(200);
    expect(refreshCookieOf(byBody.headers)).toBeUndefined();
    const loggedOut = await gw.http(
      'POST',
      '/auth/logout',
      { refresh_token: byBody.body.refresh_token },
      { authorization: `Bearer ${byBody.body.access_token}` },
    );
    expect(loggedOut.status).toBe(204);
    expect(loggedOut.headers.getSetCookie()).toEqual([]);
  });
});

describe('guest session lifetime', () => {
  it('a guest session ends at GUEST_SESSION_TTL_SECONDS with REFRESH_EXPIRED, no token outliving it; 0 gives none', async () => {
    const gw = await startGateway({
      GUEST_SESSION_TTL_SECONDS: '2',
      GUEST_TOKEN_TTL_SECONDS: '3600',
      AUTH_RATE_PER_MINUTE: '1000',
    });
    try {
      const started = Date.now();
      const guest = (await gw.http('POST', '/auth/guest')).body as GuestAnswer;
      // The session ends in 2 s, so its token may not live its hour.
      expect(guest.expires_in).toBeLessThanOrEqual(2);
      expect(claimsOf(guest.access_token).exp as number).toBeLessThanOrEqual(Math.ceil(started / 1000) + 3);
      // Renew until the session is over: it renews as the same guest until then, and is REFRESH_EXPIRED after.
      let refreshToken = guest.refresh_token;
      let last: { status: number; body: { code?: string; refresh_token?: string; access_token?: string } } | undefined;
      for (let i = 0; i < 200; i++) {
        last = await gw.http('POST', '/auth/refresh-mobile', { refresh_token: refreshToken });
        if (last.status !== 200) break;
        expect(claimsOf(last.body.access_token!).sub).toBe(guest.guest_id);
        refreshToken = last.body.refresh_token!;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(last?.status).toBe(401);
      expect(last?.body.code).toBe('REFRESH_EXPIRED');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    } finally {
      await gw.close();
    }

    const off = await startGateway({ GUEST_SESSION_TTL_SECONDS: '0' });
    try {
      const res = await off.http('POST', '/auth/guest', { cookie: true });
      expect(res.status).toBe(200);
      expect(res.body.refresh_token).toBeUndefined();
      expect(res.body.expires_in).toBe(3600);
      expect(res.headers.getSetCookie()).toEqual([]);
    } finally {
      await off.close();
    }
  });
});
