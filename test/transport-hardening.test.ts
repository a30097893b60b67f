import { AUTH_MESSAGES } from '@tether/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { RawWs } from './helpers/raw-ws.js';
import { FuzzSio } from './helpers/fuzz-harness.js';
import { eventually, SioClient, WAIT_MS, WsClient, type Frame } from './helpers/realtime.js';

const APP = 'http://app.example.test';
/** Over the 16 KiB token ceiling; fits in a frame and a Socket.IO packet, not in an HTTP header. */
const HUGE_TOKEN = 'a'.repeat(20_000);
/** Short, but not the characters of a compact JWT. */
const BAD_CHARSET_TOKEN = 'abc$def.ghi!.jkl';
const MALFORMED = { code: 'AUTH_INVALID', message: AUTH_MESSAGES.malformed };

describe('one malformed token, one answer: AUTH_INVALID on every path', () => {
  let gw: TestGateway;
  const open: Array<{ close(): void }> = [];
  function track<T extends { close(): void }>(c: T): T {
    open.push(c);
    return c;
  }

  beforeAll(async () => {
    gw = await startGateway({ ALLOWED_ORIGINS: APP, ALLOW_QUERY_TOKEN: 'true', JWT_EXPIRATION_SECONDS: '60' });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await gw.close();
  });

  /** A live connection still gets what is published to its user. */
  async function publishTo(user: string, marker: string): Promise<void> {
    const answer = await gw.api('POST', '/v1/publish', { event: 'probe', data: { marker }, to: { users: [user] } });
    expect(answer.status).toBe(202);
  }

  async function wsSession(sub: string): Promise<WsClient> {
    const ws = track(new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub })}` } }));
    await ws.first('session_created');
    return ws;
  }

  async function sioSession(sub: string): Promise<SioClient> {
    const sio = track(new SioClient(gw.url, { auth: { token: gw.sign({ sub }) } }));
    await sio.session();
    return sio;
  }

  it.each([
    ['20 KB', HUGE_TOKEN],
    ['bad charset', BAD_CHARSET_TOKEN],
    ['a number', 42],
    ['an object', { nested: 'x' }],
  ])('Socket.IO handshake auth.token (%s) is refused with AUTH_INVALID', async (_what, token) => {
    const refusal = await track(new SioClient(gw.url, { auth: { token } })).refusal();
    expect(refusal.message).toBe('AUTH_INVALID');
    expect(refusal.data).toMatchObject(MALFORMED);
  });

  it('Socket.IO handshake header, cookie and query tokens of the wrong shape are refused with AUTH_INVALID', async () => {
    const header = track(new SioClient(gw.url, { headers: { authorization: `Bearer ${BAD_CHARSET_TOKEN}` } }));
    const cookie = track(
      new SioClient(gw.url, { headers: { origin: APP, cookie: `access_token=${BAD_CHARSET_TOKEN}` } }),
    );
    const query = track(new SioClient(gw.url, { query: { token: BAD_CHARSET_TOKEN } }));
    for (const client of [header, cookie, query]) expect((await client.refusal()).data).toMatchObject(MALFORMED);
  });

  it.each([
    ['20 KB', HUGE_TOKEN],
    ['bad charset', BAD_CHARSET_TOKEN],
    ['a number', 42],
    ['an array', ['x']],
  ])('/ws first frame with a token that is %s: auth_error AUTH_INVALID, then close 1008', async (_what, token) => {
    const ws = track(new WsClient(gw.url));
    await ws.opened();
    ws.send({ type: 'authenticate', token });
    expect(await ws.first('auth_error')).toMatchObject(MALFORMED);
    expect((await ws.closed()).code).toBe(1008);
    expect(ws.count('error')).toBe(0);
  });

  it('/ws first frame without a token: auth_error AUTH_REQUIRED, then close 1008', async () => {
    const ws = track(new WsClient(gw.url));
    await ws.opened();
    ws.send({ type: 'authenticate' });
    expect(await ws.first('auth_error')).toMatchObject({ code: 'AUTH_REQUIRED' });
    expect((await ws.closed()).code).toBe(1008);
  });

  it('/ws handshake tokens of the wrong shape (header, cookie, subprotocol, query) are refused with AUTH_INVALID', async () => {
    const clients = [
      new WsClient(gw.url, { headers: { authorization: `Bearer ${BAD_CHARSET_TOKEN}` } }),
      new WsClient(gw.url, { headers: { origin: APP, cookie: `access_token=${BAD_CHARSET_TOKEN}` } }),
      new WsClient(gw.url, { protocols: ['bearer.abc.def'] }),
      new WsClient(gw.url, { path: `/ws?token=${encodeURIComponent(BAD_CHARSET_TOKEN)}` }),
    ].map(track);
    for (const ws of clients) {
      expect(await ws.first('auth_error')).toMatchObject({ code: 'AUTH_INVALID' });
      expect((await ws.closed()).code).toBe(1008);
    }
  });

  it.each([
    ['20 KB', HUGE_TOKEN, MALFORMED],
    ['bad charset', BAD_CHARSET_TOKEN, MALFORMED],
    ['a number', 42, MALFORMED],
    ['missing', undefined, { code: 'AUTH_REQUIRED' }],
  ])('/ws reauth with a token that is %s: reauth_error, and the connection stays', async (what, token, expected) => {
    const user = `ws-reauth-${what.replace(/\W/g, '')}`;
    const ws = await wsSession(user);
    ws.send({ type: 'reauth', token });
    expect(await ws.first('reauth_error')).toMatchObject(expected);
    expect(ws.count('error')).toBe(0);
    await publishTo(user, 'after');
    expect(await ws.first('event')).toMatchObject({ event: 'probe', data: { marker: 'after' } });
    expect(ws.closeInfo).toBeUndefined();
  });

  it.each([
    ['20 KB', HUGE_TOKEN, MALFORMED],
    ['bad charset', BAD_CHARSET_TOKEN, MALFORMED],
    ['an object', { a: 1 }, MALFORMED],
    ['missing', undefined, { code: 'AUTH_REQUIRED' }],
  ])(
    'Socket.IO reauth with a token that is %s: {ok:false} ack, and the connection stays',
    async (what, token, expected) => {
      const user = `sio-reauth-${what.replace(/\W/g, '')}`;
      const sio = await sioSession(user);
      expect(await sio.request('reauth', { token })).toMatchObject({ ok: false, ...expected });
      await publishTo(user, 'after');
      expect(await sio.first('probe')).toMatchObject({ marker: 'after' });
      expect(sio.socket.connected).toBe(true);
    },
  );

  it('HTTP Bearer access token of the wrong shape (logout) is 401 AUTH_INVALID', async () => {
    const answer = await gw.http('POST', '/auth/logout', {}, { authorization: `Bearer ${BAD_CHARSET_TOKEN}` });
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject(MALFORMED);
  });

  describe('other frame fields: one rule, one coded answer per request', () => {
    it('/ws subscribe with a huge or non-string channel gets subscribe_error VALIDATION_FAILED with its rid', async () => {
      const ws = await wsSession('ws-channel');
      ws.send({ type: 'subscribe', channel: 'c'.repeat(10_000), rid: 'huge' });
      ws.send({ type: 'subscribe', channel: 7, rid: 'number' });
      ws.send({ type: 'unsubscribe', channel: 'x'.repeat(300), rid: 'long' });
      for (const rid of ['huge', 'number', 'long']) {
        const answer = await ws.next((f) => f.rid === rid);
        expect(answer).toMatchObject({ type: 'subscribe_error', code: 'VALIDATION_FAILED', rid });
        expect(String(answer.channel).length).toBeLessThanOrEqual(200);
      }
      expect(ws.count('error')).toBe(0);
    });

    it('Socket.IO subscribe with a huge or non-string channel gets the same VALIDATION_FAILED', async () => {
      const sio = await sioSession('sio-channel');
      for (const channel of ['c'.repeat(10_000), 7, null]) {
        expect(await sio.request('subscribe', { channel })).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
      }
    });

    it('/ws narrow with scopes that are not a list gets narrow_error VALIDATION_FAILED with its rid', async () => {
      const ws = await wsSession('ws-narrow');
      ws.send({ type: 'narrow', scopes: 'ke/muranga', rid: 'string' });
      ws.send({ type: 'narrow', scopes: Array.from({ length: 5000 }, (_, i) => `s/${i}`), rid: 'long' });
      for (const rid of ['string', 'long']) {
        expect(await ws.next((f: Frame) => f.rid === rid)).toMatchObject({
          type: 'narrow_error',
          code: 'VALIDATION_FAILED',
        });
      }
      expect(ws.count('error')).toBe(0);
    });
  });
});

describe('Socket.IO requests whatever their shape (found by the fuzz suite)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({});
  });
  afterAll(async () => {
    await gw.close();
  });

  it('a request with no payload, or with extra arguments, still gets its coded ack', async () => {
    const sio = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'shapeless', channels: ['*'] }) } });
    try {
      await sio.session();
      // socket.io hands the ack over as the last argument, after however many the client sent.
      const none = (await sio.socket.timeout(WAIT_MS).emitWithAck('subscribe')) as unknown;
      expect(none).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
      const extra = (await sio.socket
        .timeout(WAIT_MS)
        .emitWithAck('subscribe', { channel: 'x:1' }, 'more', 3)) as unknown;
      expect(extra).toMatchObject({ ok: true, channel: 'x:1' });
      const reauth = (await sio.socket.timeout(WAIT_MS).emitWithAck('reauth')) as unknown;
      expect(reauth).toMatchObject({ ok: false, code: 'AUTH_REQUIRED' });
    } finally {
      sio.close();
    }
  });

  it('an engine.io connection that leaves the namespace is closed, not left open without a session', async () => {
    const conn = await FuzzSio.open(gw.url, gw.sign({ sub: 'leaver' }));
    // A namespace DISCONNECT packet for "/": socket.io ends the socket but keeps the engine.io connection.
    conn.raw('1');
    await eventually('the engine.io connection closed', () => !conn.connected);
    expect(conn.disconnectReason).toBe('transport close');
    await eventually('the session ended', () => gw.internals.hub.stats().sessions === 0);
  });
});

describe('engine.io handshakes and the per-IP connect rate', () => {
  const RATE = 5;
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ CONNECT_RATE_PER_IP: String(RATE) }, { wsAuthTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    await gw.close();
  });

  /** Sessions the limiter can have let through in `ms`: the burst, the refill, the few over-rate ones refused in-band. */
  const ceiling = (ms: number) => RATE + Math.ceil((RATE * ms) / 1000) + 8;

  it('a flood of polling handshakes from one address gets few session ids; the rest a 403 RATE_LIMITED', async () => {
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 80 }, async () => {
        const res = await fetch(`${gw.url}/socket.io/?EIO=4&transport=polling`);
        return { status: res.status, text: await res.text() };
      }),
    );
    const elapsed = performance.now() - started;
    const opened = answers.filter((a) => a.status === 200 && a.text.includes('"sid"'));
    const refused = answers.filter((a) => a.status === 403);
    expect(opened.length).toBeLessThanOrEqual(ceiling(elapsed));
    expect(opened.length + refused.length).toBe(answers.length);
    expect(JSON.parse(refused[0]!.text)).toEqual({ code: 4, message: 'RATE_LIMITED' });
  });

  it('a flood of websocket-transport handshakes from one address is refused the same way', async () => {
    // The first test's budget may still be spent: whatever this flood gets is bounded the same way.
    const started = performance.now();
    const raws = Array.from(
      { length: 60 },
      () => new RawWs(gw.port, { path: '/socket.io/?EIO=4&transport=websocket' }),
    );
    try {
      await eventually('every upgrade answered', () => raws.every((r) => r.status !== undefined || r.ended));
      const elapsed = performance.now() - started;
      const upgraded = raws.filter((r) => r.status === 101);
      expect(upgraded.length).toBeLessThanOrEqual(ceiling(elapsed));
      expect(raws.filter((r) => r.status === 400).length).toBe(raws.length - upgraded.length);
    } finally {
      for (const r of raws) r.destroy();
    }
  });
});

describe('engine.io handshakes: sessions that never connect', () => {
  it('an engine.io session that never connects to the namespace is closed after the auth timeout', async () => {
    const gw = await startGateway({}, { wsAuthTimeoutMs: 500 });
    try {
      const sid = await pollingHandshake(gw.url);
      // The long-poll is answered with engine.io's close packet ("1") once the session is dropped.
      const started = performance.now();
      const res = await fetch(`${gw.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      expect(await res.text()).toBe('1');
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await gw.close();
    }
  });
});

