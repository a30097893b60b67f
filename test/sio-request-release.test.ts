import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient } from './helpers/realtime.js';

// A garbage collection on demand, to see what the gateway still holds (the flag reaches new contexts).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether every request in `refs` was collected, after a few collections a turn apart (WeakRefs hold for their turn). */
async function collected(refs: WeakRef<IncomingMessage>[]): Promise<boolean> {
  for (let round = 0; round < 20; round++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    if (refs.every((ref) => ref.deref() === undefined)) return true;
  }
  return false;
}

/**
 * A Socket.IO connection lets go of its handshake request once it is open: engine.io kept it for the
 * session's life (and, on a websocket upgrade, a `close` listener of its own held it on the TCP
 * socket), socket.io its headers — 1.7 KB of heap per connection with a bench client's few headers,
 * several more with a browser's, and the access token with them when it came in the Authorization
 * header.
 */
describe('Socket.IO connections and their handshake request', () => {
  let gw: TestGateway;
  const open: { close(): void }[] = [];

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '600' });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await gw.close();
  });

  it('frees the request of a connection that opened on websocket and of one upgraded from polling', async () => {
    const server = gw.internals.app.server;
    // Every request and upgrade the clients make (polling handshake, posts and polls, upgrades).
    const requests: WeakRef<IncomingMessage>[] = [];
    const note = (req: IncomingMessage) => void requests.push(new WeakRef(req));
    server.prependListener('request', note);
    server.prependListener('upgrade', note);
    try {
      const direct = new SioClient(gw.url, {
        auth: { token: gw.sign({ sub: 'ws-first' }) },
        headers: { 'x-padding': 'p'.repeat(2_000) },
      });
      open.push(direct);
      await direct.session();
      const upgraded = new SioClient(gw.url, {
        auth: { token: gw.sign({ sub: 'upgraded' }) },
        transports: ['polling', 'websocket'],
      });
      open.push(upgraded);
      await upgraded.session();
      const engine = upgraded.socket.io.engine;
      if (engine.transport.name !== 'websocket') await new Promise((resolve) => engine.once('upgrade', resolve));
      expect(requests.length).toBeGreaterThanOrEqual(3);

      expect(await collected(requests)).toBe(true);

      // Both still get events, written straight to their TCP sockets.
      const answer = await gw.api('POST', '/v1/publish', {
        event: 'ping',
        data: { n: 1 },
        to: { users: ['ws-first', 'upgraded'] },
      });
      expect(answer.status).toBe(202);
      for (const client of [direct, upgraded]) {
        const received = await client.next((e) => e.event === 'ping');
        expect(received.args[0]).toEqual({ n: 1 });
      }
    } finally {
      server.off('request', note);
      server.off('upgrade', note);
    }
  });
});
