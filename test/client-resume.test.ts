import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  RealtimeClient,
  TokenManager,
  createPlatform,
  memoryStorage,
  type TransportKind,
  type WebSocketConstructor,
} from '@tether/client';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import {
  TcpProxy,
  eventually,
  loggedInClient,
  provisionUser,
  reaches,
  type ClientUnderTest,
} from './helpers/client-harness.js';

const transports: TransportKind[] = ['socket.io', 'ws'];

describe.each(transports)('client SDK over %s: resume and sends', (transport) => {
  let gw: TestGateway;
  let proxy: TcpProxy;
  const open: ClientUnderTest[] = [];
  /** What the app's `chat_message` handler saw, in order. */
  const handled: string[] = [];
  let handlerDelayMs = 0;

  beforeAll(async () => {
    gw = await startGateway({ AUTH_RATE_PER_MINUTE: '1000' });
    proxy = await TcpProxy.start(gw.port);
    gw.gateway.onClientEvent('chat_message', async (_ctx, data) => {
      handled.push((data as { text: string }).text);
      if (handlerDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, handlerDelayMs));
      return { n: handled.length };
    });
  });
  afterEach(() => {
    proxy.restore();
    for (const c of open.splice(0)) c.close();
    handled.length = 0;
    handlerDelayMs = 0;
  });
  afterAll(async () => {
    await proxy?.close();
    await gw?.close();
  });

  async function connected(): Promise<{ c: ClientUnderTest; user: { id: string } }> {
    const user = await provisionUser(gw);
    const c = await loggedInClient(transport, user, { httpUrl: gw.url, realtimeUrl: proxy.url });
    open.push(c);
    c.client.connect();
    await reaches(c, 'connected');
    return { c, user };
  }

  const tick = (userId: string, n: number) =>
    gw.gateway.publish({ event: 'tick', data: { n }, to: { users: [userId] } });

  it('disconnected for 20 s while 200 events are published, it reconnects and delivers all 200 in order, none twice, and says recovered', async () => {
    const { c, user } = await connected();
    const seen: number[] = [];
    const recoveries: boolean[] = [];
    c.client.on('tick', (data) => void seen.push(data.n as number));
    c.client.onRecovery((notice) => recoveries.push(notice.recovered));
    await tick(user.id, 0);
    await eventually('the first event', () => seen.length === 1);

    proxy.cut();
    await reaches(c, 'reconnecting');
    for (let n = 1; n <= 200; n++) {
      await tick(user.id, n);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    proxy.restore();
    await reaches(c, 'connected');
    await eventually('all 200 missed events', () => seen.length >= 201, 20_000);
    await tick(user.id, 201);
    await eventually('a live event after them', () => seen.length >= 202);
    expect(seen).toEqual(Array.from({ length: 202 }, (_, i) => i));
    expect(recoveries.at(-1)).toBe(true);
    expect(c.client.position).toEqual(expect.any(String));
  }, 60_000);

  it('a client narrowed to one ward receives only it, live and across a cut network; narrow() changes it live', async () => {
    const user = await provisionUser(gw);
    const c = await loggedInClient(
      transport,
      user,
      { httpUrl: gw.url, realtimeUrl: proxy.url },
      { narrow: ['ke/muranga/w1'] },
    );
    open.push(c);
    const got: number[] = [];
    c.client.on<'ward_tick'>('ward_tick', (data) => got.push((data as { n: number }).n));
    const ward = (n: number, w: string) =>
      gw.gateway.publish({ event: 'ward_tick', data: { n }, to: { scopes: [`ke/muranga/${w}`] } });
    c.client.connect();
    await reaches(c, 'connected');
    await ward(1, 'w1');
    await ward(2, 'w2');
    await eventually('ward 1 live', () => got.length === 1);
    proxy.cut();
    await reaches(c, 'reconnecting');
    await ward(3, 'w1');
    await ward(4, 'w2');
    proxy.restore();
    await reaches(c, 'connected');
    await eventually('ward 1 recovered', () => got.length === 2);
    expect(await c.client.narrow(['ke/muranga/w2', 'ke/nakuru'])).toEqual({ ok: true, scopes: ['ke/muranga/w2'] });
    await ward(5, 'w1');
    await ward(6, 'w2');
    await eventually('ward 2 live', () => got.length === 3);
    expect(got).toEqual([1, 3, 6]);
  });

  it('an app restarted with the same storage presents its stored position and gets what it missed', async () => {
    const user = await provisionUser(gw);
    const storage = memoryStorage();
    const platform = createPlatform({ WebSocket: WebSocket as unknown as WebSocketConstructor });
    const start = async () => {
      const tokens = new TokenManager({ baseUrl: gw.url, platform, storage });
      await tokens.ready();
      const client = new RealtimeClient({ url: gw.url, tokens, transport });
      const seen: number[] = [];
      const recoveries: boolean[] = [];
      client.on('tick', (data) => void seen.push(data.n as number));
      client.onRecovery((notice) => recoveries.push(notice.recovered));
      return { tokens, client, seen, recoveries };
    };
    const first = await start();
    await first.tokens.login(user.email, user.password);
    first.client.connect();
    await eventually('the first session', () => first.recoveries.length === 1);
    expect(first.recoveries).toEqual([false]); // a first connect: nothing to recover, load state
    await tick(user.id, 1);
    await eventually('event 1', () => first.seen.length === 1);
    first.client.dispose(); // writes the position
    first.tokens.dispose();

    for (let n = 2; n <= 6; n++) await tick(user.id, n);
    const second = await start();
    second.client.connect();
    await eventually('the missed events', () => second.seen.length >= 5);
    expect(second.seen).toEqual([2, 3, 4, 5, 6]);
    expect(second.recoveries).toEqual([true]);
    second.client.dispose();
    second.tokens.dispose();
  });

  it('sends made while disconnected are buffered and flushed in order once the session is back', async () => {
    const { c } = await connected();
    proxy.cut();
    await reaches(c, 'reconnecting');
    const acks = ['one', 'two', 'three'].map((text) => c.client.send('chat_message', { text }));
    proxy.restore();
    expect(await Promise.all(acks)).toEqual([1, 2, 3].map((n) => ({ ok: true, result: { n } })));
    expect(handled).toEqual(['one', 'two', 'three']);
  });

  it('a send whose ack was lost is sent again with the same key and applied once', async () => {
    const { c } = await connected();
    handlerDelayMs = 300;
    const ack = c.client.send('chat_message', { text: 'only-once' });
    await eventually('the handler runs', () => handled.length === 1);
    proxy.cut(); // the ack is lost with the connection
    await reaches(c, 'reconnecting');
    proxy.restore();
    expect(await ack).toEqual({ ok: true, result: { n: 1 } });
    expect(handled).toEqual(['only-once']);
  });

  it('a send that cannot be delivered in time, or does not fit the buffer, rejects with a clear error', async () => {
    const user = await provisionUser(gw);
    const c = await loggedInClient(transport, user, { httpUrl: gw.url, realtimeUrl: proxy.url });
    open.push(c);
    const client = new RealtimeClient({
      url: proxy.url,
      tokens: c.tokens,
      transport,
      sendBufferSize: 2,
      sendTtlMs: 300,
    });
    try {
      // Never connected: both wait, a third does not fit, and the two expire.
      const waiting = [client.send('chat_message', { text: 'a' }), client.send('chat_message', { text: 'b' })];
      await expect(client.send('chat_message', { text: 'c' })).rejects.toThrow(/buffer full/);
      for (const p of waiting)
        await expect(p).rejects.toMatchObject({ code: 'SEND_FAILED', message: expect.stringMatching(/expired/) });
      expect(handled).toEqual([]);
    } finally {
      client.dispose();
    }
  });
});
