import { ApiClient, RealtimeClient, TokenManager, webStorage } from '@tether/client';
import { REVOCATION_MESSAGES } from '@tether/protocol';
import type { HelpdeskEvents } from '../server/domain/dto.js';

/** The helpdesk's events as the SDK's EventMap. */
export type HelpdeskEventMap = { [K in keyof HelpdeskEvents]: HelpdeskEvents[K] & Record<string, unknown> };

/** The realtime client typed with the helpdesk's events. */
export type HelpdeskRealtime = RealtimeClient<HelpdeskEventMap>;

/** One signed-in page: tokens, the API client and the realtime connection, all from the SDK. */
export interface Session {
  tokens: TokenManager;
  api: ApiClient;
  realtime: HelpdeskRealtime;
}

const origin = () => window.location.origin;

/**
 * Staff: cookie mode, so the refresh token lives in an httpOnly cookie JavaScript never sees; only the
 * short-lived access token is kept in localStorage (a reload stays signed in).
 */
export function staffSession(): Session {
  const tokens = new TokenManager({
    baseUrl: origin(),
    mode: 'cookie',
    storage: webStorage(window.localStorage),
    storageKey: 'helpdesk-staff',
  });
  return withClients(tokens);
}

/** Customers: a guest session kept per tab (a guest token cannot be refreshed; a new guest is a new customer). */
export function guestSession(): Session {
  const tokens = new TokenManager({
    baseUrl: origin(),
    storage: webStorage(window.sessionStorage),
    storageKey: 'helpdesk-guest',
  });
  return withClients(tokens);
}

function withClients(tokens: TokenManager): Session {
  const api = new ApiClient({ baseUrl: origin(), tokens });
  const realtime: HelpdeskRealtime = new RealtimeClient({ url: origin(), tokens });
  return { tokens, api, realtime };
}

/** What the sign-in page says after a sign-out: `forced` when the user did not ask for it (a warning). */
export interface SignOutNotice {
  text: string;
  forced: boolean;
}

/** A person-readable reason for a sign-out. */
export function signedOutReason(event: { code: string | null; message?: string }): SignOutNotice {
  const forced = (text: string): SignOutNotice => ({ text, forced: true });
  switch (event.code) {
    case null:
      return { text: 'You signed out.', forced: false };
    case 'AUTH_REVOKED':
      // The gateway says why (an administrator, a disabled account, a sign-out elsewhere).
      return forced(
        (Object.values(REVOCATION_MESSAGES) as string[]).includes(event.message ?? '')
          ? `${event.message}. Please sign in again.`
          : 'Your session was ended. Please sign in again.',
      );
    case 'REFRESH_EXPIRED':
      return forced('Your session has expired. Please sign in again.');
    case 'REFRESH_REUSED':
      return forced('For your safety this session was closed (its sign-in was used twice). Please sign in again.');
    default:
      return forced('You were signed out. Please sign in again.');
  }
}

/** A client-chosen message id: retries of the same send are idempotent on the server. */
export function newId(): string {
  return crypto.randomUUID();
}
