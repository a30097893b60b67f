import { ERRORS } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { startGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

describe('graceful shutdown', () => {
  it('tells every client to reconnect within the grace period (jittered), then closes the ones still open', async () => {
    const gw = await startGateway({ SHUTDOWN_GRACE_MS: '1500' });
    const sio = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'a' }, 60) } });
    await sio.session();
    const ws = new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'b' }, 60)}` } });
    await ws.first('session_created');

    const closing = gw.close();
    const notice = await sio.first<{ reconnectInMs: number; timestamp: number }>('server_shutdown');
    expect(notice.reconnectInMs).toBeGreaterThanOrEqual(0);
    expect(notice.reconnectInMs).toBeLessThan(1500);
    const frame = await ws.first('server_shutdown');
    expect(frame.reconnectInMs).toBeLessThan(1500);

    // Neither client leaves on its own: the server closes them once the grace period is over.
    await closing;
    await sio.disconnected();
    const closed = await ws.closed();
    expect([1001, 1012]).toContain(closed.code);
  });

  it('answers /readyz with 503 and the registry body during the drain, so a load balancer stops sending traffic', async () => {
    const gw = await startGateway({ SHUTDOWN_GRACE_MS: '1000' });
    // A client that does not leave keeps the node in its grace period.
    const ws = new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'stays' }, 60)}` } });
    try {
      await ws.first('session_created');
      expect((await gw.http('GET', '/readyz')).status).toBe(200);

      const closing = gw.close();
      await ws.first('server_shutdown');
      const ready = await gw.http('GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({
        code: 'SERVER_SHUTDOWN',
        message: ERRORS.SERVER_SHUTDOWN.message,
        timestamp: expect.any(Number),
      });
      expect(ready.headers.get('connection')).toBe('close');
      await closing;
    } finally {
      ws.ws.terminate();
      await gw.close();
    }
  });
});
