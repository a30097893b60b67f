import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  RealtimeClient,
  TokenManager,
  createPlatform,
  type TransportKind,
  type WebSocketConstructor,
} from '@tether/client';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { TcpProxy, reaches, type ClientUnderTest } from './helpers/client-harness.js';

const transports: TransportKind[] = ['socket.io', 'ws'];
const platform = createPlatform({ WebSocket: WebSocket as unknown as WebSocketConstructor });

describe('client SDK: transports, channels, app-issued tokens, guests', () => {
  let gw: TestGateway;
  let proxy: TcpProxy;
  const open: ClientUnderTest[] = [];

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '60', AUTH_RATE_PER_MINUTE: '1000' });
    proxy = await TcpProxy.start(gw.port);
  });
  afterEach(() => {
    proxy.restore();
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await proxy?.close();
    await gw?.close();
  });

  function track(tokens: TokenManager, client: RealtimeClient): ClientUnderTest {
    const c: ClientUnderTest = {
      tokens,
      client,
      changes: [],
      close() {
        client.dispose();
        tokens.dispose();
      },
    };
    client.onState((change) => c.changes.push(change));
    open.push(c);
    return c;
  }

  it.each(transports)(
    '%s: tokens from the app backend (getToken) join a channel, and the channel is rejoined after a reconnect',
    async (transport) => {
      const sub = `app-user-${transport}`;
      let issued = 0;
      const tokens = new TokenManager({
        baseUrl: proxy.url,
        platform,
        getToken: async () => {
          issued++;
          return gw.sign({ sub, channels: ['project:*'] }, 60);
        },
      });
      const client = new RealtimeClient({ url: proxy.url, tokens, transport, backoff: { minMs: 100, maxMs: 500 } });
      const c = track(tokens, client);
      const got: unknown[] = [];
      client.on('note', (data) => got.push(data['n']));

      client.connect();
      await reaches(c, 'connected');
      expect(issued).toBe(1);
      await expect(client.subscribe('project:42')).resolves.toEqual({ ok: true, channel: 'project:42' });
      await gw.gateway.publish({ event: 'note', data: { n: 1 }, to: { channels: ['project:42'] } });
      await expectEventually(() => got.length === 1);

      proxy.cut();
      await reaches(c, 'reconnecting');
      proxy.restore();
      await reaches(c, 'connected');
      // The channel is joined again by the SDK; wait until the server knows it.
      await expectEventually(() => [...gw.internals.hub.presence(sub)].length === 1);
      await expectEventually(async () => {
        await gw.gateway.publish({ event: 'note', data: { n: 2 }, to: { channels: ['project:42'] } });
        return got.includes(2);
      });
      expect(got[0]).toBe(1);
    },
  );

  it('ws: the token may travel as the Sec-WebSocket-Protocol bearer.<token> value', async () => {
    const tokens = new TokenManager({
      baseUrl: gw.url,
      platform,
      getToken: async () => gw.sign({ sub: 'subprotocol-user' }, 60),
    });
    const client = new RealtimeClient({ url: gw.url, tokens, transport: 'ws', ws: { tokenDelivery: 'subprotocol' } });
    const c = track(tokens, client);
    client.connect();
    await reaches(c, 'connected');
    expect(client.session?.userId).toBe('subprotocol-user');
  });

  it.each(transports)('%s: an invalid token with guest fallback continues as a guest', async (transport) => {
    const tokens = new TokenManager({ baseUrl: gw.url, platform });
    await tokens.setSession({ accessToken: 'not.a.token' });
    const client = new RealtimeClient({ url: gw.url, tokens, transport, guestFallback: true });
    const c = track(tokens, client);
    client.connect();
    await reaches(c, 'connected');
    expect(client.session?.isGuest).toBe(true);
    expect(tokens.isGuest).toBe(true);
    expect(c.changes.map((x) => x.current)).not.toContain('failed');
  });

  it.each(transports)('%s: an invalid token without guest fallback fails with AUTH_INVALID', async (transport) => {
    const tokens = new TokenManager({ baseUrl: gw.url, platform });
    await tokens.setSession({ accessToken: 'not.a.token' });
    const client = new RealtimeClient({ url: gw.url, tokens, transport });
    const c = track(tokens, client);
    client.connect();
    const failed = await reaches(c, 'failed');
    expect(failed?.reason).toBe('AUTH_INVALID');
  });
});

/** Re-checks `check` every 50 ms until it holds (10 s at most). */
async function expectEventually(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
