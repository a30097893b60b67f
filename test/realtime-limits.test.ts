import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

describe('inbound flood control', () => {
  let gw: TestGateway;
  const open: Array<{ close(): void }> = [];
  function track<T extends { close(): void }>(c: T): T {
    open.push(c);
    return c;
  }

  beforeAll(async () => {
    gw = await startGateway({ INBOUND_BURST: '5', INBOUND_RATE_PER_SECOND: '2' });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await gw.close();
  });

  it('warns a flooding Socket.IO client, then cuts it, while other sockets carry on', async () => {
    const flooder = track(new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'flooder' }) } }));
    const calm = track(new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'calm', channels: ['room:*'] }) } }));
    const calmWs = track(new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'calm-ws' })}` } }));
    await Promise.all([flooder.session(), calm.session(), calmWs.first('session_created')]);

    for (let i = 0; i < 40; i++) flooder.socket.emit('noise', { i });
    expect(await flooder.first('error')).toMatchObject({
      code: 'RATE_LIMITED',
      message: expect.any(String),
      timestamp: expect.any(Number),
    });
    expect(await flooder.first('auth_error')).toMatchObject({ code: 'RATE_LIMITED' });
    expect(await flooder.disconnected()).toBe('io server disconnect');

    expect(await calm.request('subscribe', { channel: 'room:1' })).toMatchObject({ ok: true });
    await gw.gateway.publish({ event: 'after_flood', data: {}, to: { users: ['calm', 'calm-ws'] } });
    await calm.first('after_flood');
    await calmWs.next((f) => f.event === 'after_flood');
    expect(calm.count('error')).toBe(0);
  });

  it('warns a flooding /ws client with an error frame, then closes it with RATE_LIMITED', async () => {
    const flooder = track(
      new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'ws-flooder' })}` } }),
    );
    const calm = track(new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'ws-calm' })}` } }));
    await Promise.all([flooder.first('session_created'), calm.first('session_created')]);
    for (let i = 0; i < 40; i++) flooder.send({ type: 'unsubscribe', channel: `c${i}` });
    expect(await flooder.first('error')).toMatchObject({ code: 'RATE_LIMITED' });
    expect(await flooder.first('auth_error')).toMatchObject({ code: 'RATE_LIMITED' });
    expect(await flooder.closed()).toMatchObject({ code: 1008, reason: 'RATE_LIMITED' });
    expect(gw.internals.hub.presence('ws-flooder')).toEqual([]);

    calm.send({ type: 'unsubscribe', channel: 'x' });
    expect(await calm.first('unsubscribed')).toMatchObject({ channel: 'x' });
    expect(calm.closeInfo).toBeUndefined();
  });
});

describe('/ws frame validation', () => {
  let gw: TestGateway;
  let client: WsClient;

  beforeAll(async () => {
    gw = await startGateway({ MAX_FRAME_BYTES: '1024' });
    client = new WsClient(gw.url, {
      headers: { authorization: `Bearer ${gw.sign({ sub: 'fuzzer', channels: ['ok:*'] })}` },
    });
    await client.first('session_created');
  });
  afterAll(async () => {
    client.close();
    await gw.close();
  });

  it('answers malformed frames with FRAME_INVALID and keeps the connection', async () => {
    const bad = [
      '{nope',
      '42',
      '[]',
      'null',
      '{"channel":"x"}',
      '{"type":"teleport"}',
      '{"type":"subscribe","channel":"x","rid":17}',
    ];
    for (const frame of bad) client.send(frame);
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await client.nth('error', bad.length);
    const errors = client.frames.filter((f) => f.type === 'error');
    expect(errors).toHaveLength(bad.length + 1);
    for (const e of errors)
      expect(e).toMatchObject({ code: 'FRAME_INVALID', message: expect.any(String), timestamp: expect.any(Number) });
    // A bad token or channel is not a bad frame: it gets the answer of its own request.
    client.send('{"type":"reauth"}');
    expect(await client.first('reauth_error')).toMatchObject({ code: 'AUTH_REQUIRED' });
    client.send('{"type":"subscribe","channel":17,"rid":"c17"}');
    expect(await client.first('subscribe_error')).toMatchObject({ code: 'VALIDATION_FAILED', rid: 'c17' });

    client.send({ type: 'subscribe', channel: 'ok:1' });
    expect(await client.first('subscribed')).toMatchObject({ channel: 'ok:1' });
  });

  it('answers a frame over MAX_FRAME_BYTES with FRAME_TOO_LARGE and keeps the connection', async () => {
    client.send({ type: 'subscribe', channel: 'x'.repeat(2000) });
    expect(await client.next((f) => f.code === 'FRAME_TOO_LARGE')).toMatchObject({
      type: 'error',
      message: expect.stringContaining('1024'),
    });
    client.send({ type: 'unsubscribe', channel: 'ok:1' });
    expect(await client.first('unsubscribed')).toMatchObject({ channel: 'ok:1' });
  });

  it('closes with 1009 beyond the hard ceiling, without disturbing the server', async () => {
    const big = new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'huge' })}` } });
    await big.first('session_created');
    big.send('x'.repeat(64 * 1024));
    expect((await big.closed()).code).toBe(1009);
    client.send({ type: 'subscribe', channel: 'ok:2' });
    expect(await client.next((f) => f.type === 'subscribed' && f.channel === 'ok:2')).toBeTruthy();
  });

  it('closes a Socket.IO connection sending more than MAX_FRAME_BYTES at once', async () => {
    const s = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'sio-huge' }) } });
    await s.session();
    s.socket.emit('subscribe', { channel: 'y'.repeat(4096) });
    expect(await s.disconnected()).toBe('transport close');
  });
});

describe('per-IP connection rate', () => {
  it('refuses connections over CONNECT_RATE_PER_IP with RATE_LIMITED on both transports', async () => {
    const gw = await startGateway({ CONNECT_RATE_PER_IP: '3' });
    try {
      const token = gw.sign({ sub: 'eager' });
      const sios = Array.from({ length: 8 }, () => new SioClient(gw.url, { auth: { token } }));
      const outcomes = await Promise.all(
        sios.map((s) =>
          s.session().then(
            () => 'ok',
            (e: { data?: { code: string } }) => e.data?.code,
          ),
        ),
      );
      expect(outcomes.filter((o) => o === 'ok').length).toBeGreaterThanOrEqual(3);
      expect(outcomes.filter((o) => o === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(1);
      expect(outcomes.every((o) => o === 'ok' || o === 'RATE_LIMITED')).toBe(true);

      const wss = Array.from(
        { length: 8 },
        () => new WsClient(gw.url, { headers: { authorization: `Bearer ${token}` } }),
      );
      const wsOutcomes = await Promise.all(
        wss.map((w) => w.next((f) => f.type === 'session_created' || f.type === 'auth_error')),
      );
      expect(
        wsOutcomes.filter((f) => f.type === 'auth_error' && f.code === 'RATE_LIMITED').length,
      ).toBeGreaterThanOrEqual(1);
      for (const c of [...sios, ...wss]) c.close();
    } finally {
      await gw.close();
    }
  });
});
