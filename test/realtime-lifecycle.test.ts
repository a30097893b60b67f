import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { eventually, SioClient, WsClient } from './helpers/realtime.js';

/** Token lifetime used here: short enough to watch several expire, long enough for a loaded machine. */
const TTL_S = 2;

describe('token lifecycle on live connections', () => {
  let gw: TestGateway;
  const open: Array<{ close(): void }> = [];
  function track<T extends { close(): void }>(c: T): T {
    open.push(c);
    return c;
  }
  const sioWith = async (token: string) => {
    const c = track(new SioClient(gw.url, { auth: { token } }));
    await c.session();
    return c;
  };
  const wsWith = async (token: string) => {
    const c = track(new WsClient(gw.url, { protocols: [`bearer.${token}`] }));
    await c.first('session_created');
    return c;
  };

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: String(TTL_S), TOKEN_EXPIRY_WARNING_SECONDS: '1' });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await gw.close();
  });

  it('sends token_expiring before exp, then AUTH_EXPIRED and closes within 1 s of exp (both transports)', async () => {
    const s = await sioWith(gw.sign({ sub: 'sleepy-s' }, TTL_S));
    const w = await wsWith(gw.sign({ sub: 'sleepy-w' }, TTL_S));

    // Each token has its own exp (the two may straddle a second boundary): compare each to its own.
    const warnS = await s.next((e) => e.event === 'token_expiring');
    const warnSBody = warnS.args[0] as { expiresAt: number; secondsLeft: number };
    expect(warnS.at).toBeLessThan(warnSBody.expiresAt);
    expect(warnSBody.secondsLeft).toBeGreaterThan(0);
    const warnW = await w.first('token_expiring');
    const wExpiresAt = warnW.expiresAt as number;
    expect(w.arrivals.get(warnW)).toBeLessThan(wExpiresAt);
    expect(warnW.secondsLeft).toBeGreaterThan(0);

    expect(await s.first('auth_error')).toMatchObject({
      code: 'AUTH_EXPIRED',
      message: 'Authentication token has expired. Please refresh your token and reconnect.',
    });
    await s.disconnected();
    const sClosedAt = s.received.find((e) => e.event === 'disconnect')!.at;
    expect(await w.first('auth_error')).toMatchObject({ code: 'AUTH_EXPIRED' });
    const wClosed = await w.closed();
    expect(wClosed).toMatchObject({ code: 1008, reason: 'AUTH_EXPIRED' });

    expect(sClosedAt - warnSBody.expiresAt).toBeLessThan(1000);
    expect(sClosedAt).toBeGreaterThanOrEqual(warnSBody.expiresAt - 50);
    expect(wClosed.at - wExpiresAt).toBeLessThan(1000);
    expect(wClosed.at).toBeGreaterThanOrEqual(wExpiresAt - 50);
    expect(s.disconnectReason).toBe('io server disconnect');
  });

  it('stays open across three token lifetimes with reauth, missing none of a steady event stream', async () => {
    const s = await sioWith(gw.sign({ sub: 'steady' }, TTL_S));
    const w = await wsWith(gw.sign({ sub: 'steady' }, TTL_S));
    const acks: unknown[] = [];
    // Each client reauths whenever warned, as the SDK would.
    s.socket.on(
      'token_expiring',
      () => void s.request('reauth', { token: gw.sign({ sub: 'steady' }, TTL_S) }).then((a) => acks.push(a)),
    );
    w.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string };
      if (frame.type === 'token_expiring') w.send({ type: 'reauth', token: gw.sign({ sub: 'steady' }, TTL_S) });
    });

    const until = Date.now() + 3 * TTL_S * 1000 + 500;
    let seq = 0;
    while (Date.now() < until) {
      await gw.gateway.publish({ event: 'tick', data: { seq }, to: { users: ['steady'] } });
      seq++;
      await new Promise((resolve) => setTimeout(resolve, 50)); // the stream's pace, not a wait for an outcome
    }
    await gw.gateway.publish({ event: 'done', data: {}, to: { users: ['steady'] } });
    await Promise.all([s.first('done'), w.next((f) => f.event === 'done')]);

    const expected = Array.from({ length: seq }, (_, i) => i);
    expect(s.all<{ seq: number }>('tick').map((t) => t.seq)).toEqual(expected);
    expect(w.frames.filter((f) => f.event === 'tick').map((f) => (f.data as { seq: number }).seq)).toEqual(expected);
    expect(s.count('session_created')).toBe(1);
    expect(s.count('auth_error')).toBe(0);
    expect(w.count('auth_error')).toBe(0);
    expect(w.count('reauth_ok')).toBeGreaterThanOrEqual(3);
    expect(acks.length).toBeGreaterThanOrEqual(3);
    expect(acks.every((a) => (a as { ok: boolean }).ok)).toBe(true);
    expect(s.socket.connected).toBe(true);
    expect(w.closeInfo).toBeUndefined();
  }, 30_000);

  it("refuses reauth with another user's token and keeps the connection", async () => {
    const s = await sioWith(gw.sign({ sub: 'alice' }, 30));
    const w = await wsWith(gw.sign({ sub: 'alice' }, 30));
    expect(await s.request('reauth', { token: gw.sign({ sub: 'mallory' }, 30) })).toMatchObject({
      ok: false,
      code: 'AUTH_INVALID',
    });
    w.send({ type: 'reauth', token: gw.sign({ sub: 'mallory' }, 30) });
    expect(await w.first('reauth_error')).toMatchObject({ code: 'AUTH_INVALID', message: expect.any(String) });

    await gw.gateway.publish({ event: 'still_here', data: {}, to: { users: ['alice'] } });
    await s.first('still_here');
    await w.next((f) => f.event === 'still_here');
    expect(s.socket.connected).toBe(true);
  });

  it('stops delivering a scope at once when reauth narrows the grants', async () => {
    const claims = { sub: 'roamer', scopes: ['ke/muranga', 'ke/nyeri'] };
    const s = await sioWith(gw.sign(claims, 30));
    const w = await wsWith(gw.sign(claims, 30));
    const narrower = { sub: 'roamer', scopes: ['ke/nyeri'] };
    expect(await s.request('reauth', { token: gw.sign(narrower, 30) })).toMatchObject({
      ok: true,
      expiresAt: expect.any(Number),
    });
    w.send({ type: 'reauth', token: gw.sign(narrower, 30) });
    await w.first('reauth_ok');

    await gw.gateway.publish({ event: 'muranga_news', data: {}, to: { scopes: ['ke/muranga/kiharu'] } });
    await gw.gateway.publish({ event: 'nyeri_news', data: {}, to: { scopes: ['ke/nyeri'] } });
    await s.first('nyeri_news');
    await w.next((f) => f.event === 'nyeri_news');
    expect(s.count('muranga_news')).toBe(0);
    expect(w.count('event', (f) => f.event === 'muranga_news')).toBe(0);
  });

  it('disconnect by API closes every connection of the user with AUTH_REVOKED; the old token cannot reconnect', async () => {
    const token = gw.sign({ sub: 'kicked' }, 30);
    const a = await sioWith(token);
    const b = await sioWith(gw.sign({ sub: 'kicked' }, 30));
    const c = await wsWith(token);
    const other = await sioWith(gw.sign({ sub: 'bystander' }, 30));
    const answer = await gw.api('POST', '/v1/users/kicked/disconnect');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ disconnected: 3 });
    for (const s of [a, b]) {
      expect(await s.first('auth_error')).toMatchObject({ code: 'AUTH_REVOKED' });
      await s.disconnected();
    }
    expect(await c.first('auth_error')).toMatchObject({ code: 'AUTH_REVOKED' });
    expect((await c.closed()).code).toBe(1008);
    expect(other.socket.connected).toBe(true);

    const again = track(new SioClient(gw.url, { auth: { token } }));
    expect((await again.refusal()).data.code).toBe('AUTH_REVOKED');
  });
});

