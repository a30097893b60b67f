import type {
  ErrorBody,
  NarrowAck,
  ReauthAck,
  ResumeRequest,
  SendAck,
  SendRequest,
  ServerShutdownPayload,
  SessionCreatedPayload,
  SubscribeAck,
  TokenExpiringPayload,
} from '@tether/protocol';
import type { Platform } from '../platform.js';

export type TransportKind = 'socket.io' | 'ws';

/**
 * What a transport reports. Each connection attempt gets its own transport and its own handler
 * set; the client drops reports from transports of earlier attempts (generation ids).
 */
export interface TransportHandlers {
  /** The socket is open; the server has not yet confirmed the session. */
  open(): void;
  session(payload: SessionCreatedPayload): void;
  tokenExpiring(payload: TokenExpiringPayload): void;
  /** A refused handshake, or `auth_error` before the server closes a live connection. */
  authError(body: ErrorBody): void;
  /** An application event. `data` carries `id`, as on Socket.IO, on both transports; `position` its place in the log. */
  event(name: string, data: Record<string, unknown>, id: string | undefined, position?: string): void;
  shutdown(payload: ServerShutdownPayload): void;
  /** The connection is gone (any cause other than close() by the client). Reported once. */
  closed(reason: string): void;
}

export interface TransportOptions {
  /** The gateway's base URL (`http(s)://host:port`); the transport adds its path. */
  url: string;
  platform: Platform;
  handlers: TransportHandlers;
  /** How long to wait for the answer to `reauth`/`subscribe`. */
  ackTimeoutMs: number;
}

/** One connection attempt over one wire protocol. */
export interface Transport {
  readonly kind: TransportKind;
  /** Opens the connection presenting `token`, and the position and channels to resume, if any. */
  open(token: string, resume?: ResumeRequest): void;
  /** In-place reauthentication. Rejects (TetherError) when no answer comes in time or the socket closes. */
  reauth(token: string): Promise<ReauthAck>;
  subscribe(channel: string): Promise<SubscribeAck>;
  unsubscribe(channel: string): Promise<SubscribeAck>;
  /** A client event with its idempotency key. Rejects (TetherError) when no answer comes in time or the socket closes. */
  send(request: SendRequest): Promise<SendAck>;
  /**
   * Delivery receipts (never acknowledged): false when the connection cannot take them now. Optional
   * for custom transports; without it no receipts are sent.
   */
  receipt?(ids: string[]): boolean;
  /** Narrows the scopes received (null: every scope granted). Rejects like `subscribe`. */
  narrow(scopes: string[] | null): Promise<NarrowAck>;
  /** Closes without reporting `closed`; idempotent. */
  close(): void;
}

export type TransportFactory = (options: TransportOptions) => Transport;
