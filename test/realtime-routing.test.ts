import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

describe('routing over both transports', () => {
  let gw: TestGateway;
  const open: Array<{ close(): void }> = [];
  function track<T extends { close(): void }>(c: T): T {
    open.push(c);
    return c;
  }
  const sioAs = async (claims: Parameters<TestGateway['sign']>[0]) => {
    const c = track(new SioClient(gw.url, { auth: { token: gw.sign(claims) } }));
    await c.session();
    return c;
  };
  const wsAs = async (claims: Parameters<TestGateway['sign']>[0]) => {
    const c = track(new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign(claims)}` } }));
    await c.first('session_created');
    return c;
  };

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '120' });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await gw.close();
  });

  it('delivers a user-addressed event once to each of 3 devices (2 Socket.IO, 1 plain WebSocket)', async () => {
    const [laptop, phone] = [await sioAs({ sub: 'amina' }), await sioAs({ sub: 'amina' })];
    const kiosk = await wsAs({ sub: 'amina' });
    const result = await gw.gateway.publish({
      event: 'ticket_assigned',
      data: { ticketId: 't-9' },
      to: { users: ['amina', 'amina'] },
      id: 'evt-1',
    });
    expect(result.delivered).toBe(3);
    expect(await laptop.first('ticket_assigned')).toEqual({ ticketId: 't-9' });
    expect(await phone.first('ticket_assigned')).toEqual({ ticketId: 't-9' });
    expect(await kiosk.first('event')).toEqual({
      type: 'event',
      event: 'ticket_assigned',
      data: { ticketId: 't-9' },
      id: 'evt-1',
      position: expect.any(String),
    });

    // A later event proves nothing else was in flight: each device saw the first exactly once.
    await gw.gateway.publish({ event: 'sentinel', data: {}, to: { users: ['amina'] } });
    await Promise.all([laptop.first('sentinel'), phone.first('sentinel'), kiosk.next((f) => f.event === 'sentinel')]);
    expect([
      laptop.count('ticket_assigned'),
      phone.count('ticket_assigned'),
      kiosk.count('event', (f) => f.event === 'ticket_assigned'),
    ]).toEqual([1, 1, 1]);
  });

  it('routes a scope event to ancestor-or-equal grants only, once per connection', async () => {
    const admin = await sioAs({ sub: 'admin', scopes: ['*'] });
    const muranga = await wsAs({ sub: 'officer-m', scopes: ['ke/muranga', 'ke/muranga/kiharu'] });
    const nyeri = await sioAs({ sub: 'officer-n', scopes: ['ke/nyeri'] });
    const result = await gw.gateway.publish({
      event: 'incident',
      data: { ward: 5 },
      to: { scopes: ['ke/muranga/kiharu/ward-5'] },
    });
    expect(result.delivered).toBe(2);
    await gw.gateway.publish({ event: 'sentinel', data: {}, to: { users: ['admin', 'officer-m', 'officer-n'] } });
    await Promise.all([admin.first('sentinel'), nyeri.first('sentinel'), muranga.next((f) => f.event === 'sentinel')]);
    expect(admin.count('incident')).toBe(1);
    expect(muranga.count('event', (f) => f.event === 'incident')).toBe(1);
    expect(nyeri.count('incident')).toBe(0);
  });

  it('joins a channel only when the token allows it, on both transports', async () => {
    const s = await sioAs({ sub: 'dev-1', channels: ['project:*'] });
    const w = await wsAs({ sub: 'dev-2', channels: ['project:42'] });
    expect(await s.request('subscribe', { channel: 'project:42' })).toEqual({ ok: true, channel: 'project:42' });
    expect(await s.request('subscribe', { channel: 'billing:1' })).toMatchObject({
      ok: false,
      code: 'CHANNEL_FORBIDDEN',
    });
    w.send({ type: 'subscribe', channel: 'project:42', rid: 'r1' });
    expect(await w.first('subscribed')).toEqual({ type: 'subscribed', channel: 'project:42', rid: 'r1' });
    w.send({ type: 'subscribe', channel: 'project:7', rid: 'r2' });
    expect(await w.first('subscribe_error')).toMatchObject({
      channel: 'project:7',
      code: 'CHANNEL_FORBIDDEN',
      rid: 'r2',
    });

    await gw.gateway.publish({ event: 'build', data: { n: 1 }, to: { channels: ['project:42'] } });
    expect(await s.first('build')).toMatchObject({ n: 1 });
    expect(await w.next((f) => f.event === 'build')).toMatchObject({ data: { n: 1 } });

    expect(await s.request('unsubscribe', { channel: 'project:42' })).toMatchObject({ ok: true });
    w.send({ type: 'unsubscribe', channel: 'project:42' });
    await w.first('unsubscribed');
    await gw.gateway.publish({ event: 'build', data: { n: 2 }, to: { channels: ['project:42'] } });
    await gw.gateway.publish({ event: 'sentinel', data: {}, to: { users: ['dev-1', 'dev-2'] } });
    await Promise.all([s.first('sentinel'), w.next((f) => f.event === 'sentinel')]);
    expect(s.count('build')).toBe(1);
    expect(w.count('event', (f) => f.event === 'build')).toBe(1);
  });

  it('answers a Socket.IO request with a bad payload with a coded error, and keeps the connection', async () => {
    const s = await sioAs({ sub: 'sloppy' });
    expect(await s.request('subscribe', 'not an object')).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
    // A token that is not a string is a malformed token, answered as on every path.
    expect(await s.request('reauth', { token: 42 })).toMatchObject({ ok: false, code: 'AUTH_INVALID' });
    expect(s.socket.connected).toBe(true);
  });

  it('delivers the same event to many Socket.IO and /ws connections with identical content', async () => {
    const sios = await Promise.all(Array.from({ length: 5 }, (_, i) => sioAs({ sub: `crowd-${i}` })));
    const wss = await Promise.all(Array.from({ length: 5 }, (_, i) => wsAs({ sub: `crowd-w${i}` })));
    const users = [
      ...Array.from({ length: 5 }, (_, i) => `crowd-${i}`),
      ...Array.from({ length: 5 }, (_, i) => `crowd-w${i}`),
    ];
    const result = await gw.gateway.publish({ event: 'notice', data: { text: 'héllo ✓' }, to: { users } });
    expect(result.delivered).toBe(10);
    for (const s of sios) expect(await s.first('notice')).toEqual({ text: 'héllo ✓' });
    for (const w of wss)
      expect(await w.next((f) => f.event === 'notice')).toEqual({
        type: 'event',
        event: 'notice',
        data: { text: 'héllo ✓' },
        id: result.id,
        position: expect.any(String),
      });
  });
});
