import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RealtimeClient,
  TokenManager,
  createPlatform,
  decodeJwtPayload,
  memoryStorage,
  type StateChange,
  type TransportKind,
  type WebSocketConstructor,
} from '@tether/client';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { reaches, recordPresentedTokens, type Presented } from './helpers/client-harness.js';

const transports: TransportKind[] = ['socket.io', 'ws'];
// Three seconds, warned two before the end: with a 2 s token warned one second ahead, a CI run under
// load once took longer than that second to renew and reauth (AUTH_EXPIRED, then a reconnect).
const GUEST_TTL_S = 3;
/** Five guest-token lifetimes, and a little more. */
const RUN_MS = 5 * GUEST_TTL_S * 1000 + 1_000;
const EVERY_MS = 250;

const subOf = (token: string | null) => (token === null ? undefined : decodeJwtPayload(token)?.['sub']);

/**
 * The must-show of guest continuity, through the real SDK: a guest stays the same guest id across
 * five guest-token lifetimes on one connection (renewed with its guest refresh token and reauth in
 * place), and every event sent to it meanwhile arrives.
 */
describe('client SDK: a guest keeps its id across guest-token lifetimes', () => {
  let gw: TestGateway;
  let presented: Presented[];

  beforeAll(async () => {
    gw = await startGateway({
      GUEST_TOKEN_TTL_SECONDS: String(GUEST_TTL_S),
      TOKEN_EXPIRY_WARNING_SECONDS: '2',
      AUTH_RATE_PER_MINUTE: '1000',
      REAUTH_RATE_PER_MINUTE: '600',
    });
    presented = recordPresentedTokens(gw);
  });
  afterAll(async () => {
    await gw?.close();
  });

  it.each(transports)(
    '%s: same guest id for five 3 s guest-token lifetimes, no reconnect, every event received',
    async (transport) => {
      const platform = createPlatform({ WebSocket: WebSocket as unknown as WebSocketConstructor });
      const tokens = new TokenManager({ baseUrl: gw.url, platform, retry: { minMs: 200, maxMs: 1_000 } });
      const client = new RealtimeClient({
        url: gw.url,
        tokens,
        transport,
        backoff: { minMs: 200, maxMs: 1_000 },
        suspendAfterAttempts: 1_000,
      });
      const changes: StateChange[] = [];
      client.onState((c) => changes.push(c));
      const sessions: string[] = [];
      client.onSession((s) => sessions.push(s.userId));
      const reauths: string[] = [];
      client.onAuth((n) => reauths.push(n.kind === 'reauth_failed' ? `${n.kind}:${n.code}` : n.kind));
      const guestIds = new Set<string>();
      let renewals = 0;
      tokens.on('change', ({ accessToken }) => {
        if (accessToken === null) return;
        renewals++;
        guestIds.add(String(subOf(accessToken)));
      });
      const signedOut: unknown[] = [];
      tokens.on('signed_out', (e) => signedOut.push(e));
      try {
        await tokens.loginAsGuest();
        const guestId = String(subOf(tokens.accessToken));
        expect(guestId).toMatch(/^guest:/);
        expect(tokens.isGuest).toBe(true);
        const firstPresented = presented.length;

        client.connect();
        await reaches({ client, tokens, changes, close() {} }, 'connected');
        const changesWhenConnected = changes.length;
        expect(client.session).toMatchObject({ userId: guestId, isGuest: true });

        const received: number[] = [];
        client.on('tick', (data) => received.push(Number(data['seq'])));
        let sent = 0;
        const started = Date.now();
        while (Date.now() - started < RUN_MS) {
          await gw.gateway.publish({ event: 'tick', data: { seq: sent }, to: { users: [guestId] } });
          sent++;
          await new Promise((r) => setTimeout(r, EVERY_MS));
        }
        // The last events may still be on the wire: wait for the count, not for time.
        await new Promise<void>((resolve, reject) => {
          const deadline = setTimeout(() => reject(new Error(`got ${received.length}/${sent}`)), 10_000);
          const check = setInterval(() => {
            if (received.length < sent) return;
            clearTimeout(deadline);
            clearInterval(check);
            resolve();
          }, 20);
        });

        expect(received).toEqual(Array.from({ length: sent }, (_, i) => i));
        // One connection throughout: no state change after `connected`, one session_created.
        expect(changes.slice(changesWhenConnected)).toEqual([]);
        expect(client.state).toBe('connected');
        expect(sessions).toEqual([guestId]);
        // The same guest all along, renewed in place at least once per lifetime.
        expect([...guestIds]).toEqual([guestId]);
        expect(subOf(tokens.accessToken)).toBe(guestId);
        expect(client.session?.userId).toBe(guestId);
        expect(renewals).toBeGreaterThanOrEqual(5);
        expect(reauths.filter((k) => k === 'reauth_ok').length).toBeGreaterThanOrEqual(5);
        expect(reauths.filter((k) => k !== 'reauth_ok')).toEqual([]);
        expect(signedOut).toEqual([]);
        // The gateway never saw an expired token from this client.
        const mine = presented.slice(firstPresented);
        expect(mine.filter((p) => p.exp !== undefined && p.exp <= p.at)).toEqual([]);
      } finally {
        client.dispose();
        tokens.dispose();
      }
    },
    60_000,
  );

  it('a guest renews from stored tokens in a new page: the same guest, not a new one', async () => {
    const storage = memoryStorage();
    const platform = createPlatform({ WebSocket: WebSocket as unknown as WebSocketConstructor });
    const first = new TokenManager({ baseUrl: gw.url, platform, storage, proactive: false });
    await first.loginAsGuest();
    const guestId = subOf(first.accessToken);
    const firstToken = first.accessToken;
    first.dispose();

    // A reload: a new manager over the same storage, renewing at once.
    const second = new TokenManager({ baseUrl: gw.url, platform, storage, proactive: false });
    try {
      await second.ready();
      expect(second.isGuest).toBe(true);
      const renewed = await second.refresh();
      expect(renewed).not.toBe(firstToken);
      expect(subOf(renewed)).toBe(guestId);
    } finally {
      second.dispose();
    }
  });
});
