import { describe, expect, it } from 'vitest';
import { ApiClient } from './api-client.js';
import { ApiError, NetworkError } from './http.js';
import { createPlatform } from './platform.js';
import { TokenManager } from './token-manager.js';

function jwt(claims: Record<string, unknown>): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'HS256' })}.${b64(claims)}.sig`;
}

const exp = () => Math.floor(Date.now() / 1000) + 600;

/**
 * A fake API: `/data` answers 401 until it sees the token from the latest refresh; refresh
 * answers after a short delay so concurrent 401s overlap.
 */
function fakeBackend(options: { refreshStatus?: number; dataStatus?: number; network?: boolean } = {}) {
  const state = { refreshes: 0, dataCalls: 0, valid: jwt({ sub: 'u', exp: exp(), v: 0 }) };
  const fetchImpl: typeof fetch = async (input, init) => {
    const url = String(input);
    if (options.network) throw new TypeError('fetch failed');
    if (url.endsWith('/auth/refresh')) {
      state.refreshes++;
      await new Promise((r) => setTimeout(r, 20));
      if (options.refreshStatus) {
        return Response.json({ code: 'REFRESH_EXPIRED', message: 'gone' }, { status: options.refreshStatus });
      }
      state.valid = jwt({ sub: 'u', exp: exp(), v: state.refreshes });
      return Response.json({ access_token: state.valid, refresh_token: `r${state.refreshes}`, expires_in: 600 });
    }
    state.dataCalls++;
    const auth = new Headers(init?.headers).get('authorization');
    if (auth !== `Bearer ${state.valid}`)
      return Response.json({ code: 'AUTH_EXPIRED', message: 'exp' }, { status: 401 });
    if (options.dataStatus) return Response.json({ code: 'FORBIDDEN', message: 'no' }, { status: options.dataStatus });
    return Response.json({ ok: true, method: init?.method });
  };
  return { state, fetchImpl };
}

async function setup(options: Parameters<typeof fakeBackend>[0] = {}) {
  const backend = fakeBackend(options);
  const tokens = new TokenManager({
    baseUrl: 'http://gw.test',
    platform: createPlatform({ fetch: backend.fetchImpl }),
    proactive: false,
    maxRefreshAttempts: 1,
  });
  // A token the server no longer accepts (revoked, or the clocks disagree).
  await tokens.setSession({ accessToken: jwt({ sub: 'u', exp: exp(), v: 'old' }), refreshToken: 'r0' });
  return { ...backend, tokens, api: new ApiClient({ baseUrl: 'http://gw.test/api', tokens }) };
}

describe('ApiClient', () => {
  it('injects the token, and on 401 refreshes once and retries once', async () => {
    const { api, state } = await setup();
    await expect(api.post('/data', { x: 1 })).resolves.toEqual({ ok: true, method: 'POST' });
    expect(state.refreshes).toBe(1);
    expect(state.dataCalls).toBe(2);
  });

  it('shares one refresh among 20 concurrent requests answered 401', async () => {
    const { api, state } = await setup();
    const results = await Promise.all(Array.from({ length: 20 }, () => api.get('/data')));
    expect(results).toHaveLength(20);
    expect(state.refreshes).toBe(1);
    expect(state.dataCalls).toBe(40);
  });

  it('throws a typed error with the contract code for other failures', async () => {
    const { api } = await setup({ dataStatus: 403 });
    const error = await api.get('/data').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ code: 'FORBIDDEN', status: 403, message: 'no' });
  });

  it('surfaces a refused refresh as its REFRESH_* code and signs out', async () => {
    const { api, tokens } = await setup({ refreshStatus: 401 });
    const signedOut: unknown[] = [];
    tokens.on('signed_out', (e) => signedOut.push(e));
    await expect(api.get('/data')).rejects.toMatchObject({ code: 'REFRESH_EXPIRED' });
    expect(signedOut).toHaveLength(1);
    await expect(api.get('/data')).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
  });

  it('throws NetworkError when there is no answer', async () => {
    const { api } = await setup({ network: true });
    await expect(api.get('/data')).rejects.toBeInstanceOf(NetworkError);
  });
});
