import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SessionCreatedPayload } from '@tether/protocol';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient, waitUntil } from './helpers/realtime.js';

type Kind = 'socket.io' | 'ws';

/** One connection of either transport, seen as: its session_created, then its `tick` events in order. */
interface Conn {
  session(): Promise<SessionCreatedPayload>;
  /** `n` of every `tick` received, in arrival order, with its position. */
  ticks(): Array<{ n: number; position: string | undefined }>;
  waitTicks(count: number, ms?: number): Promise<void>;
  refusal(): Promise<string>;
  close(): void;
}

function connect(
  gw: TestGateway,
  kind: Kind,
  token: string,
  resume: { position?: string; channels?: string[] } = {},
): Conn {
  if (kind === 'socket.io') {
    const c = new SioClient(gw.url, { auth: { token, ...resume } });
    const ticks = () =>
      c.all<{ n: number }>('tick').map((data, i) => ({
        n: data.n,
        position: (c.received.filter((e) => e.event === 'tick')[i]?.args[1] as { position?: string } | undefined)
          ?.position,
      }));
    return {
      session: () => c.session(),
      ticks,
      waitTicks: (count, ms = 30_000) =>
        waitUntil(
          `${count} ticks`,
          () => (ticks().length >= count ? true : undefined),
          (poke) => c.subscribe(poke),
          ms,
        ).then(() => undefined),
      refusal: async () => (await c.refusal()).data.code,
      close: () => c.close(),
    };
  }
  const c = new WsClient(gw.url);
  c.ws.on('open', () => c.send({ type: 'authenticate', token, ...resume }));
  const ticks = () =>
    c.frames
      .filter((f) => f.type === 'event' && f.event === 'tick')
      .map((f) => ({ n: (f.data as { n: number }).n, position: f.position as string | undefined }));
  return {
    session: async () => {
      const f = await c.next((x) => x.type === 'session_created' || x.type === 'auth_error');
      if (f.type !== 'session_created') throw new Error(`refused: ${String(f.code)}`);
      return f as unknown as SessionCreatedPayload;
    },
    ticks,
    waitTicks: (count, ms = 30_000) =>
      waitUntil(
        `${count} ticks`,
        () => (ticks().length >= count ? true : undefined),
        (poke) => c.subscribe(poke),
        ms,
      ).then(() => undefined),
    refusal: async () => String((await c.first('auth_error')).code),
    close: () => c.close(),
  };
}

const kinds: Kind[] = ['socket.io', 'ws'];

