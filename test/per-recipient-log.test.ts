import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { connect, kinds, type Conn } from './helpers/resumable.js';

/**
 * The event log is one stream per addressee: a reconnecting client reads its own streams only, so
 * what others received while it was away neither costs it nor counts against RECOVERY_MAX_EVENTS.
 */
describe('recovery over per-addressee streams (one node)', () => {
  let gw: TestGateway;
  const open: Conn[] = [];
  const track = (c: Conn): Conn => (open.push(c), c);

  beforeAll(async () => {
    // The default RECOVERY_MAX_EVENTS (10,000) is far below the 50,000 foreign events published here.
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '600' });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await gw?.close();
  });

  /** Publishes concurrently in chunks (the log commits each chunk as one batch). */
  async function publishMany(count: number, make: (i: number) => Parameters<TestGateway['gateway']['publish']>[0]) {
    for (let start = 0; start < count; start += 1000) {
      const chunk = Array.from({ length: Math.min(1000, count - start) }, (_, i) =>
        gw.gateway.publish(make(start + i)),
      );
      await Promise.all(chunk);
    }
  }

  it('50,000 events to users and scopes the client cannot see and 3 to it: recovered, exactly those 3, in order, on both transports', async () => {
    const users = kinds.map((kind) => `far-${kind}`);
    const firsts = kinds.map((kind, i) => track(connect(gw.url, kind, gw.sign({ sub: users[i]!, scopes: ['ke/a'] }))));
    const positions = await Promise.all(firsts.map(async (c) => (await c.session()).position));
    await Promise.all(firsts.map((c) => c.leave()));

    await publishMany(50_000, (i) =>
      i % 2 === 0
        ? { event: 'tick', data: { n: -i }, to: { users: [`someone-${i % 997}`] } }
        : { event: 'tick', data: { n: -i }, to: { scopes: [`ke/b/w${i % 50}`] } },
    );
    for (let n = 1; n <= 3; n++)
      for (const user of users) await gw.gateway.publish({ event: 'tick', data: { n }, to: { users: [user] } });

    await Promise.all(
      kinds.map(async (kind, i) => {
        const again = track(
          connect(gw.url, kind, gw.sign({ sub: users[i]!, scopes: ['ke/a'] }), { position: positions[i] }),
        );
        expect((await again.session()).recovered).toBe(true);
        await again.waitTicks(3);
        await gw.gateway.publish({ event: 'tick', data: { n: 4 }, to: { users: [users[i]!] } });
        await again.waitTicks(4);
        expect(again.ticks().map((t) => t.n)).toEqual([1, 2, 3, 4]);
      }),
    );
  }, 120_000);

  it.each(kinds)(
    'an admin holding * over %s, offline while 500 events go to 50 wards, recovers all 500, each ward in order',
    async (kind) => {
      const token = gw.sign({ sub: `admin-${kind}`, scopes: ['*'] });
      const first = track(connect(gw.url, kind, token));
      const { position } = await first.session();
      await first.leave();
      for (let n = 0; n < 500; n++) {
        const ward = n % 50;
        await gw.gateway.publish({
          event: 'tick',
          data: { n, ward },
          to: { scopes: [`kenya-${kind}/d${ward % 5}/w${ward}`] },
        });
      }
      const again = track(connect(gw.url, kind, token, { position }));
      expect((await again.session()).recovered).toBe(true);
      await again.waitTicks(500);
      const ticks = again.ticks<{ n: number; ward: number }>();
      expect(ticks.map((t) => t.n)).toEqual([...Array(500).keys()]);
      for (let ward = 0; ward < 50; ward++) {
        const ns = ticks.filter((t) => t.ward === ward).map((t) => t.n);
        expect(ns).toEqual([...ns].sort((x, y) => x - y));
      }
    },
  );

  it.each(kinds)(
    'an event to a user and to a scope the same %s connection holds arrives once, live and in replay',
    async (kind) => {
      const user = `both-${kind}`;
      const token = gw.sign({ sub: user, scopes: [`both-${kind}/d1`] });
      const both = (n: number) => ({
        event: 'tick',
        data: { n },
        to: { users: [user], scopes: [`both-${kind}/d1/w1`] },
      });
      const first = track(connect(gw.url, kind, token));
      await first.session();
      await gw.gateway.publish(both(1));
      await first.waitTicks(1);
      await first.leave();
      const position = first.ticks().at(-1)?.position;
      await gw.gateway.publish(both(2));
      await gw.gateway.publish(both(3));
      const again = track(connect(gw.url, kind, token, { position }));
      expect((await again.session()).recovered).toBe(true);
      await again.waitTicks(2);
      await gw.gateway.publish(both(4));
      await gw.gateway.publish({ event: 'tick', data: { n: 5 }, to: { users: [user] } });
      await again.waitTicks(4);
      expect(first.ticks().map((t) => t.n)).toEqual([1]);
      expect(again.ticks().map((t) => t.n)).toEqual([2, 3, 4, 5]);
    },
  );

  it.each(kinds)(
    "an admin's %s phone narrowed to two wards receives only theirs, live and after a reconnect; the desktop receives all",
    async (kind) => {
      const admin = `narrow-${kind}`;
      const region = `nr-${kind}`;
      const token = gw.sign({ sub: admin, scopes: ['*'] });
      const wards = [`${region}/d1/w1`, `${region}/d1/w2`];
      const phone = track(connect(gw.url, kind, token, { narrow: wards }));
      const desk = track(connect(gw.url, kind, token));
      expect((await phone.session()).narrow).toEqual(wards);
      await desk.session();
      const to = (n: number, w: string) => ({ event: 'tick', data: { n }, to: { scopes: [`${region}/d1/${w}`] } });
      await gw.gateway.publish(to(1, 'w1'));
      await gw.gateway.publish(to(2, 'w3'));
      await gw.gateway.publish(to(3, 'w2'));
      await desk.waitTicks(3);
      await phone.waitTicks(2);
      await phone.leave();
      const position = phone.ticks().at(-1)?.position;
      await gw.gateway.publish(to(4, 'w3'));
      await gw.gateway.publish(to(5, 'w2'));

      const again = track(connect(gw.url, kind, token, { position, narrow: wards }));
      expect((await again.session()).recovered).toBe(true);
      await again.waitTicks(1);
      await gw.gateway.publish(to(6, 'w1'));
      await desk.waitTicks(6);
      await again.waitTicks(2);
      expect(phone.ticks().map((t) => t.n)).toEqual([1, 3]);
      expect(again.ticks().map((t) => t.n)).toEqual([5, 6]);
      expect(desk.ticks().map((t) => t.n)).toEqual([1, 2, 3, 4, 5, 6]);

      // Live: narrowing again, never past the grants of a ward officer; null undoes it.
      expect(await again.narrow([`${region}/d1/w3`])).toEqual({ ok: true, scopes: [`${region}/d1/w3`] });
      await gw.gateway.publish(to(7, 'w1'));
      await gw.gateway.publish(to(8, 'w3'));
      await again.waitTicks(3);
      expect(again.ticks().map((t) => t.n)).toEqual([5, 6, 8]);
      expect(await again.narrow(null)).toEqual({ ok: true });
      await gw.gateway.publish(to(9, 'w1'));
      await again.waitTicks(4);
      expect(again.ticks().map((t) => t.n)).toEqual([5, 6, 8, 9]);
      const officer = track(connect(gw.url, kind, gw.sign({ sub: `eo-${kind}`, scopes: [`${region}/d1/w1`] })));
      await officer.session();
      expect(await officer.narrow([`${region}/d1`, '*'])).toEqual({ ok: true, scopes: [] });
      const bad = await officer.narrow(['not a scope']);
      expect(bad).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
    },
  );
});
