import { useEffect, useRef, useState } from 'react';
import type { ConnectionState } from '@tether/client';
import { createTetherHooks, useConnectionState, useSession, useTokenExpiry } from '@tether/react';
import type { HelpdeskSends } from '../server/domain/dto.js';
import type { HelpdeskEventMap, HelpdeskRealtime } from './session.js';

/** `@tether/react`'s event and send hooks, typed with the helpdesk's events and client events. */
export const { useEvent: useHelpdeskEvent, useSend: useHelpdeskSend } = createTetherHooks<
  HelpdeskEventMap,
  { [K in keyof HelpdeskSends]: HelpdeskSends[K] }
>();

/**
 * Runs `catchUp` on every new realtime session (each reconnect: what was published while away is
 * fetched again), and on mount when `onMount`; never when a session drops. Failures are ignored:
 * offline again, the next session catches up. The latest `catchUp` is called.
 */
export function useCatchUp(realtime: HelpdeskRealtime, catchUp: () => Promise<void>, onMount: boolean): void {
  const live = useSession(realtime);
  const liveId = live?.sessionId ?? null;
  const latest = useRef(catchUp);
  latest.current = catchUp;
  const started = useRef(false);
  useEffect(() => {
    if (liveId === null && (started.current || !onMount)) return;
    started.current = true;
    latest.current().catch(() => undefined);
  }, [liveId, onMount]);
}

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
  // The state and the token's `exp` come from @tether/react; the counters are the helpdesk's own.
  const state = useConnectionState(realtime);
  const { expiresAt } = useTokenExpiry(realtime);
  const [counts, setCounts] = useState(() => ({
    refreshes: 0,
    reauths: 0,
    lastRefreshAt: null as number | null,
    sessions: 0,
    online: navigator.onLine,
  }));
  // The first token (sign-in, guest start) is not a refresh; every later one is.
  const hadToken = useRef(realtime.tokens.accessToken !== null);
  useEffect(() => {
    const offs = [
      realtime.onSession(() => setCounts((v) => ({ ...v, sessions: v.sessions + 1 }))),
      realtime.onAuth((n) => {
        if (n.kind === 'reauth_ok') setCounts((v) => ({ ...v, reauths: v.reauths + 1 }));
      }),
      realtime.tokens.on('change', (c) => {
        if (c.accessToken === null) {
          hadToken.current = false;
          return;
        }
        const refreshed = hadToken.current;
        hadToken.current = true;
        if (!refreshed) return;
        setCounts((v) => ({ ...v, refreshes: v.refreshes + 1, lastRefreshAt: Date.now() }));
      }),
    ];
    const online = () => setCounts((v) => ({ ...v, online: navigator.onLine }));
    window.addEventListener('online', online);
    window.addEventListener('offline', online);
    return () => {
      for (const off of offs) off();
      window.removeEventListener('online', online);
      window.removeEventListener('offline', online);
    };
  }, [realtime]);
  return { ...counts, state, expiresAt };
}