describe('recovery on reconnect', () => {
  let gw: TestGateway;
  const open: Conn[] = [];
  const track = (c: Conn): Conn => (open.push(c), c);

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '600' });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await gw?.close();
  });

  const tick = (user: string, n: number) => gw.gateway.publish({ event: 'tick', data: { n }, to: { users: [user] } });

  it.concurrent.each(kinds)(
    'a %s client disconnected for 20 s while 200 events are published reconnects and receives all 200 and the live tail, in order, none twice',
    async (kind) => {
      // Concurrent with its twin: closes its own connections (afterEach would close the twin's too).
      const user = `rec-${kind}`;
      const first = connect(gw, kind, gw.sign({ sub: user }));
      const created = await first.session();
      expect(created.recovered).toBe(false); // a first connect has nothing to recover
      expect(created.position).toEqual(expect.any(String));
      await tick(user, 0);
      await first.waitTicks(1);
      const position = first.ticks()[0]?.position;
      expect(position).toEqual(expect.any(String));
      first.close();

      // 200 events over 20 s, with someone else's events in between (not to be replayed here).
      for (let n = 1; n <= 200; n++) {
        await tick(user, n);
        await gw.gateway.publish({ event: 'tick', data: { n: -n }, to: { users: [`${user}-other`] } });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // Reconnect while 50 more are being published: the seam between replay and live.
      const second = connect(gw, kind, gw.sign({ sub: user }), { position });
      try {
        const tail = (async () => {
          for (let n = 201; n <= 250; n++) await tick(user, n);
        })();
        const resumed = await second.session();
        expect(resumed.recovered).toBe(true);
        await tail;
        await second.waitTicks(250);
        await tick(user, 251); // a marker: nothing else was in flight
        await second.waitTicks(251);
        expect(second.ticks().map((t) => t.n)).toEqual(Array.from({ length: 251 }, (_, i) => i + 1));
        // Positions grow with every event (same epoch, per-epoch sequence).
        const seqs = second.ticks().map((t) => Number(t.position?.split(':')[1]));
        expect(seqs.every((s, i) => i === 0 || s > (seqs[i - 1] ?? 0))).toBe(true);
      } finally {
        second.close();
      }
    },
    60_000,
  );

  it.each(kinds)(
    'a %s client whose position was trimmed away gets recovered:false, no replay, and then live events',
    async (kind) => {
      const small = await startGateway({ JWT_EXPIRATION_SECONDS: '600', HISTORY_MAX_EVENTS: '5' });
      try {
        const user = `trim-${kind}`;
        const first = connect(small, kind, small.sign({ sub: user }));
        await first.session();
        await small.gateway.publish({ event: 'tick', data: { n: 0 }, to: { users: [user] } });
        await first.waitTicks(1);
        const position = first.ticks()[0]?.position;
        first.close();
        for (let n = 1; n <= 20; n++)
          await small.gateway.publish({ event: 'tick', data: { n }, to: { users: [user] } });
        expect(await small.gateway.log.trim()).toBeGreaterThan(0);

        const second = connect(small, kind, small.sign({ sub: user }), { position });
        const resumed = await second.session();
        expect(resumed.recovered).toBe(false);
        await small.gateway.publish({ event: 'tick', data: { n: 21 }, to: { users: [user] } });
        await second.waitTicks(1);
        expect(second.ticks().map((t) => t.n)).toEqual([21]);
        second.close();
      } finally {
        await small.close();
      }
    },
  );

  it.each(kinds)(
    'a %s client from another epoch or with a garbage position starts at the head with recovered:false',
    async (kind) => {
      const user = `epoch-${kind}`;
      await tick(user, 1);
      for (const position of ['0123456789abcdef:1', 'nonsense']) {
        const c = track(connect(gw, kind, gw.sign({ sub: user }), { position }));
        const created = await c.session();
        expect(created.recovered).toBe(false);
        expect(created.position).toEqual(expect.any(String));
        expect(c.ticks()).toEqual([]);
        c.close();
      }
    },
  );

  it.each(kinds)(
    'a %s user revoked while disconnected cannot resume: AUTH_REVOKED and nothing replayed',
    async (kind) => {
      const user = `revoked-${kind}`;
      const token = gw.sign({ sub: user });
      const first = track(connect(gw, kind, token));
      await first.session();
      await tick(user, 0);
      await first.waitTicks(1);
      const position = first.ticks()[0]?.position;
      first.close();
      for (let n = 1; n <= 5; n++) await tick(user, n);
      expect((await gw.api('POST', `/v1/users/${user}/disconnect`)).status).toBe(200);

      const again = track(connect(gw, kind, token, { position }));
      expect(await again.refusal()).toBe('AUTH_REVOKED');
      expect(again.ticks()).toEqual([]);
    },
  );

  it.each(kinds)(
    'a %s replay holds only what the connection may receive now: current scopes, resumed channels',
    async (kind) => {
      const user = `scoped-${kind}`;
      const wide = gw.sign({ sub: user, scopes: ['ke'], channels: ['room:*'] });
      const first = track(connect(gw, kind, wide));
      await first.session();
      await gw.gateway.publish({ event: 'tick', data: { n: 0 }, to: { users: [user] } });
      await first.waitTicks(1);
      const position = first.ticks()[0]?.position;
      first.close();
      await gw.gateway.publish({ event: 'tick', data: { n: 1 }, to: { scopes: ['ke/muranga'] } });
      await gw.gateway.publish({ event: 'tick', data: { n: 2 }, to: { scopes: ['ke/nyeri'] } });
      await gw.gateway.publish({ event: 'tick', data: { n: 3 }, to: { channels: ['room:1'] } });
      await gw.gateway.publish({ event: 'tick', data: { n: 4 }, to: { channels: ['room:2'] } });
      await gw.gateway.publish({ event: 'tick', data: { n: 5 }, to: { channels: ['secret:1'] } });

      // The new token covers ke/muranga only; room:1 is resumed, secret:1 is not allowed by the token.
      const narrow = gw.sign({ sub: user, scopes: ['ke/muranga'], channels: ['room:*'] });
      const second = track(connect(gw, kind, narrow, { position, channels: ['room:1', 'secret:1'] }));
      expect((await second.session()).recovered).toBe(true);
      await gw.gateway.publish({ event: 'tick', data: { n: 6 }, to: { users: [user] } });
      await second.waitTicks(3);
      expect(second.ticks().map((t) => t.n)).toEqual([1, 3, 6]);
    },
  );

  it.each(kinds)('a %s guest gets no user-addressed history on resume', async (kind) => {
    const guest = `guest:${kind}-1`;
    const token = gw.sign({ sub: guest, guest: true, scopes: ['public'] });
    const first = track(connect(gw, kind, token));
    await first.session();
    await gw.gateway.publish({ event: 'tick', data: { n: 0 }, to: { scopes: ['public'] } });
    await first.waitTicks(1);
    const position = first.ticks()[0]?.position;
    first.close();
    await gw.gateway.publish({ event: 'tick', data: { n: 1 }, to: { users: [guest] } });
    await gw.gateway.publish({ event: 'tick', data: { n: 2 }, to: { scopes: ['public'] } });

    const second = track(connect(gw, kind, token, { position }));
    expect((await second.session()).recovered).toBe(true);
    await second.waitTicks(1);
    await gw.gateway.publish({ event: 'tick', data: { n: 3 }, to: { scopes: ['public'] } });
    await second.waitTicks(2);
    expect(second.ticks().map((t) => t.n)).toEqual([2, 3]);
  });
});