describe('heartbeats', () => {
  it('reaps a /ws client that stops answering pings within interval + timeout, and keeps a healthy one', async () => {
    const gw = await startGateway({ PING_INTERVAL_MS: '200', PING_TIMEOUT_MS: '300' });
    try {
      // The heartbeat clock starts at the upgrade, after this instant.
      const since = Date.now();
      const silent = new WsClient(gw.url, { protocols: [`bearer.${gw.sign({ sub: 'half-open' })}`], autoPong: false });
      const healthy = new WsClient(gw.url, { protocols: [`bearer.${gw.sign({ sub: 'healthy' })}`] });
      await Promise.all([silent.first('session_created'), healthy.first('session_created')]);
      const closed = await silent.closed();
      expect(closed.at - since).toBeGreaterThanOrEqual(200 + 300); // not before interval + timeout
      expect(closed.at - since).toBeLessThan(200 + 300 + 1500); // nor much later (slack for a loaded machine)
      await eventually(
        'the hub forgot the reaped session',
        () => gw.internals.hub.presence('half-open').length === 0,
        2000,
      );
      expect(healthy.closeInfo).toBeUndefined();
      expect(gw.internals.hub.presence('healthy')).toHaveLength(1);
      healthy.close();
    } finally {
      await gw.close();
    }
  });

  it('passes the heartbeat settings to Socket.IO', async () => {
    const gw = await startGateway({ PING_INTERVAL_MS: '300', PING_TIMEOUT_MS: '400' });
    try {
      const s = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'pinged' }) } });
      await s.session();
      const pings: number[] = [];
      s.socket.io.engine.on('ping', () => pings.push(Date.now()));
      await new Promise<void>((resolve) => s.socket.io.engine.on('ping', () => pings.length >= 3 && resolve()));
      const gaps = pings.slice(1).map((t, i) => t - pings[i]!);
      for (const gap of gaps) expect(gap).toBeLessThan(1000);
      s.close();
    } finally {
      await gw.close();
    }
  });
});
