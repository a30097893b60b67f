import { useCallback, useEffect, useInsertionEffect, useRef, useState, useSyncExternalStore } from 'react';
import type {
  AuthNotice,
  ConnectionState,
  EventMap,
  EventMeta,
  RealtimeClient,
  SessionCreatedPayload,
} from '@tether/client';
import { useResolvedClient } from './context.js';

const noop = (): void => undefined;

/**
 * Runs a subscription so that nothing it throws reaches React (a disposed client, a client from a
 * newer SDK): the component keeps rendering what it has, and the cleanup is always safe to call.
 */
function safely(subscribe: () => () => void): () => void {
  let off: () => void;
  try {
    off = subscribe();
  } catch (error) {
    console.warn('@tether/react: could not subscribe to the client', error);
    return noop;
  }
  return () => {
    try {
      off();
    } catch (error) {
      console.warn('@tether/react: could not unsubscribe from the client', error);
    }
  };
}

/**
 * The client's connection state (`disconnected`, `connecting`, `authenticating`, `connected`,
 * `reconnecting`, `suspended`, `failed`), re-rendering on every change. Built on
 * `useSyncExternalStore`: tear-free under concurrent rendering, and the same in React Native.
 *
 * @example
 *   const state = useConnectionState();
 *   return state === 'connected' ? null : <Banner>Reconnecting…</Banner>;
 */
export function useConnectionState<Events extends EventMap = EventMap>(
  client?: RealtimeClient<Events>,
): ConnectionState {
  const c = useResolvedClient('useConnectionState', client);
  const subscribe = useCallback((changed: () => void) => safely(() => c.onState(() => changed())), [c]);
  const read = () => c.state;
  return useSyncExternalStore(subscribe, read, read);
}

/**
 * The live session (`session_created`: user id, grants, `recovered`…), or null while not connected.
 * Re-renders on every new session (each reconnect) and when the connection drops.
 */
export function useSession<Events extends EventMap = EventMap>(
  client?: RealtimeClient<Events>,
): SessionCreatedPayload | null {
  const c = useResolvedClient('useSession', client);
  const subscribe = useCallback(
    (changed: () => void) => {
      const offSession = safely(() => c.onSession(() => changed()));
      const offState = safely(() => c.onState(() => changed()));
      return () => {
        offSession();
        offState();
      };
    },
    [c],
  );
  const read = () => c.session;
  return useSyncExternalStore(subscribe, read, read);
}

/**
 * Calls `handler` for every `event` the client receives while the component is mounted. The latest
 * `handler` is called (an inline arrow function is fine): the subscription is made once per client
 * and event name, not on every render, and removed on unmount. `logout()` drops every listener of
 * the client; this one is added again for the next sign-in.
 *
 * @example
 *   useEvent<ChatEvents, 'message_received'>('message_received', (data, meta) => {
 *     setMessages((list) => [...list, data]);
 *   });
 */
export function useEvent<Events extends EventMap = EventMap, K extends keyof Events & string = keyof Events & string>(
  event: K,
  handler: (data: Events[K], meta: EventMeta) => void,
  client?: RealtimeClient<Events>,
): void {
  const c = useResolvedClient('useEvent', client);
  const latest = useRef(handler);
  // Before any effect of this commit, so an event right after the commit sees this render's handler.
  useInsertionEffect(() => {
    latest.current = handler;
  });
  useEffect(() => {
    const listener = (data: Events[K], meta: EventMeta) => latest.current(data, meta);
    let off = safely(() => c.on(event, listener));
    const offSignedOut = safely(() =>
      c.onSignedOut(() => {
        off();
        off = safely(() => c.on(event, listener));
      }),
    );
    return () => {
      offSignedOut();
      off();
    };
  }, [c, event]);
}

/** An in-place reauth of the live connection, with when the client heard of it (ms). */
export type ReauthNotice = Extract<AuthNotice, { kind: 'reauth_ok' | 'reauth_failed' }> & { at: number };

export interface TokenExpiry {
  /** `exp` of the access token the client holds (ms since the epoch); undefined when signed out. */
  expiresAt: number | undefined;
  /** The last reauth on the live connection (the SDK reauths in place when the token is renewed). */
  lastReauth: ReauthNotice | null;
}

/**
 * The token lifecycle: when the access token expires (re-rendering each time it is renewed or
 * cleared) and the last in-place reauth. For a countdown, combine with your own clock.
 *
 * @example
 *   const { expiresAt, lastReauth } = useTokenExpiry();
 *   const left = expiresAt === undefined ? null : Math.round((expiresAt - Date.now()) / 1000);
 */
export function useTokenExpiry<Events extends EventMap = EventMap>(client?: RealtimeClient<Events>): TokenExpiry {
  const c = useResolvedClient('useTokenExpiry', client);
  const subscribe = useCallback((changed: () => void) => safely(() => c.tokens.on('change', () => changed())), [c]);
  const read = () => c.tokens.expiresAt;
  const expiresAt = useSyncExternalStore(subscribe, read, read);
  // Kept with the client it came from: another client starts with no reauth.
  const [last, setLast] = useState<{ client: object; notice: ReauthNotice } | null>(null);
  useEffect(
    () =>
      safely(() =>
        c.onAuth((notice) => {
          if (notice.kind === 'reauth_ok' || notice.kind === 'reauth_failed')
            setLast({ client: c, notice: { ...notice, at: Date.now() } });
        }),
      ),
    [c],
  );
  return { expiresAt, lastReauth: last !== null && last.client === c ? last.notice : null };
}

/**
 * The hooks bound to one EventMap, so event names and payloads are checked without type arguments
 * at every call.
 *
 * @example
 *   export const { useEvent, useTetherClient } = createTetherHooks<ChatEvents>();
 *   useEvent('message_received', (data) => console.log(data.text)); // data: ChatEvents['message_received']
 */
export function createTetherHooks<Events extends EventMap>(): {
  useTetherClient: (client?: RealtimeClient<Events>) => RealtimeClient<Events>;
  useEvent: <K extends keyof Events & string>(
    event: K,
    handler: (data: Events[K], meta: EventMeta) => void,
    client?: RealtimeClient<Events>,
  ) => void;
} {
  return {
    useTetherClient: (client) => useResolvedClient('useTetherClient', client),
    useEvent: (event, handler, client) => useEvent(event, handler, client),
  };
}