describe('engine.io handshakes: what an honest client sees', () => {
  it('a Socket.IO connection spends one connect token, whatever its transport', async () => {
    const gw = await startGateway({ CONNECT_RATE_PER_IP: '4' });
    try {
      const token = gw.sign({ sub: 'frugal' });
      const clients = [
        new SioClient(gw.url, { auth: { token }, transports: ['polling'] }),
        new SioClient(gw.url, { auth: { token }, transports: ['websocket'] }),
        new SioClient(gw.url, { auth: { token }, transports: ['polling'] }),
        new SioClient(gw.url, { auth: { token }, transports: ['websocket'] }),
      ];
      try {
        // One after the other: four connections fit in a bucket of four only if each costs one.
        for (const c of clients) await c.session();
      } finally {
        for (const c of clients) c.close();
      }
    } finally {
      await gw.close();
    }
  });

  it('an over-rate Socket.IO client is told RATE_LIMITED in a connect_error with retryAfterMs', async () => {
    const gw = await startGateway({ CONNECT_RATE_PER_IP: '2' });
    try {
      const token = gw.sign({ sub: 'eager' });
      const clients = Array.from({ length: 5 }, () => new SioClient(gw.url, { auth: { token } }));
      try {
        const outcomes = await Promise.all(
          clients.map((c) =>
            c.session().then(
              () => undefined,
              (e: { data?: { code: string; retryAfterMs?: number } }) => e.data,
            ),
          ),
        );
        const limited = outcomes.filter((o) => o !== undefined);
        expect(limited.length).toBeGreaterThanOrEqual(1);
        for (const body of limited)
          expect(body).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) });
      } finally {
        for (const c of clients) c.close();
      }
    } finally {
      await gw.close();
    }
  });

  it('namespace connects repeated on one engine.io session are counted against the rate too', async () => {
    const gw = await startGateway({ CONNECT_RATE_PER_IP: '2' });
    try {
      const sid = await pollingHandshake(gw.url);
      // Twenty CONNECT packets with a bad token in one POST: the handshake paid for the first only.
      const payload = Array.from({ length: 20 }, () => '40{"token":"x.y.z"}').join('\x1e');
      const posted = await fetch(`${gw.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
        method: 'POST',
        body: payload,
      });
      expect(posted.status).toBe(200);
      const answers: string[] = [];
      while (answers.length < 20) {
        const res = await fetch(`${gw.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
        answers.push(...(await res.text()).split('\x1e').filter((p) => p.startsWith('44')));
      }
      const codes = answers.map((p) => (JSON.parse(p.slice(2)) as { data: { code: string } }).data.code);
      // Verified (and refused) are only the connects the bucket of two paid for, the handshake's included.
      const verified = codes.filter((c) => c === 'AUTH_INVALID').length;
      expect(verified).toBeGreaterThanOrEqual(1);
      expect(verified).toBeLessThanOrEqual(4);
      expect(codes.filter((c) => c === 'RATE_LIMITED').length).toBe(20 - verified);
    } finally {
      await gw.close();
    }
  });
});

/** Opens an engine.io polling session (no namespace connect); returns its sid. */
async function pollingHandshake(url: string): Promise<string> {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  const text = await res.text();
  expect(res.status).toBe(200);
  return (JSON.parse(text.slice(1)) as { sid: string }).sid;
}
