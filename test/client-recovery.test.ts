import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SignedOut, TransportKind } from '@tether/client';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import {
  TcpProxy,
  eventually,
  loggedInClient,
  provisionUser,
  reaches,
  recordPresentedTokens,
  type ClientUnderTest,
  type Presented,
} from './helpers/client-harness.js';

const transports: TransportKind[] = ['socket.io', 'ws'];

/** How long "nothing happens" is watched for after a terminal state (an absence has no event to await). */
const QUIET_MS = 2_500;
const quiet = (): Promise<void> => new Promise((r) => setTimeout(r, QUIET_MS));

describe.each(transports)('client SDK over %s: failures and recovery', (transport) => {
  let gw: TestGateway;
  let proxy: TcpProxy;
  let presented: Presented[];
  const open: ClientUnderTest[] = [];

  beforeAll(async () => {
    gw = await startGateway({
      JWT_EXPIRATION_SECONDS: '3',
      TOKEN_EXPIRY_WARNING_SECONDS: '1',
      AUTH_RATE_PER_MINUTE: '1000',
    });
    proxy = await TcpProxy.start(gw.port);
    presented = recordPresentedTokens(gw);
  });
  afterEach(() => {
    proxy.restore();
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await proxy?.close();
    await gw?.close();
  });

  async function client(urls: 'direct' | 'all-through-proxy' | 'http-through-proxy') {
    const user = await provisionUser(gw);
    const httpUrl = urls === 'direct' ? gw.url : proxy.url;
    const realtimeUrl = urls === 'all-through-proxy' ? proxy.url : gw.url;
    const c = await loggedInClient(transport, user, { httpUrl, realtimeUrl });
    open.push(c);
    const signedOut: SignedOut[] = [];
    c.tokens.on('signed_out', (e) => signedOut.push(e));
    c.client.connect();
    await reaches(c, 'connected');
    return { c, user, signedOut };
  }

  it('a socket cut while its token expired reconnects with a fresh token, never presenting the expired one', async () => {
    const { c, user } = await client('all-through-proxy');
    const expiredBefore = gw
      .logs()
      .split('\n')
      .filter((l) => l.includes('"code":"AUTH_EXPIRED"')).length;
    const connectedToken = c.tokens.accessToken;

    proxy.cut();
    await reaches(c, 'reconnecting');
    // Refreshes fail too while the network is down, so the token the client holds runs out.
    const heldExpiry = c.tokens.expiresAt ?? 0;
    await eventually('the held token to expire', () => Date.now() > heldExpiry + 300);
    expect(c.tokens.expiresAt).toBe(heldExpiry);
    const seenBeforeRestore = presented.length;

    proxy.restore();
    await reaches(c, 'connected');

    const afterRestore = presented.slice(seenBeforeRestore);
    expect(afterRestore.length).toBeGreaterThanOrEqual(1);
    expect(afterRestore.filter((p) => p.exp === undefined || p.exp <= p.at)).toEqual([]);
    expect(c.tokens.accessToken).not.toBe(connectedToken);
    expect(c.tokens.expiresAt).toBeGreaterThan(heldExpiry);
    // The gateway never refused a handshake as expired.
    const expiredAfter = gw
      .logs()
      .split('\n')
      .filter((l) => l.includes('"code":"AUTH_EXPIRED"')).length;
    expect(expiredAfter).toBe(expiredBefore);

    // And the new session works.
    const got = new Promise((resolve) => c.client.on('ping', resolve));
    await gw.gateway.publish({ event: 'ping', data: { n: 1 }, to: { users: [user.id] } });
    await expect(got).resolves.toMatchObject({ n: 1 });
  });

  it('a refresh answered 401 REFRESH_* puts the client in failed and signs out, without retrying', async () => {
    const { c, signedOut } = await client('direct');
    // The stored refresh token no longer exists on the server (e.g. the session was purged).
    await c.tokens.setSession({ accessToken: c.tokens.accessToken ?? '', refreshToken: 'not-a-live-refresh-token' });

    const failed = await reaches(c, 'failed');
    expect(failed?.reason).toMatch(/^REFRESH_/);
    expect(signedOut).toHaveLength(1);
    expect(signedOut[0]?.code).toMatch(/^REFRESH_/);
    expect(c.tokens.accessToken).toBeNull();

    const handshakes = presented.length;
    const changes = c.changes.length;
    await quiet();
    expect(presented.length).toBe(handshakes);
    expect(c.changes.length).toBe(changes);
    expect(c.client.state).toBe('failed');
  });

  it('a refresh failing on the network is retried with backoff, and the client recovers when it comes back', async () => {
    const { c, user, signedOut } = await client('http-through-proxy');
    const refreshErrors: number[] = [];
    c.tokens.on('refresh_error', (e) => refreshErrors.push(e.attempt));

    proxy.cut();
    // The token runs out on the server: the connection is closed (AUTH_EXPIRED) and reconnects keep
    // failing to refresh, backing off between attempts.
    await eventually(
      'several refresh failures and a lost connection',
      () => refreshErrors.length >= 4 && c.client.state !== 'connected',
    );
    const retrying = c.changes.filter((ch) => ch.current === 'reconnecting');
    expect(retrying.length).toBeGreaterThanOrEqual(1);
    expect(retrying.every((ch) => ch.retryInMs !== null && ch.retryInMs >= 0)).toBe(true);

    proxy.restore();
    await reaches(c, 'connected');
    expect(signedOut).toEqual([]);
    expect(c.tokens.expiresAt).toBeGreaterThan(Date.now());
    const got = new Promise((resolve) => c.client.on('ping', resolve));
    await gw.gateway.publish({ event: 'ping', data: { n: 2 }, to: { users: [user.id] } });
    await expect(got).resolves.toMatchObject({ n: 2 });
  });

  it('revocation by the server puts the client in failed and signed out, with no retry loop', async () => {
    const { c, user, signedOut } = await client('direct');
    const res = await gw.api('POST', `/v1/users/${user.id}/disconnect`);
    expect(res.status).toBe(200);

    const failed = await reaches(c, 'failed');
    expect(failed?.reason).toBe('AUTH_REVOKED');
    // The tokens are cleared from storage first, then the app is told.
    await eventually('signed_out', () => signedOut.length > 0);
    expect(signedOut.map((s) => s.code)).toEqual(['AUTH_REVOKED']);
    expect(c.tokens.accessToken).toBeNull();

    const handshakes = presented.length;
    const changes = c.changes.length;
    await quiet();
    expect(presented.length).toBe(handshakes);
    expect(c.changes.length).toBe(changes);
  });

  it('logout closes the connection, revokes the session on the server and clears the tokens', async () => {
    const { c, user, signedOut } = await client('direct');
    const refresh = await c.tokens.getAccessToken();
    expect(refresh).not.toBeNull();
    await c.client.logout();
    expect(c.client.state).toBe('disconnected');
    expect(c.tokens.accessToken).toBeNull();
    expect(signedOut).toEqual([{ code: null, message: 'logged out' }]);
    await eventually('the server to drop the session', () => gw.internals.hub.presence(user.id).length === 0);
  });
});
