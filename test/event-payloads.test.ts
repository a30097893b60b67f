import type { TransportKind } from '@tether/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, loggedInClient, provisionUser, reaches, type ClientUnderTest } from './helpers/client-harness.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { RawWs } from './helpers/raw-ws.js';
import { SioClient, WsClient } from './helpers/realtime.js';

/** An app's own payload: its own `id`, nesting, unicode, numbers and nulls, in an order worth keeping. */
const DATA = {
  id: 'order-7',
  n: 1,
  customer: { name: 'Wanjiru Kamau', tags: ['vip', 'ñandú', '鸟', '🐄'], address: { ward: 'Kiharu', zip: null } },
  lines: [
    { sku: 'A-1', qty: 2, price: 10.5 },
    { sku: 'B-2', qty: 1, price: 0 },
  ],
  note: 'quote " and backslash \\ and newline \n',
};

/**
 * A Socket.IO client that does nothing special receives each event as one argument: the published
 * `data`, unchanged. The SDK asks for `{id, position}` as a second argument in its handshake, so it
 * still dedupes and recovers; `/ws` frames carry `data` unchanged beside `id` and `position`.
 */
describe('event payloads reach every client unchanged', () => {
  let gw: TestGateway;
  const open: { close(): void }[] = [];

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '600' });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('a plain Socket.IO client gets one argument, byte-for-byte the published data, on the wire and in its handler', async () => {
    const sio = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'plain-sio' }) } });
    open.push(sio);
    await sio.session();
    // The same client on the wire: engine.io over a raw WebSocket, no socket.io-client involved.
    const raw = new RawWs(gw.port, {
      path: '/socket.io/?EIO=4&transport=websocket',
      headers: { authorization: `Bearer ${gw.sign({ sub: 'plain-sio' })}` },
    });
    open.push({ close: () => raw.destroy() });
    await raw.text((t) => t.startsWith('0{'));
    raw.sendText('40');
    await raw.text((t) => t.startsWith('42["session_created"'));

    expect(
      (await gw.api('POST', '/v1/publish', { event: 'order', data: DATA, to: { users: ['plain-sio'] } })).status,
    ).toBe(202);
    const frame = await raw.text((t) => t.startsWith('42["order"'));
    expect(frame).toBe(`42${JSON.stringify(['order', DATA])}`);
    const received = await sio.next((e) => e.event === 'order');
    expect(received.args).toHaveLength(1);
    expect(JSON.stringify(received.args[0])).toBe(JSON.stringify(DATA));
  });

  it('a Socket.IO client that asks for meta gets {id, position} as a second argument, data still unchanged', async () => {
    const sio = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'meta-sio' }), meta: true } });
    open.push(sio);
    await sio.session();
    const answer = await gw.api('POST', '/v1/publish', { event: 'order', data: DATA, to: { users: ['meta-sio'] } });
    const received = await sio.next((e) => e.event === 'order');
    expect(JSON.stringify(received.args[0])).toBe(JSON.stringify(DATA));
    expect(received.args[1]).toEqual({ id: answer.body.id, position: expect.any(String) as string });
  });

  it('a /ws frame carries data unchanged beside the event id and position', async () => {
    const ws = new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'plain-ws' })}` } });
    open.push(ws);
    await ws.next((f) => f.type === 'session_created');
    const answer = await gw.api('POST', '/v1/publish', { event: 'order', data: DATA, to: { users: ['plain-ws'] } });
    const frame = await ws.next((f) => f.type === 'event');
    expect(JSON.stringify(frame.data)).toBe(JSON.stringify(DATA));
    expect(frame.id).toBe(answer.body.id);
  });
});

describe.each<TransportKind>(['socket.io', 'ws'])('the SDK over %s with apps’ own ids', (transport) => {
  let gw: TestGateway;
  const open: ClientUnderTest[] = [];

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '600', AUTH_RATE_PER_MINUTE: '1000' });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('hands the app its own data.id, dedupes by the event id, and recovers what it missed', async () => {
    const user = await provisionUser(gw);
    const c = await loggedInClient(transport, user, { httpUrl: gw.url, realtimeUrl: gw.url });
    open.push(c);
    const seen: { data: Record<string, unknown>; id: string | undefined }[] = [];
    c.client.on('order', (data, meta) => void seen.push({ data, id: meta.id }));
    c.client.connect();
    await reaches(c, 'connected');

    // To the user and to a scope it holds: one connection, two streams, delivered once.
    const first = await gw.api('POST', '/v1/publish', {
      event: 'order',
      data: DATA,
      to: { users: [user.id], scopes: ['ke/muranga'] },
    });
    await eventually('the first order', () => seen.length === 1);
    expect(JSON.stringify(seen[0]!.data)).toBe(JSON.stringify(DATA));
    expect(seen[0]!.id).toBe(first.body.id);

    // Away while two more are published; back with its position: both, once, in order.
    c.client.close();
    await reaches(c, 'disconnected');
    for (const n of [2, 3])
      await gw.api('POST', '/v1/publish', { event: 'order', data: { ...DATA, n }, to: { users: [user.id] } });
    c.client.connect();
    await eventually('the missed orders', () => seen.length === 3);
    expect(seen.map((s) => s.data.n)).toEqual([1, 2, 3]);
    expect(seen.every((s) => s.data.id === 'order-7')).toBe(true);
    expect(new Set(seen.map((s) => s.id)).size).toBe(3);
  });
});
