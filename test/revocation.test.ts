import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REVOCATION_MESSAGES } from '@tether/protocol';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

const USER = {
  email: 'eo@example.com',
  password: 'extension officer 1',
  name: 'EO',
  role: 'officer',
  scopes: ['ke/muranga'],
};

/** Revocation reaches live sockets: logout, refresh reuse, disabling, and grant changes through the built-in store. */
describe('revocation of live connections through the token service', () => {
  let gw: TestGateway;
  let userId: string;
  const open: Array<{ close(): void }> = [];

  const login = async () => {
    const res = await gw.http('POST', '/auth/login', { email: USER.email, password: USER.password });
    expect(res.status).toBe(200);
    return res.body as { access_token: string; refresh_token: string };
  };
  const sio = async (token: string) => {
    const c = new SioClient(gw.url, { auth: { token } });
    open.push(c);
    await c.session();
    return c;
  };
  const ws = async (token: string) => {
    const c = new WsClient(gw.url, { headers: { authorization: `Bearer ${token}` } });
    open.push(c);
    await c.first('session_created');
    return c;
  };

  beforeAll(async () => {
    gw = await startGateway({ REFRESH_REUSE_GRACE_SECONDS: '0', AUTH_RATE_PER_MINUTE: '1000' });
    const created = await gw.api('POST', '/v1/users', USER);
    expect(created.status).toBe(201);
    userId = created.body.id;
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await gw.close();
  });

  it("logout on device A closes A's connections within 1 s; device B (another login) stays", async () => {
    const a = await login();
    const b = await login();
    const deviceA = await sio(a.access_token);
    const deviceB = await ws(b.access_token);
    const before = Date.now();
    const out = await gw.http(
      'POST',
      '/auth/logout',
      { refresh_token: a.refresh_token },
      { authorization: `Bearer ${a.access_token}` },
    );
    expect(out.status).toBe(204);
    // Told why, still with the contract's code.
    expect(await deviceA.first('auth_error')).toMatchObject({
      code: 'AUTH_REVOKED',
      message: REVOCATION_MESSAGES.logout,
    });
    await deviceA.disconnected();
    expect(Date.now() - before).toBeLessThan(1000);

    await gw.gateway.publish({ event: 'still_here', data: {}, to: { users: [userId] } });
    expect(await deviceB.first('event')).toMatchObject({ event: 'still_here' });
    expect(deviceB.frames.some((f) => f.type === 'auth_error')).toBe(false);

    // The logged-out access token cannot come back.
    const again = new SioClient(gw.url, { auth: { token: a.access_token } });
    open.push(again);
    expect((await again.refusal()).data).toMatchObject({ code: 'AUTH_REVOKED' });
  });

  it("refresh-token reuse revokes the family and closes that family's connections", async () => {
    const first = await login();
    const device = await sio(first.access_token);
    const rotated = await gw.http('POST', '/auth/refresh', { refresh_token: first.refresh_token });
    expect(rotated.status).toBe(200);
    const reuse = await gw.http('POST', '/auth/refresh', { refresh_token: first.refresh_token });
    expect(reuse.body.code).toBe('REFRESH_REUSED');
    expect(await device.first('auth_error')).toMatchObject({
      code: 'AUTH_REVOKED',
      message: REVOCATION_MESSAGES.reuse,
    });
    await device.disconnected();
  });

  it('new scopes from PATCH /v1/users apply to live connections at once', async () => {
    const s = await login();
    const device = await sio(s.access_token);
    await gw.gateway.publish({ event: 'ward_news', data: { n: 1 }, to: { scopes: ['ke/muranga/kiharu'] } });
    expect(await device.first('ward_news')).toMatchObject({ n: 1 });

    const patched = await gw.api('PATCH', `/v1/users/${userId}`, { scopes: ['ke/nyeri'] });
    expect(patched.status).toBe(200);
    expect(patched.body.scopes).toEqual(['ke/nyeri']);
    await gw.gateway.publish({ event: 'ward_news', data: { n: 2 }, to: { scopes: ['ke/muranga/kiharu'] } });
    await gw.gateway.publish({ event: 'nyeri_news', data: { n: 3 }, to: { scopes: ['ke/nyeri/othaya'] } });
    expect(await device.first('nyeri_news')).toMatchObject({ n: 3 });
    expect(device.all('ward_news')).toHaveLength(1);
    await gw.api('PATCH', `/v1/users/${userId}`, { scopes: USER.scopes });
  });

  it('an administrator kick (POST /v1/users/{id}/disconnect) tells every live connection so, on both transports', async () => {
    const s = await login();
    const [a, b] = [await ws(s.access_token), await sio(s.access_token)];
    expect((await gw.api('POST', `/v1/users/${userId}/disconnect`)).status).toBe(200);
    for (const device of [a, b])
      expect(await device.first('auth_error')).toMatchObject({
        code: 'AUTH_REVOKED',
        message: REVOCATION_MESSAGES.api_disconnect,
      });
  });

  it('disabling a user closes every connection with AUTH_REVOKED and refuses its tokens until re-enabled', async () => {
    const s = await login();
    const device = await ws(s.access_token);
    const off = await gw.api('PATCH', `/v1/users/${userId}`, { active: false });
    expect(off.status).toBe(200);
    expect(await device.first('auth_error')).toMatchObject({
      code: 'AUTH_REVOKED',
      message: REVOCATION_MESSAGES.user_disabled,
    });
    expect(await device.closed()).toMatchObject({ code: 1008, reason: 'AUTH_REVOKED' });
    const refused = await gw.http('POST', '/auth/login', { email: USER.email, password: USER.password });
    expect(refused.status).toBe(401);
    const refresh = await gw.http('POST', '/auth/refresh', { refresh_token: s.refresh_token });
    expect(refresh.status).toBe(401);

    await gw.api('PATCH', `/v1/users/${userId}`, { active: true });
    const back = await login();
    await sio(back.access_token);
  });
});

describe("revocation of an app backend's users", () => {
  it('a kicked external subject stays refused after the gateway restarts; a token issued later is accepted', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dataDir = mkdtempSync(join(tmpdir(), 'tether-restart-'));
    const env = { DATA_DIR: dataDir, JWT_SECRET: 'a-shared-app-backend-secret-of-40-chars!!' };
    const first = await startGateway(env);
    const oldToken = first.sign({ sub: 'app-user-9' }, 120);
    const kicked = await first.api('POST', '/v1/users/app-user-9/disconnect');
    expect(kicked.status).toBe(200);
    await first.close(); // DATA_DIR is ours (env), so it survives for the second start

    const second = await startGateway(env);
    try {
      const refused = new SioClient(second.url, { auth: { token: oldToken } });
      expect((await refused.refusal()).data).toMatchObject({ code: 'AUTH_REVOKED' });
      const fresh = new SioClient(second.url, { auth: { token: second.sign({ sub: 'app-user-9' }, 120) } });
      expect((await fresh.session()).userId).toBe('app-user-9');
      fresh.close();
    } finally {
      await second.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
