// @vitest-environment jsdom
import { StrictMode, createElement as h, useState, type ReactNode } from 'react';
import { flushSync } from 'react-dom';
import { createRoot, type Root } from 'react-dom/client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { RealtimeClient, TokenManager, createPlatform, type WebSocketConstructor } from '@tether/client';
import {
  MissingTetherProviderError,
  TetherProvider,
  useConnectionState,
  createTetherHooks,
  useEvent,
  useSend,
  useSession,
  useTetherClient,
  useTokenExpiry,
  useUser,
  type SendFunction,
} from '@tether/react';
import { TetherError } from '@tether/protocol';
import { startGateway, type TestGateway } from './helpers/gateway.js';

// Updates arrive from a real socket, as in an app: React schedules them itself (no act() queue).
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false;

type TestEvents = { note: { n: number }; other: { text: string } };
type TestSends = { add: { n: number }; refused: Record<string, never> };
type Client = RealtimeClient<TestEvents>;

const platform = createPlatform({ WebSocket: WebSocket as unknown as WebSocketConstructor });

/** Every listener the client and its token manager hold: app events, states, lifecycle, tokens. */
function listenerCount(client: Client): number {
  const inside = client as unknown as {
    handlers: Map<string, Set<unknown>>;
    lifecycle: { listeners: Map<string, Set<unknown>> };
    connection: { machine: { listeners: Set<unknown> } };
  };
  const tokens = client.tokens as unknown as { emitter: { listeners: Map<string, Set<unknown>> } };
  const sum = (map: Map<string, Set<unknown>>) => [...map.values()].reduce((n, set) => n + set.size, 0);
  return (
    sum(inside.handlers) +
    sum(inside.lifecycle.listeners) +
    inside.connection.machine.listeners.size +
    sum(tokens.emitter.listeners)
  );
}

/** The client's own handlers of one application event (what `useEvent` added). */
function handlersOf(client: Client, event: string): unknown[] {
  const set = (client as unknown as { handlers: Map<string, Set<unknown>> }).handlers.get(event);
  return set === undefined ? [] : [...set];
}

