import type { ErrorBody } from './errors.js';
import type { ErrorCode } from './codes.js';

/** Reserved event names. Application events may use any other name. */
export const SystemEvent = {
  SESSION_CREATED: 'session_created',
  TOKEN_EXPIRING: 'token_expiring',
  AUTH_ERROR: 'auth_error',
  REAUTH: 'reauth',
  SUBSCRIBE: 'subscribe',
  UNSUBSCRIBE: 'unsubscribe',
  SEND: 'send',
  NARROW: 'narrow',
  SERVER_SHUTDOWN: 'server_shutdown',
  ERROR: 'error',
} as const;
export type SystemEvent = (typeof SystemEvent)[keyof typeof SystemEvent];

export const RESERVED_EVENT_NAMES: ReadonlySet<string> = new Set<string>([
  ...Object.values(SystemEvent),
  // Socket.IO's own reserved names.
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

/** All times on the wire are milliseconds since the Unix epoch. */
export type EpochMs = number;

export interface SessionCreatedPayload {
  sessionId: string;
  userId: string;
  isGuest: boolean;
  /** When the access token presented expires. */
  expiresAt: EpochMs;
  timestamp: EpochMs;
  /** The scope grants and channel rights this connection holds now. */
  scopes: string[];
  channels: string[];
  /**
   * Present when the gateway keeps an event log. True only when every event after the position the
   * client presented, that this connection may receive, follows (replayed, then live). False: start
   * from `position` and refetch state (first connect, history trimmed, another epoch, gap too large).
   */
  recovered?: boolean;
  /** Where this connection's streams start: store it, and replace it with each event's position. */
  position?: string;
  /** Present when the connection narrowed its scopes: the scopes it receives (inside its grants). */
  narrow?: string[];
}

/** What a reconnecting client presents in the handshake (Socket.IO `auth`, `/ws` frame or query). */
export interface ResumeRequest {
  /** The position of the last event received. */
  position?: string;
  /** Channels to join before the replay, each checked against the token's channel rights. */
  channels?: string[];
  /**
   * Receive only these scopes (each inside a grant; others are ignored), live and in recovery.
   * Absent: every scope granted.
   */
  narrow?: string[];
}

/** Second argument of every Socket.IO application event; the same fields on a `/ws` event frame. */
export interface DeliveryMeta {
  id: string;
  /** The event's position in the log (absent when the gateway keeps no log). */
  position?: string;
}

/** Client → server send: `key` is the client's idempotency key (the same on every retry). */
export interface SendRequest {
  event: string;
  data?: unknown;
  key: string;
}

export type SendAck = { ok: true; result?: unknown } | { ok: false; code: ErrorCode; message: string };

export interface TokenExpiringPayload {
  expiresAt: EpochMs;
  secondsLeft: number;
}

export type AuthErrorPayload = ErrorBody;

export interface ReauthRequest {
  token: string;
}

export type ReauthAck = { ok: true; expiresAt: EpochMs } | { ok: false; code: ErrorCode; message: string };

export interface SubscribeRequest {
  channel: string;
}

export type SubscribeAck = { ok: true; channel: string } | { ok: false; code: ErrorCode; message: string };

/** Narrowing a live connection: only events to these scopes (inside its grants); `null` undoes it. */
export interface NarrowRequest {
  scopes: string[] | null;
}

/** `scopes`: what the connection receives now (inside its grants); absent when not narrowed. */
export type NarrowAck = { ok: true; scopes?: string[] } | { ok: false; code: ErrorCode; message: string };

export interface ServerShutdownPayload {
  /** Reconnect after this delay (jittered per connection by the server). */
  reconnectInMs: number;
  timestamp: EpochMs;
}

/** Fields Tether adds to every application event's data. */
export interface EventMeta {
  id: string;
}

/** Address of a publish. Every connection matching any target receives the event once. */
export interface PublishTarget {
  users?: string[];
  scopes?: string[];
  channels?: string[];
}

export interface PublishRequest {
  event: string;
  data?: Record<string, unknown>;
  to: PublishTarget;
  id?: string;
}

export interface PublishResult {
  id: string;
  /** Connections this node wrote the event to (cluster mode: this node only). */
  delivered: number;
}

/** One event's answer in a batch: published (`delivered`), or not (`error`, with the registry's body). */
export type PublishBatchItem = PublishResult | { id: string; error: ErrorBody };

/** The answer to a batch publish: one item per event, in the order given. */
export interface PublishBatchResult {
  results: PublishBatchItem[];
}

/** Socket.IO events the server emits (typed map shared with the SDK). */
export interface ServerToClientEvents {
  session_created: (payload: SessionCreatedPayload) => void;
  token_expiring: (payload: TokenExpiringPayload) => void;
  auth_error: (payload: AuthErrorPayload) => void;
  server_shutdown: (payload: ServerShutdownPayload) => void;
  error: (payload: ErrorBody) => void;
}

/** Socket.IO events a client emits, each with an acknowledgement. */
export interface ClientToServerEvents {
  reauth: (request: ReauthRequest, ack: (result: ReauthAck) => void) => void;
  subscribe: (request: SubscribeRequest, ack: (result: SubscribeAck) => void) => void;
  unsubscribe: (request: SubscribeRequest, ack: (result: SubscribeAck) => void) => void;
  send: (request: SendRequest, ack: (result: SendAck) => void) => void;
  narrow: (request: NarrowRequest, ack: (result: NarrowAck) => void) => void;
  /** Delivery receipts: no acknowledgement (fire and forget). */
  receipt: (request: ReceiptRequest) => void;
}

/**
 * Delivery receipts: the ids of events that reached the application's code on this connection,
 * batched (the SDK sends one per short window or per `MAX_RECEIPT_IDS` events). Client to server only,
 * never acknowledged; a client that never sends one still works (its deliveries stay unacknowledged).
 * Socket.IO event `receipt` with this payload; `/ws` frame `{"type":"receipt","ids":[…]}`.
 */
export interface ReceiptRequest {
  ids: string[];
}
export const RECEIPT_EVENT = 'receipt';
/** Most event ids in one receipt. */
export const MAX_RECEIPT_IDS = 256;

// ---------------------------------------------------------------------------------------------
// Plain WebSocket (`/ws`): JSON text frames, each with a `type`.

export const WS_PATH = '/ws';
export const SOCKET_IO_PATH = '/socket.io';
/** Subprotocol prefix carrying a token: `Sec-WebSocket-Protocol: bearer.<token>`. */
export const WS_BEARER_PROTOCOL_PREFIX = 'bearer.';
/** How long a `/ws` connection without a token may wait before sending `authenticate`. */
export const WS_AUTH_TIMEOUT_MS = 10_000;

export type ClientFrame =
  | { type: 'authenticate'; token: string; position?: string; channels?: string[]; narrow?: string[] }
  | { type: 'narrow'; scopes: string[] | null; rid?: string }
  | { type: 'reauth'; token: string }
  | { type: 'subscribe'; channel: string; rid?: string }
  | { type: 'unsubscribe'; channel: string; rid?: string }
  | { type: 'send'; event: string; data?: unknown; key: string; rid: string }
  | ({ type: 'receipt' } & ReceiptRequest);

export type ServerFrame =
  | ({ type: 'session_created' } & SessionCreatedPayload)
  | ({ type: 'auth_error' } & ErrorBody)
  | { type: 'reauth_ok'; expiresAt: EpochMs }
  | { type: 'reauth_error'; code: ErrorCode; message: string }
  | ({ type: 'token_expiring' } & TokenExpiringPayload)
  | { type: 'event'; event: string; data: Record<string, unknown>; id: string; position?: string }
  | ({ type: 'send_ack'; rid: string } & SendAck)
  | { type: 'subscribed'; channel: string; rid?: string }
  | { type: 'unsubscribed'; channel: string; rid?: string }
  | { type: 'narrowed'; scopes?: string[]; rid?: string }
  | { type: 'narrow_error'; code: ErrorCode; message: string; rid?: string }
  | { type: 'subscribe_error'; channel: string; code: ErrorCode; message: string; rid?: string }
  | ({ type: 'server_shutdown' } & ServerShutdownPayload)
  | ({ type: 'error' } & ErrorBody);

export type ServerFrameType = ServerFrame['type'];
export type ClientFrameType = ClientFrame['type'];
