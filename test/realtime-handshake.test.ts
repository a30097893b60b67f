import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PendingPublishes } from '../packages/server/src/hub/backlog.js';
import { attachWs } from '../packages/server/src/transports/ws.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

const APP = 'http://app.example.test';
const EVIL = 'http://evil.example.test';

describe('handshake: token sources, priority and origins', () => {
  let gw: TestGateway;
  const open: Array<{ close(): void }> = [];
  const sio = (options: ConstructorParameters<typeof SioClient>[1] = {}) => track(new SioClient(gw.url, options));
  const ws = (options: ConstructorParameters<typeof WsClient>[1] = {}) => track(new WsClient(gw.url, options));
  function track<T extends { close(): void }>(c: T): T {
    open.push(c);
    return c;
  }

  beforeAll(async () => {
    gw = await startGateway({ ALLOWED_ORIGINS: APP, JWT_EXPIRATION_SECONDS: '60' });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await gw.close();
  });

  describe('Socket.IO', () => {
    it('accepts a token from each source: auth object, Authorization header, allowed cookie', async () => {
      const a = await sio({ auth: { token: gw.sign({ sub: 'sio-auth' }) } }).session();
      const h = await sio({ headers: { authorization: `Bearer ${gw.sign({ sub: 'sio-header' })}` } }).session();
      const c = await sio({
        headers: { origin: APP, cookie: `theme=dark; access_token=${gw.sign({ sub: 'sio-cookie' })}` },
      }).session();
      expect([a.userId, h.userId, c.userId]).toEqual(['sio-auth', 'sio-header', 'sio-cookie']);
      expect(a).toMatchObject({
        isGuest: false,
        sessionId: expect.any(String),
        expiresAt: expect.any(Number),
        timestamp: expect.any(Number),
      });
    });

    it('takes auth.token before the header, and the header before the cookie', async () => {
      const authWins = await sio({
        auth: { token: gw.sign({ sub: 'first' }) },
        headers: {
          authorization: `Bearer ${gw.sign({ sub: 'second' })}`,
          origin: APP,
          cookie: `access_token=${gw.sign({ sub: 'third' })}`,
        },
      }).session();
      const headerWins = await sio({
        headers: {
          authorization: `Bearer ${gw.sign({ sub: 'second' })}`,
          origin: APP,
          cookie: `access_token=${gw.sign({ sub: 'third' })}`,
        },
      }).session();
      expect(authWins.userId).toBe('first');
      expect(headerWins.userId).toBe('second');
    });

    it('refuses a query token when ALLOW_QUERY_TOKEN is off', async () => {
      const refusal = await sio({ query: { token: gw.sign({ sub: 'q' }) } }).refusal();
      expect(refusal.message).toBe('AUTH_REQUIRED');
      expect(refusal.data).toMatchObject({
        code: 'AUTH_REQUIRED',
        message: expect.any(String),
        timestamp: expect.any(Number),
      });
    });

    it('refuses a cookie sent from a foreign Origin, whatever the token', async () => {
      const refusal = await sio({
        headers: { origin: EVIL, cookie: `access_token=${gw.sign({ sub: 'victim' })}` },
      }).refusal();
      expect(refusal.message).toBe('ORIGIN_FORBIDDEN');
      expect(refusal.data.code).toBe('ORIGIN_FORBIDDEN');
    });

    it('ignores a cookie when there is no Origin (non-browser clients use auth or header)', async () => {
      const refusal = await sio({ headers: { cookie: `access_token=${gw.sign({ sub: 'native' })}` } }).refusal();
      expect(refusal.message).toBe('AUTH_REQUIRED');
    });

    it('answers a missing, malformed or expired token with the contract code and message', async () => {
      expect((await sio().refusal()).data).toMatchObject({ code: 'AUTH_REQUIRED' });
      expect((await sio({ auth: { token: 'not-a-jwt' } }).refusal()).data).toMatchObject({
        code: 'AUTH_INVALID',
        message: 'Invalid authentication token format',
      });
      const forged = gw.sign({ sub: 'x' }).slice(0, -4) + 'AAAA';
      expect((await sio({ auth: { token: forged } }).refusal()).data).toMatchObject({
        code: 'AUTH_INVALID',
        message: 'Invalid authentication token',
      });
    });

    it('works over HTTP long-polling too', async () => {
      const s = await sio({ transports: ['polling'], auth: { token: gw.sign({ sub: 'poller' }) } }).session();
      expect(s.userId).toBe('poller');
    });
  });

  describe('plain WebSocket', () => {
    it('accepts a token from each source: header, allowed cookie, bearer subprotocol (echoed), first frame', async () => {
      const header = ws({ headers: { authorization: `Bearer ${gw.sign({ sub: 'ws-header' })}` } });
      const cookie = ws({ headers: { origin: APP, cookie: `access_token=${gw.sign({ sub: 'ws-cookie' })}` } });
      const protocol = `bearer.${gw.sign({ sub: 'ws-proto' })}`;
      const proto = ws({ protocols: [protocol] });
      const frame = ws();
      await frame.opened();
      frame.send({ type: 'authenticate', token: gw.sign({ sub: 'ws-frame' }) });
      const ids = await Promise.all(
        [header, cookie, proto, frame].map(async (c) => (await c.first('session_created')).userId),
      );
      expect(ids).toEqual(['ws-header', 'ws-cookie', 'ws-proto', 'ws-frame']);
      expect(proto.ws.protocol).toBe(protocol);
    });

    it('takes the header before the cookie, the cookie before the subprotocol', async () => {
      const headerWins = ws({
        headers: {
          authorization: `Bearer ${gw.sign({ sub: 'h' })}`,
          origin: APP,
          cookie: `access_token=${gw.sign({ sub: 'c' })}`,
        },
        protocols: [`bearer.${gw.sign({ sub: 'p' })}`],
      });
      const cookieWins = ws({
        headers: { origin: APP, cookie: `access_token=${gw.sign({ sub: 'c' })}` },
        protocols: [`bearer.${gw.sign({ sub: 'p' })}`],
      });
      expect((await headerWins.first('session_created')).userId).toBe('h');
      expect((await cookieWins.first('session_created')).userId).toBe('c');
    });

    it('refuses a foreign Origin with auth_error ORIGIN_FORBIDDEN and close 1008', async () => {
      const c = ws({ headers: { origin: EVIL, cookie: `access_token=${gw.sign({ sub: 'victim' })}` } });
      expect(await c.first('auth_error')).toMatchObject({
        code: 'ORIGIN_FORBIDDEN',
        message: expect.any(String),
        timestamp: expect.any(Number),
      });
      expect((await c.closed()).code).toBe(1008);
    });

    it('ignores a query token when ALLOW_QUERY_TOKEN is off: the client must still authenticate', async () => {
      const c = ws({ path: `/ws?token=${gw.sign({ sub: 'q' })}` });
      await c.opened();
      c.send({ type: 'subscribe', channel: 'x' });
      expect(await c.first('auth_error')).toMatchObject({ code: 'AUTH_REQUIRED' });
      expect((await c.closed()).code).toBe(1008);
    });

    it('handles frames sent before session_created once the handshake token is verified', async () => {
      const c = ws({ headers: { authorization: `Bearer ${gw.sign({ sub: 'eager', channels: ['news'] })}` } });
      await c.opened();
      c.send({ type: 'subscribe', channel: 'news', rid: 'early' });
      expect(await c.first('subscribed')).toEqual({ type: 'subscribed', channel: 'news', rid: 'early' });
      const order = c.frames.map((f) => f.type);
      expect(order.indexOf('session_created')).toBeLessThan(order.indexOf('subscribed'));
    });

    it('refuses a bad first-frame token with AUTH_INVALID and close 1008', async () => {
      const c = ws();
      await c.opened();
      c.send({ type: 'authenticate', token: 'garbage' });
      expect(await c.first('auth_error')).toMatchObject({
        code: 'AUTH_INVALID',
        message: 'Invalid authentication token format',
      });
      expect(await c.closed()).toMatchObject({ code: 1008, reason: 'AUTH_INVALID' });
    });
  });

  it('never writes a token to the logs', async () => {
    const token = gw.sign({ sub: 'secretive' });
    await new SioClient(gw.url, { auth: { token } }).session().then(() => undefined);
    const c = ws({ protocols: [`bearer.${token}`] });
    await c.first('session_created');
    const logs = gw.logs();
    expect(logs).toContain('"tokenSource":"subprotocol"');
    expect(logs).not.toContain(token);
    expect(logs).not.toContain(token.split('.')[2]);
  });
});

