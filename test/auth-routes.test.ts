import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';

const USER = {
  email: 'rita@example.com',
  password: 'rita password 1',
  name: 'Rita',
  role: 'agent',
  scopes: ['ke/muranga'],
};

function setCookie(headers: Headers): string | undefined {
  return headers.getSetCookie().find((h) => h.startsWith('refresh_token='));
}
const cookiePair = (header: string | undefined) => header?.split(';')[0];

describe('auth routes: cookies, mobile refresh, logout, bodies', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ JWT_EXPIRATION_SECONDS: '60', AUTH_RATE_PER_MINUTE: '1000', TRUST_PROXY: 'true' });
    expect((await t.api('POST', '/v1/users', USER)).status).toBe(201);
  });
  afterAll(() => t.close());

  const login = () => t.http('POST', '/auth/login', { email: USER.email, password: USER.password });

  it('the refresh cookie is scoped to /auth, lasts as long as the family, and is Secure behind https', async () => {
    const plain = setCookie((await login()).headers)!;
    expect(plain).toMatch(/Path=\/auth(;|$)/);
    const maxAge = Number(/Max-Age=(\d+)/.exec(plain)?.[1]);
    expect(maxAge).toBeGreaterThan(7 * 86400 - 120); // the family's 7 days, less the time since login
    expect(maxAge).toBeLessThanOrEqual(7 * 86400);
    const res = await fetch(t.url + '/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ email: USER.email, password: USER.password }),
    });
    expect(setCookie(res.headers)).toMatch(/;\s*Secure/i);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('refresh by cookie with an empty JSON body rotates the cookie', async () => {
    const cookie = cookiePair(setCookie((await login()).headers))!;
    const res = await fetch(t.url + '/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { refresh_token: string };
    expect(cookiePair(setCookie(res.headers))).toBe(`refresh_token=${body.refresh_token}`);
  });

  it('refresh-mobile takes the token from the body only and sets no cookie', async () => {
    const first = await login();
    const res = await t.http('POST', '/auth/refresh-mobile', { refresh_token: first.body.refresh_token });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'token_type']);
    expect(setCookie(res.headers)).toBeUndefined();
    const viaCookie = await t.http(
      'POST',
      '/auth/refresh-mobile',
      {},
      { cookie: cookiePair(setCookie(first.headers))! },
    );
    expect(viaCookie.status).toBe(400);
    expect(viaCookie.body.code).toBe('VALIDATION_FAILED');
  });

  it('a refresh without any token is REFRESH_INVALID', async () => {
    const res = await t.http('POST', '/auth/refresh');
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('REFRESH_INVALID');
  });

  it('logout by cookie answers 204, clears the cookie, and the session is over', async () => {
    const first = await login();
    const cookie = cookiePair(setCookie(first.headers))!;
    const res = await t.http('POST', '/auth/logout', undefined, {
      cookie,
      authorization: `Bearer ${first.body.access_token}`,
    });
    expect(res.status).toBe(204);
    expect(setCookie(res.headers)).toMatch(/^refresh_token=;/);
    expect((await t.http('POST', '/auth/refresh', { refresh_token: first.body.refresh_token })).body.code).toBe(
      'REFRESH_INVALID',
    );
    // Logging out again with the now revoked access token is not an error.
    expect(
      (await t.http('POST', '/auth/logout', undefined, { authorization: `Bearer ${first.body.access_token}` })).status,
    ).toBe(204);
  });

  it('logout by access token alone ends that session; with nothing presented it is AUTH_REQUIRED', async () => {
    const first = await login();
    expect(
      (await t.http('POST', '/auth/logout', undefined, { authorization: `Bearer ${first.body.access_token}` })).status,
    ).toBe(204);
    expect((await t.http('POST', '/auth/refresh', { refresh_token: first.body.refresh_token })).body.code).toBe(
      'REFRESH_INVALID',
    );
    const none = await t.http('POST', '/auth/logout');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('AUTH_REQUIRED');
  });
});

describe('auth routes: rate limits', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ AUTH_RATE_PER_MINUTE: '3' });
    expect((await t.api('POST', '/v1/users', USER)).status).toBe(201);
  });
  afterAll(() => t.close());

  it('login attempts beyond the per-minute limit get 429 RATE_LIMITED with Retry-After', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push(await t.http('POST', '/auth/login', { email: USER.email, password: 'wrong password' }));
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([401, 401, 401]);
    const limited = answers[3]!;
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('RATE_LIMITED');
    expect(limited.body.retryAfterMs).toBeGreaterThan(0);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('refresh attempts beyond the per-minute limit get 429 too', async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await t.http('POST', '/auth/refresh', { refresh_token: 'x'.repeat(43) })).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});

describe('auth routes: switched off', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ AUTH_LOGIN_ENABLED: 'false', GUESTS_ENABLED: 'false' });
  });
  afterAll(() => t.close());

  it('login, refresh and logout answer 404 LOGIN_DISABLED and guests 404 when disabled', async () => {
    for (const path of ['/auth/login', '/auth/refresh', '/auth/refresh-mobile', '/auth/logout']) {
      const res = await t.http('POST', path, { email: 'a@b.c', password: 'x', refresh_token: 'x' });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('LOGIN_DISABLED');
    }
    const guest = await t.http('POST', '/auth/guest');
    expect(guest.status).toBe(404);
    expect(guest.body.code).toBe('NOT_FOUND');
  });
});
