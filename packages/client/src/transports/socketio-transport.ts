import {
  RESERVED_EVENT_NAMES,
  SOCKET_IO_PATH,
  TetherError,
  isErrorCode,
  type ClientToServerEvents,
  type ErrorBody,
  type NarrowAck,
  type ReauthAck,
  type ResumeRequest,
  type SendAck,
  type SendRequest,
  type ServerToClientEvents,
  type SubscribeAck,
} from '@tether/protocol';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type { Transport, TransportFactory, TransportOptions } from './types.js';

/** Socket.IO options a caller may add (path, reconnection and auth stay the SDK's). */
export type SocketIoExtraOptions = Partial<Omit<ManagerOptions & SocketOptions, 'auth' | 'reconnection' | 'path'>>;

function errorBody(data: unknown): ErrorBody | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const record = data as Record<string, unknown>;
  if (!isErrorCode(record['code'])) return undefined;
  return {
    code: record['code'],
    message: typeof record['message'] === 'string' ? record['message'] : record['code'],
    timestamp: typeof record['timestamp'] === 'number' ? record['timestamp'] : Date.now(),
    ...(typeof record['retryAfterMs'] === 'number' ? { retryAfterMs: record['retryAfterMs'] } : {}),
  };
}

/**
 * Socket.IO, with its own reconnection off: the client's state machine owns retries, and each
 * attempt builds a fresh socket whose `auth` callback hands over the token fetched for that attempt.
 */
class SocketIoTransport implements Transport {
  readonly kind = 'socket.io' as const;
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | undefined;
  private closed = false;

  constructor(
    private readonly options: TransportOptions,
    private readonly extra: SocketIoExtraOptions,
  ) {}

  open(token: string, resume?: ResumeRequest): void {
    const h = this.options.handlers;
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(this.options.url, {
      transports: ['websocket'],
      ...this.extra,
      path: SOCKET_IO_PATH,
      reconnection: false,
      forceNew: true,
      autoConnect: false,
      // A function, read at handshake time: never a token captured earlier.
      // `meta`: each event's `{id, position}` as a second argument (dedupe, recovery).
      auth: (cb) => cb({ token, meta: true, ...resume }),
    });
    this.socket = socket;
    socket.on('connect', () => h.open());
    socket.on('connect_error', (err) => {
      const body = errorBody((err as { data?: unknown }).data);
      if (body) h.authError(body);
      else this.report(`connect_error: ${err.message}`);
    });
    socket.on('disconnect', (reason) => this.report(`disconnect: ${reason}`));
    socket.on('session_created', (p) => h.session(p));
    socket.on('token_expiring', (p) => h.tokenExpiring(p));
    socket.on('auth_error', (p) => h.authError(p));
    socket.on('server_shutdown', (p) => h.shutdown(p));
    socket.onAny((event: string, ...args: unknown[]) => {
      if (RESERVED_EVENT_NAMES.has(event)) return;
      const first = args[0];
      const data = first !== null && typeof first === 'object' ? (first as Record<string, unknown>) : { value: first };
      // The second argument is the delivery meta `{id, position}` the handshake asked for; data is the app's own.
      const meta = args[1] !== null && typeof args[1] === 'object' ? (args[1] as Record<string, unknown>) : {};
      const position = typeof meta['position'] === 'string' ? meta['position'] : undefined;
      h.event(event, data, typeof meta['id'] === 'string' ? meta['id'] : undefined, position);
    });
    socket.connect();
  }

  async reauth(token: string): Promise<ReauthAck> {
    return this.ack(() => this.live().timeout(this.options.ackTimeoutMs).emitWithAck('reauth', { token }));
  }

  subscribe(channel: string): Promise<SubscribeAck> {
    return this.ack(() => this.live().timeout(this.options.ackTimeoutMs).emitWithAck('subscribe', { channel }));
  }

  unsubscribe(channel: string): Promise<SubscribeAck> {
    return this.ack(() => this.live().timeout(this.options.ackTimeoutMs).emitWithAck('unsubscribe', { channel }));
  }

  send(request: SendRequest): Promise<SendAck> {
    return this.ack(() => this.live().timeout(this.options.ackTimeoutMs).emitWithAck('send', request));
  }

  receipt(ids: string[]): boolean {
    if (!this.socket || this.closed || !this.socket.connected) return false;
    this.socket.emit('receipt', { ids });
    return true;
  }

  narrow(scopes: string[] | null): Promise<NarrowAck> {
    return this.ack(() => this.live().timeout(this.options.ackTimeoutMs).emitWithAck('narrow', { scopes }));
  }

  close(): void {
    this.closed = true;
    const socket = this.socket;
    if (!socket) return;
    socket.removeAllListeners();
    socket.offAny();
    socket.disconnect();
  }

  private live(): Socket<ServerToClientEvents, ClientToServerEvents> {
    if (!this.socket || this.closed || !this.socket.connected) throw new TetherError('INTERNAL', 'Not connected');
    return this.socket;
  }

  private async ack<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      if (error instanceof TetherError) throw error;
      throw new TetherError('INTERNAL', 'No acknowledgement in time', { cause: error });
    }
  }

  private report(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
    this.options.handlers.closed(reason);
  }
}

/** Factory for the Socket.IO transport, with extra Socket.IO options (e.g. `transports`, `extraHeaders`). */
export function socketIoTransport(extra: SocketIoExtraOptions = {}): TransportFactory {
  return (options) => new SocketIoTransport(options, extra);
}