describe('handshake: query tokens when enabled', () => {
  it('accepts ?token= on both transports, after every other source, and logs a warning without the token', async () => {
    const gw = await startGateway({ ALLOW_QUERY_TOKEN: 'true' });
    try {
      const token = gw.sign({ sub: 'query-user' });
      const s = new SioClient(gw.url, { query: { token } });
      expect((await s.session()).userId).toBe('query-user');
      const headerWins = new SioClient(gw.url, {
        query: { token },
        headers: { authorization: `Bearer ${gw.sign({ sub: 'header-user' })}` },
      });
      expect((await headerWins.session()).userId).toBe('header-user');
      const w = new WsClient(gw.url, { path: `/ws?token=${token}` });
      expect((await w.first('session_created')).userId).toBe('query-user');
      const protoWins = new WsClient(gw.url, {
        path: `/ws?token=${token}`,
        protocols: [`bearer.${gw.sign({ sub: 'proto-user' })}`],
      });
      expect((await protoWins.first('session_created')).userId).toBe('proto-user');
      const warnings = gw
        .logs()
        .split('\n')
        .filter((l) => l.includes('URL query'));
      expect(warnings.length).toBeGreaterThanOrEqual(2);
      expect(warnings.every((l) => l.includes('"level":40') && !l.includes(token))).toBe(true);
      for (const c of [s, headerWins, w, protoWins]) c.close();
    } finally {
      await gw.close();
    }
  });
});

