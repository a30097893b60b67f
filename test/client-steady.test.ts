import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransportKind } from '@tether/client';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import {
  loggedInClient,
  provisionUser,
  reaches,
  recordPresentedTokens,
  type Presented,
} from './helpers/client-harness.js';

const transports: TransportKind[] = ['socket.io', 'ws'];
const RUN_MS = 30_000;
const EVERY_MS = 250;

describe('client SDK: staying connected through short-lived tokens', () => {
  let gw: TestGateway;
  let presented: Presented[];

  beforeAll(async () => {
    gw = await startGateway({
      JWT_EXPIRATION_SECONDS: '3',
      TOKEN_EXPIRY_WARNING_SECONDS: '1',
      AUTH_RATE_PER_MINUTE: '1000',
    });
    presented = recordPresentedTokens(gw);
  });
  afterAll(async () => {
    await gw?.close();
  });

  it.each(transports)(
    '%s: 30 s with 3 s access tokens: repeated refreshes and in-place reauths, every event received, no reconnect',
    async (transport) => {
      const user = await provisionUser(gw);
      const c = await loggedInClient(transport, user, { httpUrl: gw.url, realtimeUrl: gw.url });
      const received: number[] = [];
      c.client.on('tick', (data) => received.push(Number(data['seq'])));
      let refreshes = 0;
      c.tokens.on('change', ({ accessToken }) => {
        if (accessToken !== null) refreshes++;
      });
      const reauths: string[] = [];
      c.client.onAuth((n) => reauths.push(n.kind));
      const firstPresented = presented.length;

      c.client.connect();
      await reaches(c, 'connected');
      const changesWhenConnected = c.changes.length;

      // A steady stream: one event every 250 ms for 30 s, each awaited so none is lost to us.
      let sent = 0;
      const started = Date.now();
      while (Date.now() - started < RUN_MS) {
        await gw.gateway.publish({ event: 'tick', data: { seq: sent }, to: { users: [user.id] } });
        sent++;
        await new Promise((r) => setTimeout(r, EVERY_MS));
      }
      // The last events may still be on the wire: wait for the count, not for time.
      await new Promise<void>((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`got ${received.length}/${sent}`)), 10_000);
        const check = setInterval(() => {
          if (received.length >= sent) {
            clearTimeout(deadline);
            clearInterval(check);
            resolve();
          }
        }, 20);
      });

      expect(received).toEqual(Array.from({ length: sent }, (_, i) => i));
      expect(c.changes.slice(changesWhenConnected)).toEqual([]); // no reconnect, no state change at all
      expect(c.client.state).toBe('connected');
      expect(refreshes).toBeGreaterThanOrEqual(8);
      expect(reauths.filter((k) => k === 'reauth_ok').length).toBeGreaterThanOrEqual(8);
      expect(reauths.filter((k) => k !== 'reauth_ok')).toEqual([]);
      // The server never saw an expired token from this client.
      const mine = presented.slice(firstPresented);
      expect(mine.length).toBeGreaterThanOrEqual(9);
      expect(mine.filter((p) => p.exp !== undefined && p.exp <= p.at)).toEqual([]);
      c.close();
    },
    RUN_MS + 30_000,
  );
});
