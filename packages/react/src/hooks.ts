import { useCallback, useEffect, useInsertionEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import {
  TetherError,
  decodeJwtPayload,
  type AuthNotice,
  type ConnectionState,
  type EventMap,
  type EventMeta,
  type RealtimeClient,
  type SendAck,
  type SessionCreatedPayload,
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

/** Client events an app sends (`client.send(event, data)`), by name: the payload each takes. */
export type SendMap = { [event: string]: unknown };

/** Sends one client event; resolves with the ack and never rejects (see `useSend`). */
export type SendFunction<Data> = (data: Data) => Promise<SendAck>;

/**
 * A stable function sending `event` through the client (`client.send`): the same function on every
 * render of the same client and event, so it can go in effect dependencies and `memo` props.
 *
 * The SDK's guarantees hold: while disconnected or reauthenticating the send waits in the client's
 * outbox, sends go in order, and one whose ack was lost is retried with the same idempotency key
 * (the server applies it once). Unlike `client.send`, the promise never rejects: a send the client
 * gives up on (outbox full, `sendTtlMs` passed, client disposed) resolves
 * `{ ok: false, code, message }` like a refusal by the server, so an un-awaited send in a click
 * handler cannot become an unhandled rejection.
 *
 * @example
 *   type ChatSends = { chat_message: { room: string; text: string } };
 *   const sendMessage = useSend<ChatSends, 'chat_message'>('chat_message');
 *   const ack = await sendMessage({ room, text });
 *   if (!ack.ok) setError(ack.message);
 */
export function useSend<
  Sends extends SendMap = SendMap,
  K extends keyof Sends & string = keyof Sends & string,
  Events extends EventMap = EventMap,
>(event: K, client?: RealtimeClient<Events>): SendFunction<Sends[K]> {
  const c = useResolvedClient('useSend', client);
  return useCallback(
    async (data: Sends[K]): Promise<SendAck> => {
      try {
        return await c.send(event, data);
      } catch (error) {
        const coded = error instanceof TetherError ? error : new TetherError('SEND_FAILED', String(error));
        return { ok: false, code: coded.code, message: coded.message };
      }
    },
    [c, event],
  );
}

/** The signed-in user, read from the access token the client holds. */
export interface SignedInUser {
  /** `sub`: the user id (a guest's server-issued guest id for guests). */
  id: string;
  isGuest: boolean;
  name?: string;
  email?: string;
  role?: string;
  /** The scope grants and channel rights the token carries (the live session may hold fewer). */
  scopes: string[];
  channels: string[];
  /** `exp` in ms since the epoch. */
  expiresAt?: number;
  /** Every claim of the token, for an issuer's own claims. */
  claims: Record<string, unknown>;
}

const stringClaim = (claims: Record<string, unknown>, name: string): string | undefined => {
  const value = claims[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
};
const listClaim = (claims: Record<string, unknown>, name: string): string[] => {
  const value = claims[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
};

/** The user an access token names, or null when it is absent or not a JWT with a `sub`. */
export function userFromAccessToken(token: string | null): SignedInUser | null {
  if (token === null) return null;
  const claims = decodeJwtPayload(token);
  const id = claims === undefined ? undefined : stringClaim(claims, 'sub');
  if (claims === undefined || id === undefined) return null;
  const exp = claims['exp'];
  const user: SignedInUser = {
    id,
    isGuest: claims['guest'] === true,
    scopes: listClaim(claims, 'scopes'),
    channels: listClaim(claims, 'channels'),
    claims,
  };
  const name = stringClaim(claims, 'name');
  const email = stringClaim(claims, 'email');
  const role = stringClaim(claims, 'role');
  if (name !== undefined) user.name = name;
  if (email !== undefined) user.email = email;
  if (role !== undefined) user.role = role;
  if (typeof exp === 'number' && Number.isFinite(exp)) user.expiresAt = exp * 1000;
  return user;
}

/**
 * The signed-in user (id, guest or not, name, email, role, grants), or null while signed out. Read
 * from the access token the client's token manager holds, so it is known before the connection is
 * up and stays while offline. A new object comes with each new token (a renewal, once per token
 * lifetime: compare `id` to detect another user) and null on sign-out. The claims are not verified here: the server verifies every token;
 * use this for what to show, never for what to allow.
 *
 * @example
 *   const user = useUser();
 *   if (user === null) return <SignIn />;
 *   return <p>Signed in as {user.name ?? user.id}</p>;
 */
export function useUser<Events extends EventMap = EventMap>(client?: RealtimeClient<Events>): SignedInUser | null {
  const c = useResolvedClient('useUser', client);
  const subscribe = useCallback((changed: () => void) => safely(() => c.tokens.on('change', () => changed())), [c]);
  const read = () => c.tokens.accessToken;
  const token = useSyncExternalStore(subscribe, read, read);
  return useMemo(() => userFromAccessToken(token), [token]);
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
 * The hooks bound to the app's EventMap (events it receives) and SendMap (client events it sends),
 * so names and payloads are checked without type arguments at every call.
 *
 * @example
 *   export const { useEvent, useSend, useTetherClient } = createTetherHooks<ChatEvents, ChatSends>();
 *   useEvent('message_received', (data) => console.log(data.text)); // data: ChatEvents['message_received']
 *   const sendMessage = useSend('chat_message'); // (data: ChatSends['chat_message']) => Promise<SendAck>
 */
export function createTetherHooks<Events extends EventMap, Sends extends SendMap = SendMap>(): {
  useTetherClient: (client?: RealtimeClient<Events>) => RealtimeClient<Events>;
  useEvent: <K extends keyof Events & string>(
    event: K,
    handler: (data: Events[K], meta: EventMeta) => void,
    client?: RealtimeClient<Events>,
  ) => void;
  useSend: <K extends keyof Sends & string>(event: K, client?: RealtimeClient<Events>) => SendFunction<Sends[K]>;
} {
  return {
    useTetherClient: (client) => useResolvedClient('useTetherClient', client),
    useEvent: (event, handler, client) => useEvent(event, handler, client),
    useSend: (event, client) => useSend<Sends, typeof event, Events>(event, client),
  };
}
