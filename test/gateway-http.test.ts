import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient } from './helpers/realtime.js';

describe('gateway HTTP surface', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('answers /healthz and Prometheus /metrics', async () => {
    const health = await gw.http('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', connections: 0 });
    const metrics = await gw.http('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('tether_connections');
    expect(metrics.body).toContain('tether_publish_to_send_seconds');
  });

  it('answers /readyz with each dependency it checked', async () => {
    const ready = await gw.http('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', checks: { store: 'ok', log: 'ok' } });
  });

  it('refuses /v1 without a valid API key, with a coded 401', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-key-wrong-key' },
      { authorization: gw.apiKey },
    ];
    for (const headers of attempts) {
      const res = await gw.http('POST', '/v1/publish', { event: 'x', to: { users: ['u'] } }, headers);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('API_KEY_INVALID');
    }
  });

  it('publishes with a given or generated id, and validates the body with coded errors', async () => {
    const given = await gw.api('POST', '/v1/publish', {
      event: 'hello',
      data: { a: 1 },
      to: { users: ['nobody'] },
      id: 'evt-1',
    });
    expect(given.status).toBe(202);
    expect(given.body).toMatchObject({ id: 'evt-1', delivered: 0 });
    const generated = await gw.api('POST', '/v1/publish', { event: 'hello', to: { scopes: ['ke'] } });
    expect(generated.status).toBe(202);
    expect(typeof generated.body.id).toBe('string');

    for (const body of [
      {},
      { event: 'x' },
      { event: 'x', to: {} },
      { event: 'session_created', to: { users: ['u'] } },
      { event: 'x', to: { scopes: ['bad scope'] } },
      { event: 'x', data: 'not an object', to: { users: ['u'] } },
      { event: 'x', to: { users: ['u'], rooms: ['r'] } },
    ]) {
      const res = await gw.api('POST', '/v1/publish', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    }
  });

  it('lists live connections per device in presence', async () => {
    const c = new SioClient(gw.url, {
      auth: { token: gw.sign({ sub: 'present' }, 60) },
      headers: { 'user-agent': 'phone' },
    });
    await c.session();
    const res = await gw.api('GET', '/v1/presence/users/present');
    expect(res.status).toBe(200);
    expect(res.body.online).toBe(true);
    expect(res.body.connections).toHaveLength(1);
    expect(res.body.connections[0]).toMatchObject({ transport: 'socket.io', userId: 'present' });
    expect(res.body.connections[0].expiresAt).toBeGreaterThan(Date.now());
    c.close();
    const away = await gw.api('GET', '/v1/presence/users/absent');
    expect(away.body).toEqual({ online: false, connections: [] });
  });

  it('answers unknown routes with a coded 404 and never a 500 for bad JSON', async () => {
    const res = await gw.http('GET', '/nope');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
    const bad = await fetch(gw.url + '/v1/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.apiKey}` },
      body: '{not json',
    });
    expect(bad.status).toBe(400);
  });

  it('takes an empty JSON body as no body: a bodiless POST succeeds, a route that needs a body says so', async () => {
    const post = (path: string) =>
      fetch(gw.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.apiKey}` },
        body: '',
      });
    const disconnect = await post('/v1/users/nobody-here/disconnect');
    expect(disconnect.status).toBe(200);
    expect(await disconnect.json()).toEqual({ disconnected: 0 });

    const publish = await post('/v1/publish');
    expect(publish.status).toBe(400);
    const body = (await publish.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.any(String) });
    expect(typeof body.timestamp).toBe('number');
  });

  it('serves no JWKS for an HS256 key', async () => {
    const res = await gw.http('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(404);
  });

  it('answers a WebSocket upgrade on an unknown path with 404 instead of hanging', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(gw.port, '127.0.0.1', () => {
        socket.write(
          'GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
      });
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1.1 404/);
  });
});

describe('asymmetric signing', () => {
  it('serves the public key at /.well-known/jwks.json and verifies its own ES256 tokens', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const gw = await startGateway({ JWT_SECRET: '', JWT_PRIVATE_KEY: pem });
    try {
      const res = await gw.http('GET', '/.well-known/jwks.json');
      expect(res.status).toBe(200);
      expect(res.body.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
      expect(res.body.keys[0].d).toBeUndefined();
      const c = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'es-user' }, 60) } });
      expect((await c.session()).userId).toBe('es-user');
      c.close();
    } finally {
      await gw.close();
    }
  });
});