describe('@tether/react hooks against a real gateway (React DOM in jsdom, ws transport)', () => {
  let gw: TestGateway;
  const cleanups: (() => void)[] = [];
  let seq = 0;

  /** What the `add` handler has received, per user, in order. */
  const added = new Map<string, number[]>();

  beforeAll(async () => {
    gw = await startGateway({ JWT_EXPIRATION_SECONDS: '60', AUTH_RATE_PER_MINUTE: '1000' });
    gw.gateway.onClientEvent('add', (ctx, data) => {
      const list = added.get(ctx.userId) ?? [];
      list.push((data as { n: number }).n);
      added.set(ctx.userId, list);
      return { total: list.reduce((a, b) => a + b, 0) };
    });
    gw.gateway.onClientEvent('refused', () => {
      throw new TetherError('FORBIDDEN', 'not for you');
    });
  });
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });
  afterAll(async () => {
    await gw?.close();
  });

  function newClient(claims: Record<string, unknown> = {}): { client: Client; sub: string } {
    const sub = `react-user-${++seq}`;
    const tokens = new TokenManager({
      baseUrl: gw.url,
      platform,
      getToken: async () => gw.sign({ sub, ...claims }, 60),
    });
    const client: Client = new RealtimeClient<TestEvents>({
      url: gw.url,
      tokens,
      transport: 'ws',
      backoff: { minMs: 50, maxMs: 200 },
    });
    cleanups.push(() => {
      client.dispose();
      tokens.dispose();
    });
    return { client, sub };
  }

  function mount(element: ReactNode, onUncaughtError?: (error: unknown) => void): { root: Root; el: HTMLElement } {
    const el = document.createElement('div');
    document.body.append(el);
    const root = createRoot(el, onUncaughtError === undefined ? {} : { onUncaughtError });
    flushSync(() => root.render(element));
    let mounted = true;
    cleanups.push(() => {
      if (mounted) root.unmount();
      el.remove();
    });
    const unmount = root.unmount.bind(root);
    root.unmount = () => {
      mounted = false;
      unmount();
    };
    return { root, el };
  }

  const text = (el: HTMLElement, testId: string) => el.querySelector(`[data-testid="${testId}"]`)?.textContent;
  const publish = async (sub: string, event: string, data: Record<string, unknown>) => {
    const answer = await gw.api('POST', '/v1/publish', { event, data, to: { users: [sub] } });
    expect(answer.status).toBe(202);
  };

  it('useConnectionState re-renders through connecting → connected; useSession shows the live session', async () => {
    const { client, sub } = newClient();
    const rendered: string[] = [];
    function Status() {
      const state = useConnectionState();
      const session = useSession();
      rendered.push(state);
      return h(
        'p',
        null,
        h('span', { 'data-testid': 'state' }, state),
        h('span', { 'data-testid': 'user' }, session?.userId ?? '-'),
      );
    }
    const { el } = mount(h(TetherProvider, { client }, h(Status)));
    expect(text(el, 'state')).toBe('disconnected');
    expect(text(el, 'user')).toBe('-');

    client.connect();
    await vi.waitFor(() => expect(text(el, 'state')).toBe('connected'), { timeout: 10_000 });
    expect(text(el, 'user')).toBe(sub);
    expect(rendered[0]).toBe('disconnected');
    expect(rendered).toContain('connecting');
    expect(rendered.at(-1)).toBe('connected');

    client.close();
    await vi.waitFor(() => expect(text(el, 'state')).toBe('disconnected'));
    expect(text(el, 'user')).toBe('-');
  });

  it('a published event reaches the useEvent handler and re-renders', async () => {
    const { client, sub } = newClient();
    function Notes() {
      const [notes, setNotes] = useState<number[]>([]);
      useEvent<TestEvents, 'note'>('note', (data, meta) => {
        expect(meta.event).toBe('note');
        setNotes((list) => [...list, data.n]);
      });
      return h('p', { 'data-testid': 'notes' }, notes.join(','));
    }
    const { el } = mount(h(TetherProvider, { client }, h(Notes)));
    client.connect();
    await vi.waitFor(() => expect(client.state).toBe('connected'), { timeout: 10_000 });
    await publish(sub, 'note', { n: 1 });
    await publish(sub, 'note', { n: 2 });
    await vi.waitFor(() => expect(text(el, 'notes')).toBe('1,2'));
  });

  it('the handler of the latest render is called, with one subscription made once', async () => {
    const { client, sub } = newClient();
    const calls: string[] = [];
    function Listener({ label }: { label: string }) {
      useEvent<TestEvents, 'note'>('note', (data) => calls.push(`${label}:${data.n}`), client);
      return h('p', null, label);
    }
    const { root } = mount(h(Listener, { label: 'first' }));
    const subscribed = handlersOf(client, 'note');
    expect(subscribed).toHaveLength(1);

    flushSync(() => root.render(h(Listener, { label: 'second' })));
    flushSync(() => root.render(h(Listener, { label: 'third' })));
    // Still the one listener added on mount: re-renders swap the handler, not the subscription.
    expect(handlersOf(client, 'note')).toEqual(subscribed);

    client.connect();
    await vi.waitFor(() => expect(client.state).toBe('connected'), { timeout: 10_000 });
    await publish(sub, 'note', { n: 7 });
    await vi.waitFor(() => expect(calls).toEqual(['third:7']));
  });

  it('useTokenExpiry follows the token and the in-place reauth', async () => {
    const { client, sub } = newClient();
    function Expiry() {
      const { expiresAt, lastReauth } = useTokenExpiry();
      return h(
        'p',
        null,
        h('span', { 'data-testid': 'exp' }, String(expiresAt ?? '-')),
        h('span', { 'data-testid': 'reauth' }, lastReauth === null ? '-' : `${lastReauth.kind}@${lastReauth.at}`),
      );
    }
    const { el } = mount(h(TetherProvider, { client }, h(Expiry)));
    client.connect();
    await vi.waitFor(() => expect(client.state).toBe('connected'), { timeout: 10_000 });
    await vi.waitFor(() => expect(text(el, 'exp')).toBe(String(client.tokens.expiresAt)));
    const first = client.tokens.expiresAt!;
    // The token fetched for the handshake may already have been re-presented in place.
    const reauthBefore = text(el, 'reauth');

    // A new token (as a refresh brings): the SDK reauths the live socket in place.
    await new Promise((resolve) => setTimeout(resolve, 1100)); // `exp` has a one-second resolution
    await client.tokens.setSession({ accessToken: gw.sign({ sub }, 120) });
    await vi.waitFor(
      () => {
        expect(text(el, 'reauth')).not.toBe(reauthBefore);
        expect(text(el, 'reauth')).toMatch(/^reauth_ok@\d+$/);
      },
      { timeout: 10_000 },
    );
    expect(Number(text(el, 'exp'))).toBeGreaterThan(first);
    expect(text(el, 'exp')).toBe(String(client.tokens.expiresAt));
    expect(client.state).toBe('connected');
  });

  it('useSend: a stable send function whose acks render; sends made while offline go once connected, in order', async () => {
    const { client, sub } = newClient();
    const { useSend: useTypedSend } = createTetherHooks<TestEvents, TestSends>();
    const seen: SendFunction<{ n: number }>[] = [];
    let send: SendFunction<{ n: number }> | undefined;
    function Adder({ label }: { label: string }) {
      const add = useTypedSend('add');
      seen.push(add);
      send = add;
      return h('p', null, label);
    }
    const { root } = mount(h(TetherProvider, { client }, h(Adder, { label: 'a' })));
    flushSync(() => root.render(h(TetherProvider, { client }, h(Adder, { label: 'b' }))));
    expect(seen).toHaveLength(2);
    expect(seen[1]).toBe(seen[0]); // the same function on every render: safe in effect dependencies

    // Not connected yet: the sends wait in the client's outbox and go, in order, once connected.
    const acks = [send!({ n: 1 }), send!({ n: 2 }), send!({ n: 3 })];
    expect(added.get(sub)).toBeUndefined();
    client.connect();
    expect(await Promise.all(acks)).toEqual([
      { ok: true, result: { total: 1 } },
      { ok: true, result: { total: 3 } },
      { ok: true, result: { total: 6 } },
    ]);
    expect(added.get(sub)).toEqual([1, 2, 3]);
  });

  it('useSend: a refusal by the server and a send the client gives up on both resolve {ok:false}, never reject', async () => {
    const { client } = newClient();
    let refused: SendFunction<TestSends['refused']> | undefined;
    function Sender() {
      refused = useSend<TestSends, 'refused'>('refused');
      return null;
    }
    mount(h(TetherProvider, { client }, h(Sender)));
    client.connect();
    await vi.waitFor(() => expect(client.state).toBe('connected'), { timeout: 10_000 });
    expect(await refused!({})).toEqual({ ok: false, code: 'FORBIDDEN', message: 'not for you' });

    // A disposed client rejects `client.send`; the hook's function answers instead.
    client.dispose();
    await expect(client.send('refused', {})).rejects.toBeInstanceOf(TetherError);
    const ack = await refused!({});
    expect(ack.ok).toBe(false);
    expect(ack.ok === false && ack.code).toBe('SEND_FAILED');
  });

  it('useUser: the signed-in user from the token, before any connection, across renewals, null after logout', async () => {
    const { client, sub } = newClient();
    function Me() {
      const user = useUser();
      return h(
        'p',
        { 'data-testid': 'me' },
        user === null
          ? 'signed out'
          : `${user.id}|${user.name ?? '-'}|${user.role ?? '-'}|${user.scopes.join(',')}|${String(user.isGuest)}`,
      );
    }
    const { el } = mount(h(TetherProvider, { client }, h(Me)));
    expect(text(el, 'me')).toBe('signed out');

    // A session is known before the socket opens (restored from storage, or a login).
    await client.tokens.setSession({
      accessToken: gw.sign({ sub, name: 'Wanjiru', role: 'officer', scopes: ['ke.kiambu'] }, 60),
    });
    await vi.waitFor(() => expect(text(el, 'me')).toBe(`${sub}|Wanjiru|officer|ke.kiambu|false`));
    expect(client.state).toBe('disconnected');

    // A renewal with a wider grant: the hook follows the token the client holds.
    await client.tokens.setSession({
      accessToken: gw.sign({ sub, name: 'Wanjiru', role: 'officer', scopes: ['ke.kiambu', 'ke.nyeri'] }, 120),
    });
    await vi.waitFor(() => expect(text(el, 'me')).toBe(`${sub}|Wanjiru|officer|ke.kiambu,ke.nyeri|false`));

    await client.logout();
    await vi.waitFor(() => expect(text(el, 'me')).toBe('signed out'));
  });

  it('unmounting removes every listener the hooks added (StrictMode, connected client)', async () => {
    const { client } = newClient();
    const before = listenerCount(client);
    function Everything() {
      useConnectionState();
      useSession();
      useTokenExpiry();
      useUser();
      useSend<TestSends, 'add'>('add');
      useEvent<TestEvents, 'note'>('note', () => undefined);
      useEvent<TestEvents, 'other'>('other', () => undefined);
      return null;
    }
    const { root } = mount(h(StrictMode, null, h(TetherProvider, { client }, h(Everything))));
    client.connect();
    await vi.waitFor(() => expect(client.state).toBe('connected'), { timeout: 10_000 });
    // StrictMode mounted, unmounted and mounted the effects again: each hook holds exactly its own.
    expect(handlersOf(client, 'note')).toHaveLength(1);
    expect(handlersOf(client, 'other')).toHaveLength(1);
    expect(listenerCount(client)).toBeGreaterThan(before);

    root.unmount();
    expect(listenerCount(client)).toBe(before);
  });

  it('useEvent keeps listening after logout() (which drops the client listeners), for the next sign-in', async () => {
    const { client } = newClient();
    function Listener() {
      useEvent<TestEvents, 'note'>('note', () => undefined);
      return null;
    }
    const { root } = mount(h(TetherProvider, { client }, h(Listener)));
    client.connect();
    await vi.waitFor(() => expect(client.state).toBe('connected'), { timeout: 10_000 });
    await client.logout();
    expect(handlersOf(client, 'note')).toHaveLength(1);
    root.unmount();
    expect(handlersOf(client, 'note')).toHaveLength(0);
  });

  it('hooks on a closed or disposed client render and unmount without throwing', () => {
    const { client } = newClient();
    client.close();
    client.dispose();
    client.tokens.dispose();
    const before = listenerCount(client);
    const errors: unknown[] = [];
    function Closed() {
      const state = useConnectionState();
      const session = useSession();
      useTokenExpiry();
      useEvent<TestEvents, 'note'>('note', () => undefined);
      return h('p', { 'data-testid': 'closed' }, `${state}/${session === null ? 'none' : 'session'}`);
    }
    const { root, el } = mount(h(TetherProvider, { client }, h(Closed)), (error) => errors.push(error));
    expect(text(el, 'closed')).toBe('disconnected/none');
    root.unmount();
    expect(errors).toEqual([]);
    expect(listenerCount(client)).toBe(before);
  });

  it('a hook outside a TetherProvider throws a clear error', () => {
    const errors: unknown[] = [];
    function Orphan() {
      useConnectionState();
      return null;
    }
    function OrphanClient() {
      useTetherClient();
      return null;
    }
    mount(h(Orphan), (error) => errors.push(error));
    mount(h(OrphanClient), (error) => errors.push(error));
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBeInstanceOf(MissingTetherProviderError);
    expect((errors[0] as Error).message).toBe(
      '@tether/react: useConnectionState() found no RealtimeClient. Render the component inside ' +
        '<TetherProvider client={client}>, or pass the client to the hook.',
    );
    expect((errors[1] as Error).message).toContain('useTetherClient()');
  });
});
