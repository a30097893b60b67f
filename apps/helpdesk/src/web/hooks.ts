import { useEffect, useRef, useState } from 'react';
import type { ConnectionState } from '@tether/client';
import type { HelpdeskRealtime } from './session.js';

/** Re-renders every `ms` (countdowns). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

export interface ConnectionView {
  state: ConnectionState;
  /** The access token's `exp` (ms), as the token manager holds it. */
  expiresAt: number | undefined;
  /** Access tokens received since the page opened (refreshes), and reauths accepted on the live socket. */
  refreshes: number;
  reauths: number;
  lastRefreshAt: number | null;
  /** Sessions opened (first connect + reconnects). */
  sessions: number;
  online: boolean;
}

/** The SDK's connection state and token lifecycle, for the indicator and the offline banner. */
export function useConnection(realtime: HelpdeskRealtime): ConnectionView {
  const [view, setView] = useState<ConnectionView>(() => ({
    state: realtime.state,
    expiresAt: realtime.tokens.expiresAt,
    refreshes: 0,
    reauths: 0,
    lastRefreshAt: null,
    sessions: 0,
    online: navigator.onLine,
  }));
  // The first token (sign-in, guest start) is not a refresh; every later one is.
  const hadToken = useRef(realtime.tokens.accessToken !== null);
  useEffect(() => {
    const offs = [
      realtime.onState((c) => setView((v) => ({ ...v, state: c.current }))),
      realtime.onSession(() =>
        setView((v) => ({ ...v, sessions: v.sessions + 1, expiresAt: realtime.tokens.expiresAt })),
      ),
      realtime.onAuth((n) => {
        if (n.kind === 'reauth_ok') setView((v) => ({ ...v, reauths: v.reauths + 1, expiresAt: n.expiresAt }));
      }),
      realtime.tokens.on('change', (c) => {
        if (c.accessToken === null) {
          hadToken.current = false;
          return;
        }
        const refreshed = hadToken.current;
        hadToken.current = true;
        setView((v) => ({
          ...v,
          expiresAt: c.expiresAt,
          refreshes: v.refreshes + (refreshed ? 1 : 0),
          lastRefreshAt: refreshed ? Date.now() : v.lastRefreshAt,
        }));
      }),
    ];
    const online = () => setView((v) => ({ ...v, online: navigator.onLine }));
    window.addEventListener('online', online);
    window.addEventListener('offline', online);
    return () => {
      for (const off of offs) off();
      window.removeEventListener('online', online);
      window.removeEventListener('offline', online);
    };
  }, [realtime]);
  return view;
}
