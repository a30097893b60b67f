import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, randomBytes, createPrivateKey, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_MESSAGES } from '@tether/protocol';
import { startGateway, type TestGateway } from './helpers/gateway.js';

const ADMIN = {
  email: 'Ada@Example.com',
  password: 'correct horse battery',
  name: 'Ada',
  role: 'admin',
  scopes: ['*'],
};

function refreshCookie(headers: Headers): string | undefined {
  const all = headers.getSetCookie();
  const c = all.find((h) => h.startsWith('refresh_token='));
  return c?.split(';')[0];
}

describe('token service over HTTP', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ JWT_EXPIRATION_SECONDS: '60', AUTH_RATE_PER_MINUTE: '1000' });
    const created = await t.api('POST', '/v1/users', ADMIN);
    expect(created.status).toBe(201);
  });
  afterAll(() => t.close());

  it('login returns both tokens, the user, and an httpOnly SameSite=Strict refresh cookie', async () => {
    const res = await t.http('POST', '/auth/login', { email: 'ada@example.com', password: ADMIN.password });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      token_type: 'bearer',
      expires_in: 60,
      user: { email: 'ada@example.com', role: 'admin', scopes: ['*'] },
    });
    expect(typeof res.body.access_token).toBe('string');
    expect(typeof res.body.refresh_token).toBe('string');
    const cookie = res.headers.getSetCookie().find((h) => h.startsWith('refresh_token='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).not.toMatch(/Secure/i); // plain http on loopback
  });

  it('wrong password and unknown email get the same INVALID_CREDENTIALS answer', async () => {
    const a = await t.http('POST', '/auth/login', { email: ADMIN.email, password: 'wrong password!' });
    const b = await t.http('POST', '/auth/login', { email: 'nobody@example.com', password: 'wrong password!' });
    expect(a.status).toBe(401);
    expect(b.status).toBe(401);
    expect(a.body.code).toBe('INVALID_CREDENTIALS');
    expect(b.body.message).toBe(a.body.message);
  });

  it('two concurrent refreshes with the same token inside the grace window both succeed with the same pair', async () => {
    const login = await t.http('POST', '/auth/login', { email: ADMIN.email, password: ADMIN.password });
    const [a, b] = await Promise.all([
      t.http('POST', '/auth/refresh', { refresh_token: login.body.refresh_token }),
      t.http('POST', '/auth/refresh', { refresh_token: login.body.refresh_token }),
    ]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body.refresh_token).toBe(b.body.refresh_token);
    const next = await t.http('POST', '/auth/refresh', { refresh_token: a.body.refresh_token });
    expect(next.status).toBe(200);
  });

  it('garbage refresh tokens are REFRESH_INVALID, a malformed body is VALIDATION_FAILED, never a 500', async () => {
    for (const body of [{ refresh_token: 'nope' }, { refresh_token: '' }, {}]) {
      const res = await t.http('POST', '/auth/refresh', body);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('REFRESH_INVALID');
    }
    const res = await fetch(t.url + '/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"email":',
    });
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe('VALIDATION_FAILED');
    const bad = await t.http('POST', '/auth/login', { email: 42 });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('VALIDATION_FAILED');
  });

  it('logout revokes the family: its refresh token no longer works', async () => {
    const login = await t.http('POST', '/auth/login', { email: ADMIN.email, password: ADMIN.password });
    const out = await t.http(
      'POST',
      '/auth/logout',
      { refresh_token: login.body.refresh_token },
      { authorization: `Bearer ${login.body.access_token}` },
    );
    expect(out.status).toBe(204);
    const after = await t.http('POST', '/auth/refresh', { refresh_token: login.body.refresh_token });
    expect(after.status).toBe(401);
  });

  it('guest tokens are issued by the server', async () => {
    const res = await t.http('POST', '/auth/guest');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'bearer', expires_in: 3600 });
    expect(res.body.guest_id).toMatch(/^guest:/);
  });

  it('never logs a token, refresh token or password', async () => {
    const login = await t.http('POST', '/auth/login', { email: ADMIN.email, password: ADMIN.password });
    await t.http('POST', '/auth/refresh', { refresh_token: login.body.refresh_token });
    const logs = t.logs();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(login.body.access_token);
    expect(logs).not.toContain(login.body.refresh_token);
    expect(logs).not.toContain(ADMIN.password);
    expect(logs).not.toContain(t.apiKey);
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
  });
});

