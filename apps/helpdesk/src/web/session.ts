import { ApiClient, RealtimeClient, TokenManager, webStorage } from '@tether/client';
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

/** A person-readable reason for a sign-out. */
export function signedOutReason(event: { code: string | null }): string {
  switch (event.code) {
    case null:
      return 'You signed out.';
    case 'AUTH_REVOKED':
      return 'Your session was ended by an administrator or from another device. Please sign in again.';
    case 'REFRESH_EXPIRED':
      return 'Your session has expired. Please sign in again.';
    case 'REFRESH_REUSED':
      return 'For your safety this session was closed (its refresh token was used twice). Please sign in again.';
    default:
      return `You were signed out (${event.code}). Please sign in again.`;
  }
}

/** A client-chosen message id: retries of the same send are idempotent on the server. */
export function newId(): string {
  return crypto.randomUUID();
}
