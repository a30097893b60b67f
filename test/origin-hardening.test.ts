import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from './helpers/gateway.js';

const USER = { email: 'ona@example.com', password: 'ona password 1', name: 'Ona', role: 'agent', scopes: [] };

interface Answer {
  status: number;
  body: Record<string, unknown> | undefined;
  setCookie: string[];
}

/** A POST with exactly these headers (fetch would not let a test set Host), JSON body or none. */
function post(port: number, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  const text = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: {
          host: `127.0.0.1:${port}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          'content-length': Buffer.byteLength(text),
          ...headers,
        },
      },
      (res) => {
        let data = '';
        res.on('data', (chunk: Buffer) => (data += chunk.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: data.length > 0 ? (JSON.parse(data) as Record<string, unknown>) : undefined,
            setCookie: res.headers['set-cookie'] ?? [],
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

const cookieOf = (answer: Answer): string =>
  answer.setCookie.find((c) => c.startsWith('refresh_token='))!.split(';')[0]!;

/**
 * Whether a connection with these headers is served (true: `session_created` arrived) or refused
 * (the `/ws` error frame's code, Socket.IO's `connect_error` message, the HTTP answer, or the close).
 */
function upgrade(port: number, path: string, headers: Record<string, string>): Promise<true | string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    const done = (verdict: true | string): void => {
      resolve(verdict);
      ws.terminate();
    };
    ws.on('message', (raw) => {
      const text = raw.toString();
      // Socket.IO over a raw engine.io socket: open packet, then our CONNECT, then its answer.
      if (text.startsWith('0{')) return ws.send('40');
      if (text.startsWith('42["session_created"')) return done(true);
      if (text.startsWith('44')) return done(String((JSON.parse(text.slice(2)) as { message?: string }).message));
      if (/^\d/.test(text)) return;
      const frame = JSON.parse(text) as { type?: string; code?: string };
      if (frame.type === 'session_created') done(true);
      else if (frame.code !== undefined) done(frame.code);
    });
    ws.on('unexpected-response', (_req, res) => {
      let data = '';
      res.on('data', (chunk: Buffer) => (data += chunk.toString()));
      res.on('end', () => done(`${res.statusCode} ${data}`));
    });
    ws.on('close', (code, reason) => done(`close ${code} ${reason.toString()}`));
    ws.on('error', () => undefined);
  });
}

/**
 * Defect 7: the cookie-authenticated `/auth` routes answer only pages of an allowed origin (or
 * clients that are not browsers). Defect 8: "same origin" needs the Host to be one of PUBLIC_HOSTS,
 * so a DNS-rebinding page (`Origin` = `Host` = its own name) is not same origin.
 */
describe('cookie routes refuse other origins', () => {
  let gw: TestGateway;
  const evil = { origin: 'http://evil.example' };

  beforeAll(async () => {
    gw = await startGateway({ AUTH_RATE_PER_MINUTE: '1000', JWT_EXPIRATION_SECONDS: '600' });
    expect((await gw.api('POST', '/v1/users', USER)).status).toBe(201);
  });
  afterAll(async () => {
    await gw?.close();
  });

  const login = async (headers: Record<string, string> = {}) =>
    post(gw.port, '/auth/login', headers, { email: USER.email, password: USER.password });

  it('refresh with the cookie from a foreign Origin: 403 ORIGIN_FORBIDDEN, and the token is not rotated', async () => {
    const cookie = cookieOf(await login());
    const refused = await post(gw.port, '/auth/refresh', { cookie, ...evil });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'ORIGIN_FORBIDDEN' });
    expect(refused.setCookie).toEqual([]);
    // The same cookie still works from the gateway's own page: it was not rotated (which would have
    // made this a reuse and revoked the family).
    const own = await post(gw.port, '/auth/refresh', { cookie, origin: `http://127.0.0.1:${gw.port}` });
    expect(own.status).toBe(200);
  });

  it('without Origin, Sec-Fetch-Site cross-site or same-site is refused; a native client (neither) is served', async () => {
    const cookie = cookieOf(await login());
    for (const site of ['cross-site', 'same-site']) {
      const refused = await post(gw.port, '/auth/refresh', { cookie, 'sec-fetch-site': site });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'ORIGIN_FORBIDDEN' });
    }
    expect((await post(gw.port, '/auth/refresh', { cookie })).status).toBe(200);
  });

  it('logout, login and a cookie guest from a foreign Origin are refused; nothing is ended or planted', async () => {
    const first = await login();
    const cookie = cookieOf(first);
    const logout = await post(gw.port, '/auth/logout', { cookie, ...evil });
    expect(logout.status).toBe(403);
    expect((await post(gw.port, '/auth/refresh', { cookie })).status).toBe(200); // still signed in

    const planted = await login(evil);
    expect(planted.status).toBe(403);
    expect(planted.setCookie).toEqual([]);

    const guest = await post(gw.port, '/auth/guest', evil, { cookie: true });
    expect(guest.status).toBe(403);
    expect(guest.setCookie).toEqual([]);
  });

  it('refresh-mobile (body token only) is not a cookie route', async () => {
    const { body } = await login();
    const answer = await post(gw.port, '/auth/refresh-mobile', evil, { refresh_token: body!['refresh_token'] });
    expect(answer.status).toBe(200);
  });

  it('DNS rebinding: Origin = Host = rebind.example is not same origin for the cookie', async () => {
    const cookie = cookieOf(await login());
    const rebound = `rebind.example:${gw.port}`;
    const refused = await post(gw.port, '/auth/refresh', { cookie, host: rebound, origin: `http://${rebound}` });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'ORIGIN_FORBIDDEN' });
  });
});

describe('WebSocket upgrades: same origin needs a public host', () => {
  let gw: TestGateway;
  let named: TestGateway;

  beforeAll(async () => {
    gw = await startGateway();
    named = await startGateway({ PUBLIC_HOSTS: 'chat.example.test' });
  });
  afterAll(async () => {
    await gw?.close();
    await named?.close();
  });

  it('Origin = Host = rebind.example:PORT is refused on /ws and /socket.io; the gateway’s own host is served', async () => {
    const token = gw.sign({ sub: 'rebinding-victim' });
    const rebound = `rebind.example:${gw.port}`;
    const hostile = { host: rebound, origin: `http://${rebound}`, authorization: `Bearer ${token}` };
    const own = {
      host: `127.0.0.1:${gw.port}`,
      origin: `http://127.0.0.1:${gw.port}`,
      authorization: `Bearer ${token}`,
    };
    for (const path of ['/ws', '/socket.io/?EIO=4&transport=websocket']) {
      const refused = await upgrade(gw.port, path, hostile);
      expect(refused, path).not.toBe(true);
      expect(String(refused), path).toContain('ORIGIN_FORBIDDEN');
      expect(await upgrade(gw.port, path, own), path).toBe(true);
    }
  });

  it('PUBLIC_HOSTS names the hosts that count: its own name is same origin, localhost no longer is', async () => {
    const token = named.sign({ sub: 'named-host' });
    const host = `chat.example.test:${named.port}`;
    expect(
      await upgrade(named.port, '/ws', { host, origin: `https://${host}`, authorization: `Bearer ${token}` }),
    ).toBe(true);
    const local = `localhost:${named.port}`;
    const refused = await upgrade(named.port, '/ws', {
      host: local,
      origin: `http://${local}`,
      authorization: `Bearer ${token}`,
    });
    expect(String(refused)).toContain('ORIGIN_FORBIDDEN');
  });
});
