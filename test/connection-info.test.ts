import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '@tether/server';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

/**
 * A session's `info` is the connection itself (no object of its own per connection); to an
 * observer, a log line or a JSON body it must still be the three fields, never the connection.
 */
describe('connection info', () => {
  let gw: TestGateway;
  const sessions = new Map<string, Session>();
  beforeAll(async () => {
    gw = await startGateway(
      {},
      { observer: { onSessionOpened: (session) => void sessions.set(session.userId, session) } },
    );
  });
  afterAll(() => gw.close());

  it('serializes as ip, user agent and token source on both transports', async () => {
    const ws = new WsClient(gw.url, {
      headers: { authorization: `Bearer ${gw.sign({ sub: 'ws-info' })}`, 'user-agent': 'kitchen-display/2' },
    });
    await ws.next((f) => f.type === 'session_created');
    const sio = new SioClient(gw.url, {
      auth: { token: gw.sign({ sub: 'sio-info' }) },
      headers: { 'user-agent': 'pos/7' },
    });
    await sio.session();
    expect(JSON.parse(JSON.stringify(sessions.get('ws-info')!.info))).toEqual({
      ip: '127.0.0.1',
      userAgent: 'kitchen-display/2',
      tokenSource: 'header',
    });
    expect(JSON.parse(JSON.stringify(sessions.get('sio-info')!.info))).toEqual({
      ip: '127.0.0.1',
      userAgent: 'pos/7',
      tokenSource: 'auth',
    });
    ws.ws.close();
    sio.close();
  });
});
