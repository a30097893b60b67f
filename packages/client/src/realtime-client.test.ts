import type { NarrowAck, ReauthAck, SendAck, SendRequest, SubscribeAck } from '@tether/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPlatform, type LifecycleHooks, type Platform } from './platform.js';
import { RealtimeClient } from './realtime-client.js';
import type { StateChange } from './state-machine.js';
import { TokenManager } from './token-manager.js';
import type { Transport, TransportFactory, TransportOptions } from './transports/types.js';

function jwt(claims: Record<string, unknown>): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'HS256' })}.${b64(claims)}.sig`;
}
let serial = 0;
const tokenFor = (ttlMs: number): string =>
  jwt({ sub: 'u1', iat: Date.now() / 1000, exp: (Date.now() + ttlMs) / 1000, n: ++serial });

/** A transport the test drives by hand; records every token it was opened or reauthed with. */
class FakeTransport implements Transport {
  readonly kind = 'ws' as const;
  opened: string | undefined;
  reauths: string[] = [];
  narrows: (string[] | null)[] = [];
  resumes: unknown[] = [];
  reauthAnswer: ReauthAck | 'hang' = { ok: true, expiresAt: 0 };
  closed = false;
  constructor(readonly options: TransportOptions) {}
  open(token: string, resume?: unknown): void {
    this.opened = token;
    this.resumes.push(resume);
  }
  reauth(token: string): Promise<ReauthAck> {
    this.reauths.push(token);
    const answer = this.reauthAnswer;
    return answer === 'hang' ? new Promise(() => undefined) : Promise.resolve(answer);
  }
  subscribe(channel: string): Promise<SubscribeAck> {
    return Promise.resolve({ ok: true, channel });
  }
  unsubscribe(channel: string): Promise<SubscribeAck> {
    return Promise.resolve({ ok: true, channel });
  }
  narrow(scopes: string[] | null): Promise<NarrowAck> {
    this.narrows.push(scopes);
    return Promise.resolve(scopes === null ? { ok: true } : { ok: true, scopes });
  }
  send(request: SendRequest): Promise<SendAck> {
    return Promise.resolve({ ok: true, result: request.key });
  }
  close(): void {
    this.closed = true;
  }
  /** Server accepts: open + session_created. */
  accept(): void {
    this.options.handlers.open();
    this.options.handlers.session({
      sessionId: 's',
      userId: 'u1',
      isGuest: false,
      expiresAt: 0,
      timestamp: Date.now(),
      scopes: [],
      channels: [],
    });
  }
}

class Hooks implements LifecycleHooks {
  private online = new Set<() => void>();
  isOnline = (): boolean => true;
  onOnline(l: () => void): () => void {
    this.online.add(l);
    return () => this.online.delete(l);
  }
  onForeground(): () => void {
    return () => undefined;
  }
  fireOnline(): void {
    for (const l of [...this.online]) l();
  }
}

let transports: FakeTransport[];
let factory: TransportFactory;
let refreshCalls: number;
let refreshReply: () => Response | Promise<Response>;
let platform: Platform;
let hooks: Hooks;

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
  transports = [];
  factory = (options) => {
    const t = new FakeTransport(options);
    transports.push(t);
    return t;
  };
  refreshCalls = 0;
  refreshReply = () =>
    Response.json({ access_token: tokenFor(60_000), refresh_token: `r${refreshCalls}`, expires_in: 60 });
  hooks = new Hooks();
  platform = createPlatform({
    random: () => 0.5,
    hooks,
    fetch: async (input) => {
      const url = String(input);
      if (url.endsWith('/auth/refresh')) {
        refreshCalls++;
        return refreshReply();
      }
      if (url.endsWith('/auth/guest'))
        return Response.json({ access_token: jwt({ sub: 'guest:1', exp: Date.now() / 1000 + 600 }) });
      return new Response(null, { status: 204 });
    },
  });
});

afterEach(() => vi.useRealTimers());

async function setup(options: { ttlMs?: number; guestFallback?: boolean; narrow?: string[] } = {}) {
  const tokens = new TokenManager({ baseUrl: 'http://gw.test', platform, proactive: false });
  await tokens.setSession({ accessToken: tokenFor(options.ttlMs ?? 60_000), refreshToken: 'r0' });
  const client = new RealtimeClient({
    url: 'http://gw.test',
    tokens,
    transport: factory,
    backoff: { minMs: 1_000, maxMs: 30_000 },
    suspendAfterAttempts: 3,
    suspendedRetryMs: 60_000,
    guestFallback: options.guestFallback ?? false,
    ...(options.narrow === undefined ? {} : { narrow: options.narrow }),
  });
  const changes: StateChange[] = [];
  client.onState((c) => changes.push(c));
  return { tokens, client, changes, states: () => changes.map((c) => c.current) };
}

const last = (): FakeTransport => {
  const t = transports.at(-1);
  if (!t) throw new Error('no transport yet');
  return t;
};

describe('RealtimeClient state handling (fake transport, fake time)', () => {
  it('goes connecting → authenticating → connected and ignores callbacks from an older attempt', async () => {
    const { client, states } = await setup();
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    const first = last();
    first.options.handlers.closed('network down');
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(1_500);
    const second = last();
    expect(second).not.toBe(first);
    second.accept();
    expect(client.state).toBe('connected');
    // Late reports from the first socket change nothing.
    first.options.handlers.closed('late close');
    first.options.handlers.authError({ code: 'AUTH_REVOKED', message: 'late', timestamp: 0 });
    expect(client.state).toBe('connected');
    expect(states()).toEqual(['connecting', 'reconnecting', 'connecting', 'authenticating', 'connected']);
  });

  it('reports retryInMs from full-jitter backoff, then suspends after repeated failures', async () => {
    const { client, changes } = await setup();
    client.connect();
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(0);
      last().options.handlers.closed('refused');
      const change = changes.at(-1);
      await vi.advanceTimersByTimeAsync(change?.retryInMs ?? 0);
    }
    const retries = changes.filter((c) => c.current === 'reconnecting' || c.current === 'suspended');
    expect(retries.map((c) => [c.current, c.retryInMs])).toEqual([
      ['reconnecting', 1_500],
      ['reconnecting', 2_000],
      ['reconnecting', 3_000],
      ['suspended', 45_000],
    ]);
    client.dispose();
  });

  it('connectivity back skips the remaining backoff and reconnects at once', async () => {
    const { client } = await setup();
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    last().options.handlers.closed('offline');
    expect(client.state).toBe('reconnecting');
    const before = transports.length;
    hooks.fireOnline();
    await vi.advanceTimersByTimeAsync(0);
    expect(transports.length).toBe(before + 1);
    expect(client.state).toBe('connecting');
  });

  it('times out waiting for session_created after 10 s into a retry', async () => {
    const { client, changes } = await setup();
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    last().options.handlers.open();
    await vi.advanceTimersByTimeAsync(9_999);
    expect(client.state).toBe('authenticating');
    await vi.advanceTimersByTimeAsync(1);
    expect(client.state).toBe('reconnecting');
    expect(changes.at(-1)?.reason).toBe('session_created timeout');
  });

  it('never opens a transport with an expired token: refreshes first', async () => {
    const { client } = await setup({ ttlMs: 5_000 });
    vi.setSystemTime(Date.now() + 10_000); // the app slept past exp
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(refreshCalls).toBe(1);
    expect(last().opened).toBe(client.tokens.accessToken);
  });

  it('AUTH_EXPIRED refreshes and reconnects at once; a repeat backs off instead of looping', async () => {
    const { client, changes } = await setup();
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    const first = last();
    first.options.handlers.authError({ code: 'AUTH_EXPIRED', message: 'exp', timestamp: 0 });
    expect(changes.at(-1)).toMatchObject({ current: 'reconnecting', retryInMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    expect(refreshCalls).toBe(1);
    expect(last().opened).not.toBe(first.opened);
    last().options.handlers.authError({ code: 'AUTH_EXPIRED', message: 'exp', timestamp: 0 });
    expect(changes.at(-1)?.retryInMs).toBeGreaterThan(0);
  });

  it('AUTH_REVOKED → failed and signed out, with no retry afterwards', async () => {
    const { client, tokens } = await setup();
    const signedOut: unknown[] = [];
    client.onSignedOut((e) => signedOut.push(e));
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    last().accept();
    last().options.handlers.authError({ code: 'AUTH_REVOKED', message: 'kicked', timestamp: 0 });
    expect(client.state).toBe('failed');
    await vi.advanceTimersByTimeAsync(600_000);
    expect(transports).toHaveLength(1);
    expect(signedOut).toEqual([{ code: 'AUTH_REVOKED', message: 'kicked' }]);
    expect(tokens.accessToken).toBeNull();
  });

  it('AUTH_INVALID → failed without guest fallback, a guest session with it', async () => {
    const strict = await setup();
    strict.client.connect();
    await vi.advanceTimersByTimeAsync(0);
    last().options.handlers.authError({ code: 'AUTH_INVALID', message: 'bad', timestamp: 0 });
    expect(strict.client.state).toBe('failed');
    strict.client.dispose();

    const lenient = await setup({ guestFallback: true });
    lenient.client.connect();
    await vi.advanceTimersByTimeAsync(0);
    last().options.handlers.authError({ code: 'AUTH_INVALID', message: 'bad', timestamp: 0 });
    await vi.advanceTimersByTimeAsync(0);
    expect(lenient.tokens.isGuest).toBe(true);
    expect(last().opened).toBe(lenient.tokens.accessToken);
    last().options.handlers.authError({ code: 'AUTH_INVALID', message: 'still bad', timestamp: 0 });
    expect(lenient.client.state).toBe('failed'); // a refused guest does not loop
  });

  it('a token refresh leads to an in-place reauth, not a reconnect', async () => {
    const { client, tokens, states } = await setup();
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    last().accept();
    await tokens.refresh();
    await vi.advanceTimersByTimeAsync(0);
    expect(last().reauths).toEqual([tokens.accessToken]);
    expect(transports).toHaveLength(1);
    expect(states().at(-1)).toBe('connected');
  });

  it('token_expiring refreshes and reauths; a refused reauth reconnects with the fresh token', async () => {
    const { client, tokens } = await setup();
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    const t = last();
    t.accept();
    t.reauthAnswer = { ok: false, code: 'AUTH_INVALID', message: 'different user' };
    t.options.handlers.tokenExpiring({ expiresAt: Date.now() + 1_000, secondsLeft: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(refreshCalls).toBe(1);
    expect(t.reauths).toEqual([tokens.accessToken]);
    expect(t.closed).toBe(true);
    expect(transports).toHaveLength(2);
    expect(last().opened).toBe(tokens.accessToken);
  });

  it('presents its narrowing on every connect, and a live narrow() is kept for the next one', async () => {
    const { client } = await setup({ narrow: ['ke/a/w1'] });
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(last().resumes.at(-1)).toEqual({ narrow: ['ke/a/w1'] });
    last().accept();
    expect(await client.narrow(['ke/a/w2'])).toEqual({ ok: true, scopes: ['ke/a/w2'] });
    expect(last().narrows).toEqual([['ke/a/w2']]);
    last().options.handlers.closed('cut');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(last().resumes.at(-1)).toEqual({ narrow: ['ke/a/w2'] });
    last().accept();
    expect(await client.narrow(null)).toEqual({ ok: true });
    last().options.handlers.closed('cut');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(last().resumes.at(-1)).toBeUndefined();
  });

  it('delivers each event id once across reconnects and clears everything on logout', async () => {
    const { client, tokens } = await setup();
    const got: Array<[unknown, string | undefined]> = [];
    client.on('message_received', (data, meta) => got.push([data['text'], meta.id]));
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    last().accept();
    last().options.handlers.event('message_received', { text: 'a', id: 'e1' }, 'e1');
    last().options.handlers.closed('cut');
    await vi.advanceTimersByTimeAsync(2_000);
    last().accept();
    last().options.handlers.event('message_received', { text: 'a', id: 'e1' }, 'e1');
    last().options.handlers.event('message_received', { text: 'b', id: 'e2' }, 'e2');
    expect(got).toEqual([
      ['a', 'e1'],
      ['b', 'e2'],
    ]);
    await client.logout();
    expect(client.state).toBe('disconnected');
    expect(tokens.accessToken).toBeNull();
    expect(last().closed).toBe(true);
  });
});
