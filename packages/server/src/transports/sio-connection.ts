import type {
  ErrorBody,
  ErrorCode,
  ReauthAck,
  ResumeRequest,
  SendAck,
  ServerToClientEvents,
  SubscribeAck,
} from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import type { Server, Socket } from 'socket.io';
import type { Principal } from '../auth/types.js';
import type { CloseReason, ConnectionSink, OutboundEvent, Session, SystemMessage, TokenSource } from '../hub/types.js';
import { asTetherError, closeReasonForCode, type HandshakeGate } from './handshake.js';
import { InboundGuard } from './inbound-guard.js';
import { encodeSioEvent } from './sio-encoding.js';
import type { TransportDeps } from './types.js';
import { readChannel, readToken } from './ws-frames.js';

/**
 * Client → server events as they really arrive: any payload, maybe without an acknowledgement
 * callback. (The typed map in `@tether/protocol` is what well-behaved clients send.)
 */
export interface SioListenEvents {
  reauth: (payload: unknown, ack?: unknown) => void;
  subscribe: (payload: unknown, ack?: unknown) => void;
  unsubscribe: (payload: unknown, ack?: unknown) => void;
  send: (payload: unknown, ack?: unknown) => void;
  narrow: (payload: unknown, ack?: unknown) => void;
}

export interface SioSocketData {
  connection?: SioConnection;
}

export type SioServer = Server<SioListenEvents, ServerToClientEvents, Record<string, never>, SioSocketData>;
export type SioSocket = Socket<SioListenEvents, ServerToClientEvents, Record<string, never>, SioSocketData>;

/** What every Socket.IO connection of one server shares. */
export interface SioShared {
  deps: TransportDeps;
  gate: HandshakeGate;
  io: SioServer;
}

/**
 * One Socket.IO connection: the hub's sink for it, and its event handlers.
 *
 * It is registered with the hub inside the handshake middleware (so CONNECTION_LIMIT can still be a
 * `connect_error`), before socket.io has sent its CONNECT packet; whatever the hub sends until
 * then (`session_created`) is queued and written right after CONNECT.
 */
export class SioConnection implements ConnectionSink {
  readonly transport = 'socket.io' as const;
  private session: Session | undefined;
  private connected = false;
  private queued: Array<() => void> = [];
  private ended = false;
  /** Set when this side decides to close (rate limit); otherwise derived from socket.io's reason. */
  private closeReason: CloseReason | undefined;
  private readonly guard: InboundGuard;

  constructor(
    private readonly shared: SioShared,
    private readonly socket: SioSocket,
    private readonly ip: string,
  ) {
    const { config, clock } = shared.deps;
    this.guard = new InboundGuard(config.inboundBurst, config.inboundRatePerSecond, clock);
  }

  /** Registers with the hub (throws TetherError CONNECTION_LIMIT). */
  register(principal: Principal, tokenSource: TokenSource, resume?: ResumeRequest): void {
    const userAgent = this.socket.request.headers['user-agent'];
    this.session = this.shared.deps.hub.register(principal, this, { ip: this.ip, userAgent, tokenSource }, resume);
    // If the client leaves before socket.io completes the connect, no `disconnect` follows.
    this.socket.conn.once('close', () => this.end('client'));
  }

  /** socket.io finished the connect: flush what the hub sent meanwhile and start listening. */
  onConnected(): void {
    const { socket } = this;
    const session = this.session;
    if (session === undefined) return;
    this.connected = true;
    for (const send of this.queued) send();
    this.queued = [];
    socket.use((_packet, next) => this.admitInbound(next));
    socket.on('reauth', (payload, ack) => void this.reauth(session, payload, ack));
    socket.on('subscribe', (payload, ack) => void this.channel('subscribe', session, payload, ack));
    socket.on('unsubscribe', (payload, ack) => void this.channel('unsubscribe', session, payload, ack));
    socket.on('send', (payload, ack) => void this.send(session, payload, ack));
    socket.on('narrow', (payload, ack) => this.narrow(session, payload, ack));
    socket.on('disconnect', (reason) => this.end(closeReasonOf(reason)));
    this.shared.gate.connected(session);
  }

  // --- ConnectionSink -------------------------------------------------------------------------

  sendEvent(event: OutboundEvent, position?: string): void {
    if (!this.connected) {
      this.queued.push(() => this.sendEvent(event, position));
      return;
    }
    const encoded = encodeSioEvent(this.shared.io.encoder, event, position);
    // The supported path socket.io's own adapter uses for broadcasts: pre-encoded packets.
    this.socket.client._packet(encoded.packets as never, encoded.options);
  }

