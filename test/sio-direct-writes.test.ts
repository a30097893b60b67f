import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubSession } from '../packages/server/src/hub/session.js';
import { fixedPosition, type OutboundEvent } from '../packages/server/src/hub/types.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient } from './helpers/realtime.js';

/**
 * Socket.IO events on the websocket transport are written straight to the TCP socket, past
 * engine.io; system events and acks still go through engine.io. Whatever is written to one
 * connection within one turn must still arrive in the order written.
 */
describe('Socket.IO events written straight to the socket', () => {
  let gw: TestGateway;
  // The hub's own records: the transport's sink is what the test writes to.
  const sessions = new Map<string, HubSession>();
  const open: SioClient[] = [];

  beforeAll(async () => {
    gw = await startGateway(
      { JWT_EXPIRATION_SECONDS: '120' },
      { observer: { onSessionOpened: (session) => void sessions.set(session.userId, session as HubSession) } },
    );
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await gw.close();
  });

  const connect = async (sub: string, meta: boolean): Promise<{ client: SioClient; session: HubSession }> => {
    const client = new SioClient(gw.url, { auth: { token: gw.sign({ sub }), ...(meta ? { meta: true } : {}) } });
    open.push(client);
    await client.session();
    return { client, session: sessions.get(sub)! };
  };
  const event = (id: string): OutboundEvent => ({ id, event: 'tick', data: { id }, publishedAt: 0, encoded: {} });

  it('keeps events, system events and acks in the order written within one turn', async () => {
    const { client, session } = await connect('orderly', false);
    const warning = (secondsLeft: number) =>
      session.sink.sendSystem({ kind: 'token_expiring', payload: { expiresAt: 0, secondsLeft } });
    // One synchronous run: the first system event leaves engine.io's transport waiting for its
    // write's callback, so the second waits in engine.io's buffer; the events around it must not
    // overtake it.
    warning(1);
    session.sink.sendEvent(event('e1'));
    warning(2);
    session.sink.sendEvent(event('e2'));
    session.sink.sendEvent(event('e3'));
    warning(3);
    session.sink.sendEvent(event('e4'));
    await client.next((e) => e.event === 'tick' && (e.args[0] as { id: string }).id === 'e4');
    const seen = client.received
      // (expiresAt 0 tells these warnings from the real one sent when the session opened.)
      .filter(
        (e) =>
          e.event === 'tick' || (e.event === 'token_expiring' && (e.args[0] as { expiresAt: number }).expiresAt === 0),
      )
      .map((e) =>
        e.event === 'tick'
          ? (e.args[0] as { id: string }).id
          : `w${(e.args[0] as { secondsLeft: number }).secondsLeft}`,
      );
    expect(seen).toEqual(['w1', 'e1', 'w2', 'e2', 'e3', 'w3', 'e4']);
  });

  it('writes each recipient with delivery meta its own id and position, and plain ones the bare event', async () => {
    const plain = await connect('plain', false);
    const meta = await connect('meta', true);
    const shared = event('shared-1');
    plain.session.sink.sendEvent(shared, fixedPosition('0-5'));
    meta.session.sink.sendEvent(shared, fixedPosition('0-7'));
    meta.session.sink.sendEvent(event('é✓'), undefined);
    expect((await plain.client.next((e) => e.event === 'tick')).args).toEqual([{ id: 'shared-1' }]);
    await meta.client.next((e) => e.event === 'tick' && (e.args[0] as { id: string }).id === 'é✓');
    expect(meta.client.received.filter((e) => e.event === 'tick').map((e) => e.args)).toEqual([
      [{ id: 'shared-1' }, { id: 'shared-1', position: '0-7' }],
      [{ id: 'é✓' }, { id: 'é✓' }],
    ]);
  });
});
