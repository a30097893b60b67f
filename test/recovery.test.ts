import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { connect as connectTo, kinds, type Conn, type Kind, type Resume } from './helpers/resumable.js';

const connect = (gw: TestGateway, kind: Kind, token: string, resume: Resume = {}): Conn =>
  connectTo(gw.url, kind, token, resume);

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
        // Every event carries the position to store next (opaque; a new one with each event).
        const positions = second.ticks().map((t) => t.position);
        expect(new Set(positions).size).toBe(positions.length);
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
        expect(await small.internals.log.trim()).toBeGreaterThan(0);

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
      const first = track(connect(gw, kind, wide, { channels: ['room:1'] }));
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

      // The new token covers ke/muranga only (its events were in the `ke` stream the client read);
      // room:1 is resumed; room:2 is joined now, so it starts at its head (4 is not replayed);
      // secret:1 is not allowed by the token.
      const narrow = gw.sign({ sub: user, scopes: ['ke/muranga'], channels: ['room:*'] });
      const second = track(connect(gw, kind, narrow, { position, channels: ['room:1', 'room:2', 'secret:1'] }));
      expect((await second.session()).recovered).toBe(true);
      await gw.gateway.publish({ event: 'tick', data: { n: 6 }, to: { users: [user] } });
      await second.waitTicks(3);
      expect(second.ticks().map((t) => t.n)).toEqual([1, 3, 6]);
    },
  );

  it.each(kinds)('a %s guest gets its own history on resume, like any user', async (kind) => {
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
    await second.waitTicks(2);
    await gw.gateway.publish({ event: 'tick', data: { n: 3 }, to: { scopes: ['public'] } });
    await second.waitTicks(3);
    expect(second.ticks().map((t) => t.n)).toEqual([1, 2, 3]);
  });
});