  sendSystem(message: SystemMessage): void {
    if (!this.connected) {
      this.queued.push(() => this.sendSystem(message));
      return;
    }
    const { socket } = this;
    switch (message.kind) {
      case 'session_created':
        socket.emit('session_created', message.payload);
        return;
      case 'token_expiring':
        socket.emit('token_expiring', message.payload);
        return;
      case 'auth_error':
        socket.emit('auth_error', message.payload);
        return;
      case 'server_shutdown':
        socket.emit('server_shutdown', message.payload);
        return;
      case 'error':
        socket.emit('error', message.payload);
        return;
    }
  }

  close(code: ErrorCode | null): void {
    this.closeReason = closeReasonForCode(code, this.closeReason ?? 'client');
    // Queued messages (an auth_error before CONNECT) cannot be delivered: socket.io only accepts
    // them after CONNECT. Closing the engine connection is the answer then.
    if (this.connected) this.socket.disconnect(true);
    else this.socket.conn.close();
  }

  // --- inbound --------------------------------------------------------------------------------

  private admitInbound(next: (err?: Error) => void): void {
    switch (this.guard.check()) {
      case 'accept':
        next();
        return;
      case 'warn':
        this.socket.emit(
          'error',
          this.body(
            new TetherError(
              'RATE_LIMITED',
              'Too many messages; further ones are dropped, then the connection is closed',
            ),
          ),
        );
        return;
      case 'drop':
        return;
      case 'cut':
        this.closeReason = 'rate_limited';
        this.socket.emit('auth_error', this.body(new TetherError('RATE_LIMITED')));
        this.end('rate_limited');
        this.socket.disconnect(true);
        return;
    }
  }

  private async reauth(session: Session, payload: unknown, ack: unknown): Promise<void> {
    let answer: ReauthAck;
    try {
      answer = await this.shared.deps.hub.reauth(session, readToken(payload));
    } catch (err) {
      const e = asValidation(err);
      answer = { ok: false, code: e.code, message: e.message };
    }
    if (typeof ack === 'function') ack(answer);
  }

  private async send(session: Session, payload: unknown, ack: unknown): Promise<void> {
    const sends = this.shared.deps.sends;
    const answer: SendAck =
      sends === undefined
        ? { ok: false, code: 'NOT_FOUND', message: 'This gateway accepts no client events' }
        : await sends.handle(session, payload);
    if (typeof ack === 'function') ack(answer);
  }

  private narrow(session: Session, payload: unknown, ack: unknown): void {
    const scopes =
      typeof payload === 'object' && payload !== null ? (payload as { scopes?: unknown }).scopes : undefined;
    const answer = this.shared.deps.hub.narrow(session, scopes);
    if (typeof ack === 'function') ack(answer);
  }

  private async channel(
    kind: 'subscribe' | 'unsubscribe',
    session: Session,
    payload: unknown,
    ack: unknown,
  ): Promise<void> {
    const { hub } = this.shared.deps;
    let answer: SubscribeAck;
    try {
      const channel = readChannel(payload);
      answer = kind === 'subscribe' ? hub.subscribe(session, channel) : hub.unsubscribe(session, channel);
      // Cluster mode: acknowledged once events published from now on reach this node.
      if (answer.ok && kind === 'subscribe') await hub.channelReady?.(channel);
    } catch (err) {
      const e = asValidation(err);
      answer = { ok: false, code: e.code, message: e.message };
    }
    if (typeof ack === 'function') ack(answer);
  }

  private end(reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    const session = this.session;
    if (session === undefined) return;
    const why = this.closeReason ?? reason;
    if (!session.closed) this.shared.deps.hub.unregister(session, why);
    this.shared.gate.disconnected(session, why);
  }

  private body(error: TetherError): ErrorBody {
    return error.toBody(this.shared.deps.clock.now());
  }
}

/** Payload errors on Socket.IO events are VALIDATION_FAILED (FRAME_INVALID is the `/ws` word for it). */
function asValidation(err: unknown): TetherError {
  const e = asTetherError(err);
  return e.code === 'FRAME_INVALID' ? new TetherError('VALIDATION_FAILED', e.message) : e;
}

function closeReasonOf(reason: string): CloseReason {
  switch (reason) {
    case 'ping timeout':
      return 'heartbeat';
    case 'transport error':
    case 'parse error':
      return 'transport_error';
    case 'server shutting down':
      return 'shutdown';
    default:
      return 'client';
  }
}
