import { describe, expect, it } from 'vitest';
import type { ReauthAck } from '@tether/protocol';
import { configFrom } from '../config/index.js';
import { createLogger } from '../util/logger.js';
import { TokenBucket } from '../util/rate-limit.js';
import { SessionIndexes } from './indexes.js';
import { TokenLifecycle } from './lifecycle.js';
import { guardObserver } from './observer.js';
import { HubSession } from './session.js';
import { FakeClock, RecordingSink, TableAuthenticator, makePrincipal, manualTurnBudget } from './testing.js';

/** A lifecycle whose reauth budget runs on a hand-moved clock: each verification "costs" 1 ms. */
function setup(budgetMs = 3, reauthPerMinute = 100) {
  const clock = new FakeClock();
  const config = configFrom({ TOKEN_EXPIRY_WARNING_SECONDS: '30' });
  const authenticator = new TableAuthenticator(clock);
  const logger = createLogger('silent');
  const { budget, slices, spend } = manualTurnBudget(budgetMs);
  const verify = authenticator.authenticate.bind(authenticator);
  authenticator.authenticate = (token: string) => {
    spend(1);
    return verify(token);
  };
  const indexes = new SessionIndexes();
  const lifecycle = new TokenLifecycle({
    config,
    authenticator,
    clock,
    logger,
    observer: guardObserver(undefined, logger),
    indexes,
    expire: () => {},
    regranted: () => {},
    reauthBudget: budget,
  });
  let n = 0;
  const open = (userId: string) => {
    const session = new HubSession(
      `s${n++}`,
      makePrincipal({ userId, expiresAt: clock.now() + 60_000 }),
      new RecordingSink('ws'),
      { ip: '127.0.0.1', userAgent: 'vitest', tokenSource: 'auth' },
      clock.now(),
      () => new TokenBucket(reauthPerMinute, reauthPerMinute / 60, clock),
    );
    indexes.add(session);
    lifecycle.arm(session);
    return session;
  };
  // Microtasks drained (the budget's slices are run by hand, so none runs meanwhile).
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const nextTurn = async () => {
    slices.shift()?.();
    await settle();
  };
  return { clock, authenticator, lifecycle, budget, open, settle, nextTurn, slices, indexes };
}

describe('reauth under the turn budget', () => {
  it('a burst runs a budget-sized slice per turn, every reauth answered once, in order per session', async () => {
    const { clock, authenticator, lifecycle, open, settle, nextTurn, slices } = setup(3);
    const sessions = [open('a'), open('b')];
    const answers: Array<[string, number, ReauthAck]> = [];
    for (let i = 0; i < 5; i++)
      for (const s of sessions) {
        const token = authenticator.add(
          `${s.userId}${i}`,
          makePrincipal({ userId: s.userId, expiresAt: clock.now() + 100_000 + i * 1000 }),
        );
        void lifecycle.reauth(s, token).then((ack) => answers.push([s.userId, i, ack]));
      }
    await settle();
    // 3 ms of budget, 1 ms per verification: the first turn verified 3 of the 10.
    expect(answers).toHaveLength(3);
    let turns = 0;
    while (slices.length > 0 && turns < 20) {
      await nextTurn();
      turns++;
    }
    expect(turns).toBeGreaterThanOrEqual(3);
    expect(answers).toHaveLength(10);
    for (const s of sessions) {
      const mine = answers.filter(([user]) => user === s.userId);
      expect(mine.map(([, i]) => i)).toEqual([0, 1, 2, 3, 4]);
      expect(mine.every(([, , ack]) => ack.ok)).toBe(true);
      // The newest token won, and its deadlines were re-armed.
      expect(s.principal.expiresAt).toBe(clock.now() + 104_000);
    }
    // One queued deadline per session: its new token's warning (the expiry follows it).
    expect(lifecycle.stats().live).toBe(2);
  });

  it('a rate-limited or refused reauth is answered after the ones sent before it, and the session stays', async () => {
    const { clock, authenticator, lifecycle, open, settle, nextTurn } = setup(1, 2);
    const s = open('a');
    authenticator.add('ok', makePrincipal({ userId: 'a', expiresAt: clock.now() + 90_000 }));
    const order: string[] = [];
    const send = (token: string) =>
      void lifecycle.reauth(s, token).then((ack) => order.push(ack.ok ? `${token}:ok` : `${token}:${ack.code}`));
    send('ok');
    send('bad');
    send('ok'); // the bucket holds 2: this one is over the rate
    await settle();
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(order).toEqual(['ok:ok', 'bad:AUTH_INVALID', 'ok:RATE_LIMITED']);
    expect(s.closed).toBe(false);
    expect(s.principal.expiresAt).toBe(clock.now() + 90_000);
  });
});
