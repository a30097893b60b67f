/**
 * The one registry of error codes. Every code Tether can answer with lives here, with the
 * message a client sees, the HTTP status, the WebSocket close code and whether retrying can help.
 * `Record<ErrorCode, …>` makes the compiler refuse a code without an entry; `docs/PROTOCOL.md`
 * is kept in sync by a test. Retired codes are never reused.
 */
export const ErrorCode = {
  AUTH_REQUIRED: 'AUTH_REQUIRED',
  AUTH_INVALID: 'AUTH_INVALID',
  AUTH_EXPIRED: 'AUTH_EXPIRED',
  AUTH_REVOKED: 'AUTH_REVOKED',
  RATE_LIMITED: 'RATE_LIMITED',
  REFRESH_INVALID: 'REFRESH_INVALID',
  REFRESH_EXPIRED: 'REFRESH_EXPIRED',
  REFRESH_REUSED: 'REFRESH_REUSED',
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  LOGIN_DISABLED: 'LOGIN_DISABLED',
  API_KEY_INVALID: 'API_KEY_INVALID',
  FORBIDDEN: 'FORBIDDEN',
  ORIGIN_FORBIDDEN: 'ORIGIN_FORBIDDEN',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  FRAME_INVALID: 'FRAME_INVALID',
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  CONNECTION_LIMIT: 'CONNECTION_LIMIT',
  CHANNEL_FORBIDDEN: 'CHANNEL_FORBIDDEN',
  AUTH_TIMEOUT: 'AUTH_TIMEOUT',
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  SERVER_SHUTDOWN: 'SERVER_SHUTDOWN',
  PUBLISH_FAILED: 'PUBLISH_FAILED',
  SEND_FAILED: 'SEND_FAILED',
  REPLAY_OVERFLOW: 'REPLAY_OVERFLOW',
  STREAM_RESET: 'STREAM_RESET',
  NOT_READY: 'NOT_READY',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorSpec {
  /** Message sent to clients when no more specific one is given. */
  readonly message: string;
  /** HTTP status when the code answers an HTTP request. */
  readonly httpStatus: number;
  /** WebSocket close code when the code ends a connection. */
  readonly closeCode: number;
  /** Whether the same request may succeed later without the user doing anything. */
  readonly retryable: boolean;
  /** What a client should do, in a few words (documented, not sent). */
  readonly clientAction: string;
}

/** WebSocket close codes used by Tether (RFC 6455 range and the 4000–4999 private range). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
} as const;

export const AUTH_MESSAGES = {
  expired: 'Authentication token has expired. Please refresh your token and reconnect.',
  malformed: 'Invalid authentication token format',
  invalid: 'Invalid authentication token',
} as const;

/**
 * The message of an `AUTH_REVOKED` that closes live connections, by why they were revoked, so a
 * client can tell its user what happened. The code stays `AUTH_REVOKED`; a revocation without a
 * known reason keeps the registry's message.
 */
export const REVOCATION_MESSAGES = {
  api_disconnect: 'Signed out by an administrator',
  user_disabled: 'This account was disabled',
  user_inactive: 'This account was disabled',
  logout: 'This session was signed out (on this device or another one)',
  reuse: 'This session was closed: its refresh token was used twice',
} as const;

export const ERRORS: { readonly [K in ErrorCode]: ErrorSpec } = {
  AUTH_REQUIRED: {
    message: 'Authentication required',
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'sign in, or become a guest',
  },
  AUTH_INVALID: {
    message: AUTH_MESSAGES.invalid,
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'sign in again',
  },
  AUTH_EXPIRED: {
    message: AUTH_MESSAGES.expired,
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: true,
    clientAction: 'refresh, then reconnect or reauth',
  },
  AUTH_REVOKED: {
    message: 'Authentication revoked',
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'terminal: signed out',
  },
  RATE_LIMITED: {
    message: 'Too many requests',
    httpStatus: 429,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: true,
    clientAction: 'back off, then retry',
  },
  REFRESH_INVALID: {
    message: 'Invalid refresh token',
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'sign in again',
  },
  REFRESH_EXPIRED: {
    message: 'Refresh token has expired. Please sign in again.',
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'sign in again',
  },
  REFRESH_REUSED: {
    message: 'Refresh token was already used; the session has been revoked',
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'terminal: signed out',
  },
  INVALID_CREDENTIALS: {
    message: 'Invalid email or password',
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'ask the user for correct credentials',
  },
  LOGIN_DISABLED: {
    message: 'The built-in login is disabled on this gateway',
    httpStatus: 404,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: "sign in through the application's own backend",
  },
  API_KEY_INVALID: {
    message: 'Missing or invalid API key',
    httpStatus: 401,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'configure a valid API key (server-to-server only)',
  },
  FORBIDDEN: {
    message: 'Not allowed',
    httpStatus: 403,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'do not retry; the grant is missing',
  },
  ORIGIN_FORBIDDEN: {
    message: 'Origin not allowed',
    httpStatus: 403,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: "add the origin to ALLOWED_ORIGINS (or the gateway's host name to PUBLIC_HOSTS)",
  },
  VALIDATION_FAILED: {
    message: 'Request body is invalid',
    httpStatus: 400,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'fix the request',
  },
  NOT_FOUND: {
    message: 'Not found',
    httpStatus: 404,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'check the id',
  },
  CONFLICT: {
    message: 'Already exists',
    httpStatus: 409,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'use the existing resource',
  },
  FRAME_INVALID: {
    message: 'Malformed frame',
    httpStatus: 400,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'send well-formed JSON frames with a known type',
  },
  FRAME_TOO_LARGE: {
    message: 'Frame too large',
    httpStatus: 413,
    closeCode: CloseCode.MESSAGE_TOO_BIG,
    retryable: false,
    clientAction: 'send smaller frames',
  },
  CONNECTION_LIMIT: {
    message: 'Too many connections for this user',
    httpStatus: 429,
    closeCode: CloseCode.TRY_AGAIN_LATER,
    retryable: true,
    clientAction: 'close another device, or retry later',
  },
  CHANNEL_FORBIDDEN: {
    message: 'The token does not allow this channel',
    httpStatus: 403,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'obtain a token whose channels claim allows it',
  },
  AUTH_TIMEOUT: {
    message: 'No authentication received in time',
    httpStatus: 408,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: true,
    clientAction: 'reconnect and authenticate at once',
  },
  REQUEST_TIMEOUT: {
    message: 'The request was not received in time',
    httpStatus: 408,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: true,
    clientAction: 'send the whole request without pausing; retry',
  },
  HEADERS_TOO_LARGE: {
    message: 'Request headers too large',
    httpStatus: 431,
    closeCode: CloseCode.POLICY_VIOLATION,
    retryable: false,
    clientAction: 'send fewer or shorter headers (cookies, tokens)',
  },
  SERVER_SHUTDOWN: {
    message: 'Server is restarting; reconnect shortly',
    httpStatus: 503,
    closeCode: CloseCode.SERVICE_RESTART,
    retryable: true,
    clientAction: 'reconnect after the given delay',
  },
  PUBLISH_FAILED: {
    message: 'Publish could not be delivered to the cluster',
    httpStatus: 503,
    closeCode: CloseCode.INTERNAL_ERROR,
    retryable: true,
    clientAction: 'retry the publish later',
  },
  REPLAY_OVERFLOW: {
    message: 'Too many live events arrived while the connection was recovering; reconnect to resume',
    httpStatus: 503,
    closeCode: CloseCode.TRY_AGAIN_LATER,
    retryable: true,
    clientAction: 'reconnect at once, presenting the last position received',
  },
  NOT_READY: {
    message: 'This node cannot serve right now (its store, Redis or event log is unreachable)',
    httpStatus: 503,
    closeCode: CloseCode.TRY_AGAIN_LATER,
    retryable: true,
    clientAction: 'send traffic to another node; retry this one later',
  },
  STREAM_RESET: {
    message: 'The event log lost part of a stream this connection reads (a failover or restart); reconnect to resume',
    httpStatus: 503,
    closeCode: CloseCode.TRY_AGAIN_LATER,
    retryable: true,
    clientAction: 'reconnect at once, presenting the last position received; expect recovered: false',
  },
  SEND_FAILED: {
    message: 'The application could not process the send',
    httpStatus: 502,
    closeCode: CloseCode.INTERNAL_ERROR,
    retryable: true,
    clientAction: 'retry with the same idempotency key',
  },
  INTERNAL: {
    message: 'Internal error',
    httpStatus: 500,
    closeCode: CloseCode.INTERNAL_ERROR,
    retryable: true,
    clientAction: 'retry later',
  },
};

/** Codes a live connection can be closed with after an `auth_error`. */
export type AuthErrorCode = Extract<
  ErrorCode,
  | 'AUTH_REQUIRED'
  | 'AUTH_INVALID'
  | 'AUTH_EXPIRED'
  | 'AUTH_REVOKED'
  | 'RATE_LIMITED'
  | 'AUTH_TIMEOUT'
  | 'CONNECTION_LIMIT'
>;

/** Codes the refresh endpoints answer with. */
export type RefreshErrorCode = Extract<ErrorCode, 'REFRESH_INVALID' | 'REFRESH_EXPIRED' | 'REFRESH_REUSED'>;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, value);
}
