import type { ErrorCode, TetherError } from '@tether/protocol';
import type { BackoffOptions } from './backoff.js';
import type { Platform } from './platform.js';
import type { TokenStorage } from './storage.js';

export interface TokenManagerOptions {
  /** The gateway's HTTP origin, e.g. `https://rt.example.com`. */
  baseUrl: string;
  /** Default: memory (lost on restart). */
  storage?: TokenStorage;
  platform?: Platform;
  /**
   * `body` (default; Node, React Native): the refresh token is stored and sent as `{refresh_token}`.
   * `cookie` (browsers): the httpOnly cookie carries it; JavaScript never sees it.
   */
  mode?: 'body' | 'cookie';
  /** Default `/auth/refresh`; `/auth/refresh-mobile` is the same endpoint under its mobile name. */
  refreshPath?: string;
  /** Prefix of the storage keys. Default `tether`. */
  storageKey?: string;
  /** Refresh this long before `exp` (capped at a quarter of the token's lifetime). Default 60 s. */
  refreshAheadMs?: number;
  /** Up to this much earlier still, at random, so a fleet does not refresh at once (capped at a tenth of the lifetime). Default 10 s. */
  refreshJitterMs?: number;
  /** Refresh proactively on a timer. Default true. */
  proactive?: boolean;
  /** Backoff between refresh attempts that failed on the network or a 5xx. */
  retry?: Partial<BackoffOptions>;
  /**
   * Tokens from the app's own backend: called instead of the refresh endpoint whenever a fresh
   * token is needed. Resolve null when the user is signed out; throw on a network failure.
   */
  getToken?: () => Promise<string | null>;
  /** Attempts per refresh before giving up with the network error (never signs out). Default 4. */
  maxRefreshAttempts?: number;
}

/** The user as `POST /auth/login` returns it. */
export interface LoginUser {
  id: string;
  email: string;
  name: string;
  role: string;
  scopes: string[];
}

export interface TokenChange {
  accessToken: string | null;
  /** `exp` in ms, when the token has one. */
  expiresAt: number | undefined;
}

export interface SignedOut {
  /** The refusal (`REFRESH_REUSED`, `AUTH_REVOKED`, …), or null for a `logout()` the app asked for. */
  code: ErrorCode | null;
  message: string;
}

export interface TokenEvents {
  /** A new access token is in place (refresh, login), or it was cleared (null). */
  change: TokenChange;
  /** Terminal: the session is over; the app should show its sign-in screen. */
  signed_out: SignedOut;
  /** A refresh attempt failed transiently and will be retried. */
  refresh_error: { error: TetherError; attempt: number; retryInMs: number | null };
}