describe('refresh reuse detection (no grace window)', () => {
  let r: TestGateway;
  beforeAll(async () => {
    r = await startGateway({ REFRESH_REUSE_GRACE_SECONDS: '0', AUTH_RATE_PER_MINUTE: '1000' });
    await r.api('POST', '/v1/users', ADMIN);
  });
  afterAll(() => r.close());

  it('refresh by cookie and by body rotate; a rotated token is REFRESH_REUSED and revokes the family', async () => {
    const login = await r.http('POST', '/auth/login', { email: ADMIN.email, password: ADMIN.password });
    const cookie = refreshCookie(login.headers)!;
    const byCookie = await r.http('POST', '/auth/refresh', undefined, { cookie });
    expect(byCookie.status).toBe(200);
    expect(byCookie.body.refresh_token).not.toBe(login.body.refresh_token);
    const byBody = await r.http('POST', '/auth/refresh-mobile', { refresh_token: byCookie.body.refresh_token });
    expect(byBody.status).toBe(200);
    const newest = byBody.body.refresh_token as string;

    const reused = await r.http('POST', '/auth/refresh', { refresh_token: login.body.refresh_token });
    expect(reused.status).toBe(401);
    expect(reused.body.code).toBe('REFRESH_REUSED');
    const afterRevoke = await r.http('POST', '/auth/refresh', { refresh_token: newest });
    expect(afterRevoke.status).toBe(401);
    expect(['REFRESH_INVALID', 'REFRESH_REUSED']).toContain(afterRevoke.body.code);
  });
});

describe('token expiry answers', () => {
  it('an expired refresh token is REFRESH_EXPIRED and an expired access token is AUTH_EXPIRED with the contract text', async () => {
    const t = await startGateway({ JWT_EXPIRATION_SECONDS: '1', JWT_REFRESH_EXPIRATION_SECONDS: '1' });
    try {
      await t.api('POST', '/v1/users', ADMIN);
      const login = await t.http('POST', '/auth/login', { email: ADMIN.email, password: ADMIN.password });
      await new Promise((r) => setTimeout(r, 1500));
      const res = await t.http('POST', '/auth/refresh', { refresh_token: login.body.refresh_token });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('REFRESH_EXPIRED');
      await expect(t.internals.authenticator.authenticate(login.body.access_token)).rejects.toMatchObject({
        code: 'AUTH_EXPIRED',
        message: AUTH_MESSAGES.expired,
      });
    } finally {
      await t.close();
    }
  });
});

describe('external issuer (the app backend signs its own tokens)', () => {
  let jwksServer: Server;
  let jwksUrl: string;
  let appKey: KeyObject;
  let kid: string;
  let t: TestGateway;

  beforeAll(async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    appKey = pair.privateKey;
    kid = randomBytes(8).toString('hex');
    const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
    jwksServer = createServer((req, res) => {
      if (req.url === '/.well-known/jwks.json') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: [jwk] }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
    t = await startGateway({
      JWT_SECRET: '',
      JWT_JWKS_URL: jwksUrl,
      JWT_ISSUER: 'https://app.example',
      JWT_AUDIENCE: 'tether',
    });
  });
  afterAll(async () => {
    await t.close();
    await new Promise<void>((r) => jwksServer.close(() => r()));
  });

  it("accepts the app backend's tokens for users the built-in store does not know", async () => {
    const sign = createSigner({
      key: createPrivateKey(appKey.export({ format: 'pem', type: 'pkcs8' })).export({ format: 'pem', type: 'pkcs8' }),
      algorithm: 'ES256',
      kid,
      iss: 'https://app.example',
      aud: 'tether',
      expiresIn: 60_000,
    });
    const token = sign({ sub: 'app-user-7', scopes: ['ke/nyeri'] });
    const principal = await t.internals.authenticator.authenticate(token);
    expect(principal.userId).toBe('app-user-7');
    expect(principal.scopes).toEqual(['ke/nyeri']);
  });

  it('turns the built-in login off (no key to sign with)', async () => {
    const res = await t.http('POST', '/auth/login', { email: ADMIN.email, password: ADMIN.password });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('LOGIN_DISABLED');
  });
});
