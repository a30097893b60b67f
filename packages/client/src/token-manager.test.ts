import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPlatform, type LifecycleHooks, type Platform } from './platform.js';
import { memoryStorage, type TokenStorage } from './storage.js';
import { TokenManager, type SignedOut } from './token-manager.js';

/** An unsigned JWT the client can decode (it never verifies). */
function jwt(claims: Record<string, unknown>): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'HS256' })}.${b64(claims)}.sig`;
}

/** A token issued now (fake time) that lives `ttlMs`. */
function tokenFor(ttlMs: number, sub = 'u1'): string {
  const now = Date.now();
  return jwt({ sub, iat: now / 1000, exp: (now + ttlMs) / 1000, n: Math.random() });
}

type Reply = { status: number; body?: unknown } | 'network';

/** A fake `/auth/refresh` whose answers the test scripts. Records each request body. */
class FakeAuthServer {
  calls: Array<{ url: string; body: unknown }> = [];
  replies: Array<Reply | Promise<Reply>> = [];
  ttlMs = 60_000;
  private counter = 0;

  readonly fetch: typeof fetch = async (input, init) => {
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    this.calls.push({ url: String(input), body });
    const reply = await (this.replies.shift() ?? { status: 200 });
    if (reply === 'network') throw new TypeError('fetch failed');
    if (reply.status === 204) return new Response(null, { status: 204 });
    const payload = reply.body ?? {
      access_token: tokenFor(this.ttlMs),
      refresh_token: `r${++this.counter}`,
      token_type: 'bearer',
      expires_in: this.ttlMs / 1000,
    };
    return new Response(JSON.stringify(payload), {
      status: reply.status,
      headers: { 'content-type': 'application/json' },
    });
  };
}

class FakeHooks implements LifecycleHooks {
  online = true;
  private onlineListeners = new Set<() => void>();
  private foregroundListeners = new Set<() => void>();
  isOnline = (): boolean => this.online;
  onOnline(l: () => void): () => void {
    this.onlineListeners.add(l);
    return () => this.onlineListeners.delete(l);
  }
  onForeground(l: () => void): () => void {
    this.foregroundListeners.add(l);
    return () => this.foregroundListeners.delete(l);
  }
  goOnline(): void {
    this.online = true;
    for (const l of [...this.onlineListeners]) l();
  }
  foreground(): void {
    for (const l of [...this.foregroundListeners]) l();
  }
}

let server: FakeAuthServer;
let hooks: FakeHooks;
let platform: Platform;

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
  server = new FakeAuthServer();
  hooks = new FakeHooks();
  platform = createPlatform({ fetch: server.fetch, random: () => 0.5, hooks });
});

afterEach(() => {
  vi.useRealTimers();
});

async function signedIn(options: Partial<ConstructorParameters<typeof TokenManager>[0]> = {}, ttlMs = 60_000) {
  const storage = options.storage ?? memoryStorage();
  const tokens = new TokenManager({ baseUrl: 'http://gw.test', platform, storage, ...options });
  await tokens.setSession({ accessToken: tokenFor(ttlMs), refreshToken: 'r0' });
  return { tokens, storage };
}

describe('TokenManager proactive refresh', () => {
  it('refreshes refreshAheadMs plus jitter before exp, and not earlier', async () => {
    const { tokens } = await signedIn({ refreshAheadMs: 10_000, refreshJitterMs: 5_000 }, 100_000);
    // exp at 100 s; ahead 10 s; jitter 0.5 × 5 s = 2.5 s → refresh at 87.5 s.
    await vi.advanceTimersByTimeAsync(87_499);
    expect(server.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.calls).toHaveLength(1);
    expect(server.calls[0]).toEqual({ url: 'http://gw.test/auth/refresh', body: { refresh_token: 'r0' } });
    await vi.advanceTimersByTimeAsync(0);
    expect(tokens.expiresAt).toBe(Date.now() + 60_000);
    tokens.dispose();
  });

  it('caps lead time and jitter by the token lifetime, so 3 s tokens refresh near the end, not at once', async () => {
    platform.random = () => 0.999;
    server.ttlMs = 3_000;
    const { tokens } = await signedIn({}, 3_000);
    // ahead = 3000/4 = 750; jitter ≤ 3000/10 = 300 → refresh at ≈ 1950 ms.
    await vi.advanceTimersByTimeAsync(1_940);
    expect(server.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(20);
    expect(server.calls).toHaveLength(1);
    // The next token (3 s again) refreshes ≈ 1.95 s later: a steady chain, no storm.
    await vi.advanceTimersByTimeAsync(1_960);
    expect(server.calls).toHaveLength(2);
    tokens.dispose();
  });

  it('spreads a fleet: different random draws refresh at different moments within the jitter window', async () => {
    const moments: number[] = [];
    for (const r of [0, 0.5, 0.99]) {
      platform.random = () => r;
      const fleetServer = new FakeAuthServer();
      platform.fetch = fleetServer.fetch;
      const start = Date.now();
      const { tokens } = await signedIn({ refreshAheadMs: 10_000, refreshJitterMs: 5_000 }, 100_000);
      while (fleetServer.calls.length === 0) await vi.advanceTimersByTimeAsync(100);
      moments.push(Date.now() - start);
      tokens.dispose();
    }
    expect(moments[0]).toBe(90_000);
    expect(moments[1]).toBe(87_500);
    expect(moments[2]).toBeGreaterThanOrEqual(85_000);
    expect(moments[2]).toBeLessThan(85_200);
  });

  it('refreshes on return to the foreground when the timer was frozen in the background', async () => {
    const frozen = createPlatform({ ...platform, setTimeout: () => 0, clearTimeout: () => undefined });
    const tokens = new TokenManager({ baseUrl: 'http://gw.test', platform: frozen });
    await tokens.setSession({ accessToken: tokenFor(10_000), refreshToken: 'r0' });
    vi.setSystemTime(Date.now() + 9_000);
    expect(server.calls).toHaveLength(0);
    hooks.foreground();
    await vi.advanceTimersByTimeAsync(0);
    expect(server.calls).toHaveLength(1);
    tokens.dispose();
  });
});

describe('TokenManager single-flight refresh', () => {
  it('shares one refresh among 20 concurrent callers of an expired token', async () => {
    const { tokens } = await signedIn({ proactive: false }, 1_000);
    vi.setSystemTime(Date.now() + 2_000);
    let release!: (r: Reply) => void;
    server.replies.push(new Promise<Reply>((resolve) => (release = resolve)));
    const callers = Array.from({ length: 20 }, () => tokens.getAccessToken());
    await vi.advanceTimersByTimeAsync(0);
    expect(server.calls).toHaveLength(1);
    release({ status: 200 });
    const results = await Promise.all(callers);
    expect(new Set(results).size).toBe(1);
    expect(results[0]).toBe(tokens.accessToken);
    expect(server.calls).toHaveLength(1);
  });

  it('refreshIfCurrent costs one refresh for many 401s on the same stale token', async () => {
    const { tokens } = await signedIn({ proactive: false });
    const stale = tokens.accessToken;
    const first = await tokens.refreshIfCurrent(stale);
    const later = await Promise.all(Array.from({ length: 5 }, () => tokens.refreshIfCurrent(stale)));
    expect(server.calls).toHaveLength(1);
    expect(later.every((t) => t === first)).toBe(true);
  });

  it('drops the answer of a refresh superseded by a new session', async () => {
    const { tokens, storage } = await signedIn({ proactive: false });
    let release!: (r: Reply) => void;
    server.replies.push(new Promise<Reply>((resolve) => (release = resolve)));
    const pending = tokens.refresh();
    await vi.advanceTimersByTimeAsync(0);
    const fresh = tokenFor(60_000, 'u2');
    await tokens.setSession({ accessToken: fresh, refreshToken: 'login-2' });
    release({ status: 200 });
    expect(await pending).toBe(fresh);
    expect(tokens.accessToken).toBe(fresh);
    expect(await storage.get('tether.refresh_token')).toBe('login-2');
  });

  it('stores the rotated refresh token before announcing the new access token', async () => {
    const order: string[] = [];
    const inner = memoryStorage();
    const storage: TokenStorage = {
      get: (k) => inner.get(k),
      set: async (k, v) => {
        order.push(`set ${k}`);
        await inner.set(k, v);
      },
      remove: (k) => inner.remove(k),
    };
    const { tokens } = await signedIn({ storage, proactive: false });
    order.length = 0;
    tokens.on('change', () => order.push('change'));
    await tokens.refresh();
    expect(order.indexOf('set tether.refresh_token')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('set tether.refresh_token')).toBeLessThan(order.indexOf('change'));
    expect(order.indexOf('set tether.access_token')).toBeLessThan(order.indexOf('change'));
    expect(await storage.get('tether.refresh_token')).toBe('r1');
  });

  it('reloads stored tokens on start (survives an app restart)', async () => {
    const { tokens, storage } = await signedIn({ proactive: false });
    const again = new TokenManager({ baseUrl: 'http://gw.test', platform, storage, proactive: false });
    expect(await again.getAccessToken()).toBe(tokens.accessToken);
    expect(server.calls).toHaveLength(0);
  });
});

describe('TokenManager failures', () => {
  it('signs out once on a 401 REFRESH_* answer and never retries it', async () => {
    const { tokens, storage } = await signedIn({ proactive: false }, 1_000);
    const signedOut: SignedOut[] = [];
    tokens.on('signed_out', (e) => signedOut.push(e));
    vi.setSystemTime(Date.now() + 2_000);
    server.replies.push({ status: 401, body: { code: 'REFRESH_REUSED', message: 'reused' } });
    expect(await tokens.getAccessToken()).toBeNull();
    expect(signedOut).toEqual([{ code: 'REFRESH_REUSED', message: 'reused' }]);
    expect(await storage.get('tether.refresh_token')).toBeNull();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(server.calls).toHaveLength(1);
    expect(await tokens.getAccessToken()).toBeNull();
    expect(server.calls).toHaveLength(1);
  });

  it('retries a network error with backoff and recovers when the network returns', async () => {
    const { tokens } = await signedIn({
      proactive: false,
      retry: { minMs: 1_000, maxMs: 8_000 },
      maxRefreshAttempts: 5,
    });
    const errors: Array<number | null> = [];
    tokens.on('refresh_error', (e) => errors.push(e.retryInMs));
    server.replies.push('network', 'network', { status: 503, body: { code: 'INTERNAL', message: 'x' } });
    const start = Date.now();
    const pending = tokens.refresh();
    await vi.advanceTimersByTimeAsync(0);
    expect(server.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(60_000);
    const token = await pending;
    expect(server.calls).toHaveLength(4);
    expect(token).toBe(tokens.accessToken);
    // random 0.5: delays 1000 + 0.5·(2000−1000), 1000 + 0.5·(3000−1000), 1000 + 0.5·(5000−1000)
    expect(errors).toEqual([1_500, 2_000, 3_000]);
    expect(Date.now() - start).toBeGreaterThanOrEqual(6_500);
  });

  it('gives up after maxRefreshAttempts with the network error, keeping the session', async () => {
    const { tokens, storage } = await signedIn({ proactive: false, maxRefreshAttempts: 3 });
    server.replies.push('network', 'network', 'network');
    const pending = tokens.refresh().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(60_000);
    const error = await pending;
    expect(error).toMatchObject({ name: 'NetworkError', code: 'INTERNAL' });
    expect(server.calls).toHaveLength(3);
    expect(await storage.get('tether.refresh_token')).toBe('r0');
  });

  it('retries at once when connectivity returns instead of waiting out the backoff', async () => {
    const { tokens } = await signedIn({ proactive: false, retry: { minMs: 30_000, maxMs: 60_000 } });
    hooks.online = false;
    server.replies.push('network');
    const pending = tokens.refresh();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(server.calls).toHaveLength(1);
    hooks.goOnline();
    await vi.advanceTimersByTimeAsync(0);
    expect(server.calls).toHaveLength(2);
    await expect(pending).resolves.toBe(tokens.accessToken);
  });

  it('logout tells the server, clears storage and emits signed_out with code null', async () => {
    const { tokens, storage } = await signedIn({ proactive: false });
    const events: SignedOut[] = [];
    tokens.on('signed_out', (e) => events.push(e));
    server.replies.push({ status: 204, body: '' });
    await tokens.logout();
    expect(server.calls[0]?.url).toBe('http://gw.test/auth/logout');
    expect(server.calls[0]?.body).toEqual({ refresh_token: 'r0' });
    expect(events).toEqual([{ code: null, message: 'logged out' }]);
    expect(await storage.get('tether.access_token')).toBeNull();
    expect(await tokens.getAccessToken()).toBeNull();
  });

  it('cookie mode sends credentials and never stores a refresh token', async () => {
    const seen: RequestInit[] = [];
    const inner = server.fetch;
    platform.fetch = (input, init) => {
      if (init) seen.push(init);
      return inner(input, init);
    };
    const storage = memoryStorage();
    const tokens = new TokenManager({ baseUrl: 'http://gw.test', platform, storage, mode: 'cookie', proactive: false });
    await tokens.login('a@b.c', 'pw');
    await tokens.refresh();
    expect(seen.every((i) => i.credentials === 'include')).toBe(true);
    expect(server.calls[1]?.body).toEqual({});
    expect(await storage.get('tether.refresh_token')).toBeNull();
  });
});