describe('handshake: limits', () => {
  it('refuses a connection over MAX_CONNECTIONS_PER_USER with CONNECTION_LIMIT on both transports', async () => {
    const gw = await startGateway({ MAX_CONNECTIONS_PER_USER: '1' });
    try {
      const first = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'one' }) } });
      await first.session();
      const second = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'one' }) } });
      expect((await second.refusal()).data.code).toBe('CONNECTION_LIMIT');
      const third = new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'one' })}` } });
      expect(await third.first('auth_error')).toMatchObject({ code: 'CONNECTION_LIMIT' });
      expect((await third.closed()).code).toBe(1013);
      first.close();
    } finally {
      await gw.close();
    }
  });

  /** A `/ws` server of its own on a gateway's parts, counting each upgrade socket's write calls. */
  async function wsServer(
    options: { wsAuthTimeoutMs?: number; writeHoldMs?: number; backlog?: PendingPublishes } = {},
  ) {
    const { backlog, ...wsOptions } = options;
    const gw = await startGateway();
    const server = createServer();
    // Each call of a socket's _write/_writev is one write(2)/writev(2); its number of chunks is kept.
    const writes: number[] = [];
    server.prependListener('upgrade', (_req, socket: Socket) => {
      const counted = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
      for (const name of ['_write', '_writev'] as const) {
        const original = counted[name]!;
        counted[name] = function (this: Socket, ...args: unknown[]) {
          writes.push(name === '_writev' ? (args[0] as unknown[]).length : 1);
          return original.apply(this, args);
        };
      }
    });
    const handle = attachWs(server, {
      config: gw.gateway.config,
      // A backlog the test moves stands for publishes pending in the hub.
      hub: backlog === undefined ? gw.internals.hub : { ...gw.internals.hub, backlog },
      authenticator: gw.internals.authenticator,
      logger: gw.gateway.logger,
      clock: gw.internals.clock,
      ...wsOptions,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      gw,
      writes,
      url,
      /** A `/ws` client of `sub` with its token on the upgrade, once `session_created` came. */
      async connect(sub: string) {
        const client = new WsClient(url, { headers: { authorization: `Bearer ${gw.sign({ sub })}` } });
        return { client, session: await client.first('session_created') };
      },
      async close() {
        await handle.close();
        await new Promise((resolve) => server.close(resolve));
        await gw.close();
      },
    };
  }

  it('writes the 101 answer and session_created in one write when the token comes with the upgrade', async () => {
    const counting = await wsServer();
    try {
      const { client, session } = await counting.connect('one-write');
      expect(session.userId).toBe('one-write');
      const { writes } = counting;
      // One write of two chunks: the 101 answer and the frame.
      expect(writes).toEqual([2]);
      client.close();
    } finally {
      await counting.close();
    }
  });

  it('holds event frames past their turn while publishes are pending, so a burst leaves in one write', async () => {
    const backlog = new PendingPublishes();
    // A wait bounded by the backlog only, on a loaded machine; the bound is checked below.
    const counting = await wsServer({ backlog, writeHoldMs: 2000 });
    try {
      const { gw, writes } = counting;
      const { client } = await counting.connect('burst');
      expect(writes).toEqual([2]);
      const publish = (n: number) =>
        gw.internals.hub.publish({ event: 'burst', data: { n }, to: { users: ['burst'] } });
      // Alone, an event leaves at the end of its turn.
      await publish(0);
      await client.nth('event', 0);
      expect(writes).toEqual([2, 1]);
      // A publish is pending (in the log, or on its way): the delivered ones wait for it.
      backlog.enter();
      await publish(1);
      await new Promise((resolve) => setImmediate(resolve));
      await publish(2);
      expect(writes).toEqual([2, 1]);
      backlog.leave();
      expect(writes).toEqual([2, 1, 2]);
      expect((await client.nth('event', 2)).data).toEqual({ n: 2 });
      // However long the backlog stays busy, a frame waits at most writeHoldMs after its turn.
      backlog.enter();
      const waitFrom = Date.now();
      await publish(3);
      expect((await client.nth('event', 3, 5000)).data).toEqual({ n: 3 });
      expect(Date.now() - waitFrom).toBeGreaterThanOrEqual(1900);
      expect(writes).toEqual([2, 1, 2, 1]);
      backlog.leave();
      client.close();
    } finally {
      await counting.close();
    }
  });

  it("writes a lone event's frame as soon as its publish is delivered, before the turn ends", async () => {
    const counting = await wsServer();
    try {
      const { gw, writes } = counting;
      const { client } = await counting.connect('lone');
      expect(writes).toEqual([2]);
      await gw.internals.hub.publish({ event: 'lone', data: {}, to: { users: ['lone'] } });
      // No turn has ended since the delivery (this runs in the same microtask drain): written already.
      expect(writes).toEqual([2, 1]);
      expect((await client.first('event')).event).toBe('lone');
      client.close();
    } finally {
      await counting.close();
    }
  });

  it('answers a /ws client that never authenticates with AUTH_TIMEOUT and close 1008', async () => {
    const standalone = await wsServer({ wsAuthTimeoutMs: 300 });
    try {
      const { gw, url } = standalone;
      const silent = new WsClient(url);
      await silent.opened();
      const openedAt = Date.now();
      expect(await silent.first('auth_error')).toMatchObject({ code: 'AUTH_TIMEOUT' });
      const closed = await silent.closed();
      expect(closed).toMatchObject({ code: 1008, reason: 'AUTH_TIMEOUT' });
      expect(closed.at - openedAt).toBeGreaterThanOrEqual(250);

      const prompt = new WsClient(url);
      await prompt.opened();
      prompt.send({ type: 'authenticate', token: gw.sign({ sub: 'prompt' }) });
      expect((await prompt.first('session_created')).userId).toBe('prompt');
      prompt.close();
    } finally {
      await standalone.close();
    }
  });
});
