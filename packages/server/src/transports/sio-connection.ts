import type {
  ErrorBody,
  ErrorCode,
  NarrowAck,
  ReauthAck,
  ResumeRequest,
  SendAck,
  ServerToClientEvents,
  SubscribeAck,
} from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import type { Duplex } from 'node:stream';
import type { Server, Socket } from 'socket.io';
import type { Principal } from '../auth/types.js';
import {
  fixedPosition,
  type CloseReason,
  type ConnectionInfo,
  type ConnectionSink,
  type OutboundEvent,
  type PositionSource,
  type Session,
  type SystemMessage,
  type TokenSource,
} from '../hub/types.js';
import { compactListeners, listenShaped } from '../util/listeners.js';
import { asTetherError, closeReasonForCode, forgetPeerAddress, type HandshakeGate } from './handshake.js';
import { msSinceStamp, pingStamp } from './heartbeat.js';
import type { EngineAdmission } from './engine-admission.js';
import { tcpSocketOf, type EngineConn } from './engine-sockets.js';
import { InboundGuard } from './inbound-guard.js';
import { encodeSioEvent, sioEventFrame } from './sio-encoding.js';
import type { TransportDeps } from './types.js';
import type { WriteCoalescer } from './write-coalescer.js';
import { channelName, payloadChannel, payloadField, payloadToken, tokenOf } from './ws-frames.js';

/**
 * Client → server events as they really arrive: any number of arguments, then socket.io's
 * acknowledgement callback when the client asked for one. (The typed map in `@tether/protocol` is
 * what well-behaved clients send: one payload and an ack.)
 */
export interface SioListenEvents {
  reauth: (...args: unknown[]) => void;
  subscribe: (...args: unknown[]) => void;
  unsubscribe: (...args: unknown[]) => void;
  send: (...args: unknown[]) => void;
  narrow: (...args: unknown[]) => void;
  receipt: (...args: unknown[]) => void;
}

type Answer = ReauthAck | SubscribeAck | SendAck | NarrowAck;

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
  admission: EngineAdmission;
  coalescer: WriteCoalescer;
}

/** The parts of an engine.io connection the direct event write reads (engine.io keeps them private). */
interface EngineState extends EngineConn {
  readonly readyState: string;
  readonly writeBuffer: readonly unknown[];
  readonly transport: EngineConn['transport'] & { readonly socket?: { readonly readyState: number } };
}

/** `WebSocket.OPEN` of the `ws` socket under engine.io's websocket transport. */
const WS_OPEN = 1;

/**
 * One Socket.IO connection: the hub's sink for it, and its event handlers.
 *
 * It is registered with the hub inside the handshake middleware (so CONNECTION_LIMIT can still be a
 * `connect_error`), before socket.io has sent its CONNECT packet; whatever the hub sends until
 * then (`session_created`) is queued and written right after CONNECT.
 */
export class SioConnection implements ConnectionSink, ConnectionInfo {
  readonly transport = 'socket.io' as const;
  private session: Session | undefined;
  private connected = false;
  /** What the hub sent before socket.io completed the connect (none: no array). */
  private queued: Array<() => void> | undefined;
  private ended = false;
  /** Set when this side decides to close (rate limit); otherwise derived from socket.io's reason. */
  private closeReason: CloseReason | undefined;
  /** Made at the first inbound event. */
  private guard: InboundGuard | undefined;
  /** The client asked (`auth.meta: true`) for each event's `{id, position}` as a second argument. */
  private readonly wantsMeta: boolean;
  /**
   * When engine.io's last ping was written (`pingStamp`: a small integer, where a
   * `performance.now()` was a boxed number per connection), until its pong; 0 when none is out.
   */
  private pingAt = 0;
  /** The connection is its session's `ConnectionInfo` (no object of its own); set at `register`. */
  userAgent: string | undefined;
  tokenSource: TokenSource = 'auth';

  constructor(
    private readonly shared: SioShared,
    private readonly socket: SioSocket,
    /** The client's address, as the handshake found it (`TRUST_PROXY`). */
    readonly ip: string,
  ) {
    const auth: unknown = socket.handshake.auth;
    this.wantsMeta = typeof auth === 'object' && auth !== null && (auth as { meta?: unknown }).meta === true;
  }

  /** As `ConnectionInfo` in a log line or a JSON body: its three fields, not the connection. */
  toJSON(): ConnectionInfo {
    return { ip: this.ip, userAgent: this.userAgent, tokenSource: this.tokenSource };
  }

  /** Registers with the hub (throws TetherError CONNECTION_LIMIT). */
  register(principal: Principal, tokenSource: TokenSource, resume?: ResumeRequest): void {
    this.userAgent = this.socket.request.headers['user-agent'];
    this.tokenSource = tokenSource;
    this.session = this.shared.deps.hub.register(principal, this, this, resume);
    connectionOf.set(this.socket.conn, this);
  }

  /**
   * Called a turn after the handshake middleware let the connect go on: socket.io completes it on
   * the next tick, or, when the client left meanwhile, drops the socket without a `disconnect`, and
   * the session ends here. (A `close` listener on the engine.io socket for this one case made its
   * listener array grow to 19 slots on every connection, ~0.3 KB with the once-wrapper.)
   */
  settle(): void {
    if (!this.connected) this.end('client');
  }

  /** socket.io finished the connect: flush what the hub sent meanwhile and start listening. */
  onConnected(): void {
    const { socket } = this;
    const session = this.session;
    if (session === undefined) return;
    this.connected = true;
    const queued = this.queued;
    this.queued = undefined;
    if (queued !== undefined) for (const send of queued) send();
    // One middleware for every inbound event instead of a listener each: six closures and socket.io's
    // listener table per connection (~0.6 KB) were most of what an idle connection held beyond a
    // plain Socket.IO socket. Bound, not a closure: 48 bytes against 112 with its context.
    useExactly(socket, this.onPacket.bind(this));
    // Listeners shared by every connection (`this` is the emitter): no closure per connection.
    // Their tables made plain objects of fixed shape: ~0.3 KB less than the emitters' own (`listenShaped`).
    listenShaped(socket.conn, CONN_LISTENERS);
    listenShaped(socket, SOCKET_LISTENERS);
    letGoOfRequest(socket);
    // The TCP socket's `close` listeners (the server drain's, ws's; a third, engine.io's, came and
    // went at the upgrade and left the array grown): an exact-size list.
    const tcp = tcpSocketOf(socket.conn as unknown as EngineConn);
    if (tcp !== undefined) {
      compactListeners(tcp, 'close');
      forgetPeerAddress(tcp); // engine.io keeps the address (`conn.remoteAddress`), as this connection does
    }
    this.shared.gate.connected(session);
  }

  /**
   * socket.io's middleware for each inbound event: Tether's own requests run where socket.io's
   * dispatch would (after the middleware, in a later tick, only while connected); events Tether
   * does not handle go on to socket.io.
   */
  private onPacket(packet: Parameters<Middleware>[0], next: Parameters<Middleware>[1]): void {
    const { session, socket } = this;
    if (session === undefined || !this.admitInbound()) return;
    const request = this.requestOf(session, packet[0]);
    if (request === undefined) {
      next();
      return;
    }
    process.nextTick(() => {
      if (socket.connected) request(packet.slice(1));
    });
  }

  /** socket.io's `disconnect` of this connection's socket. */
  onDisconnect(reason: string): void {
    this.end(closeReasonOf(reason));
    // The gateway has one namespace: an engine.io connection that left it would otherwise stay
    // open, heartbeat and all, with no session and no limit on what it sends next.
    if (reason === 'client namespace disconnect') this.socket.conn.close();
  }

  /**
   * engine.io is about to write `packets` (its server's `flush`): a ping among them starts a
   * heartbeat round trip, which ends at the pong (`heartbeat`). engine.io pings on its own timer.
   */
  onFlush(packets: readonly { readonly type: string }[]): void {
    for (const packet of packets) if (packet.type === 'ping') this.pingAt = pingStamp();
  }

  /** The pong of the last ping arrived. */
  onHeartbeat(): void {
    if (this.pingAt === 0 || this.session === undefined) return;
    this.shared.deps.hub.heartbeat(this.session, msSinceStamp(this.pingAt));
    this.pingAt = 0;
  }

  // --- ConnectionSink -------------------------------------------------------------------------

  sendEvent(event: OutboundEvent, position?: PositionSource): void {
    if (!this.connected) {
      // Sent later, with the position the connection has now.
      const held = position === undefined ? undefined : fixedPosition(position.position());
      (this.queued ??= []).push(() => this.sendEvent(event, held));
      return;
    }
    const { encoder } = this.shared.io;
    const raw = this.directSocket();
    if (raw !== undefined) {
      const frame = sioEventFrame(encoder, event, position, this.wantsMeta);
      if (frame !== undefined) {
        this.shared.coalescer.write(raw, frame);
        return;
      }
    }
    const encoded = encodeSioEvent(encoder, event, position?.position(), this.wantsMeta);
    // The supported path socket.io's own adapter uses for broadcasts: pre-encoded packets.
    this.socket.client._packet(encoded.packets as never, encoded.options);
  }

  /**
   * The TCP socket to write an event's finished frame to, when that keeps every frame in order:
   * the websocket transport, its `ws` socket open, engine.io open and holding nothing back (its
   * own packets wait in `writeBuffer` while its transport awaits a write's callback; an event
   * written past them would overtake them). Else undefined: the event goes through socket.io and
   * engine.io, as acks and system events always do.
   *
   * Straight to the socket because engine.io's path per packet (a packet object, `packetCreate`,
   * `flush` and `drain` on the socket and the server, the transport's send and its write callback,
   * after which the transport is writable again) cost more than the frame itself. With compression
   * off `ws` queues nothing of its own, so its writes and ours leave in the order made.
   */
  private directSocket(): Duplex | undefined {
    const conn = this.socket.conn as unknown as EngineState;
    if (conn.readyState !== 'open' || conn.writeBuffer.length !== 0) return undefined;
    if (conn.transport.socket?.readyState !== WS_OPEN) return undefined;
    return tcpSocketOf(conn);
  }

  sendSystem(message: SystemMessage): void {
    if (!this.connected) {
      (this.queued ??= []).push(() => this.sendSystem(message));
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

  /** The client event's handler (its arguments as socket.io passes them, ack last), or undefined for others. */
  private requestOf(session: Session, event: unknown): ((args: unknown[]) => void) | undefined {
    switch (event) {
      case 'reauth':
        return (args) => this.respond(args, (payload) => this.reauth(session, payload));
      case 'subscribe':
      case 'unsubscribe':
        return (args) => this.respond(args, (payload) => this.channel(event, session, payload));
      case 'send':
        return (args) => this.respond(args, (payload) => this.send(session, payload));
      case 'narrow':
        return (args) => this.respond(args, (payload) => this.narrow(session, payload));
      case 'receipt':
        // Receipts are never acknowledged: a bad one gets an `error` event, as a bad `/ws` frame does.
        return ([payload]) => {
          try {
            this.shared.deps.hub.receipt(session, payloadField(payload, 'ids'));
          } catch (err) {
            this.sendSystem({ kind: 'error', payload: asTetherError(err).toBody(this.shared.deps.clock.now()) });
          }
        };
      default:
        return undefined;
    }
  }

  /** Whether an inbound event may go on (the rate limit); a refused one is answered here. */
  private admitInbound(): boolean {
    switch ((this.guard ??= InboundGuard.of(this.shared.deps)).check()) {
      case 'accept':
        return true;
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
        return false;
      case 'drop':
        return false;
      case 'cut':
        this.closeReason = 'rate_limited';
        this.socket.emit('auth_error', this.body(new TetherError('RATE_LIMITED')));
        this.end('rate_limited');
        this.socket.disconnect(true);
        return false;
    }
  }

  /**
   * Runs one request and acknowledges it when the client asked for an ack: with its answer, or with
   * the coded error it threw (anything unexpected is INTERNAL, and logged). socket.io passes the ack
   * last, after however many arguments came; the payload is the first of them.
   */
  private respond(args: unknown[], run: (payload: unknown) => Answer | Promise<Answer>): void {
    const last = args.at(-1);
    const ack = typeof last === 'function' ? (last as (answer: Answer) => void) : undefined;
    const payload = ack !== undefined && args.length === 1 ? undefined : args[0];
    void (async () => {
      let answer: Answer;
      try {
        answer = await run(payload);
      } catch (err) {
        const e = asTetherError(err);
        if (e.code === 'INTERNAL')
          this.shared.deps.logger.error({ transport: 'socket.io', sessionId: this.session?.id, err }, 'request failed');
        answer = { ok: false, code: e.code, message: e.message };
      }
      ack?.(answer);
    })();
  }

  /** Answered like `/ws` reauth: a missing or malformed token is AUTH_REQUIRED / AUTH_INVALID, the connection stays. */
  private reauth(session: Session, payload: unknown): Promise<ReauthAck> {
    return this.shared.deps.hub.reauth(session, tokenOf(payloadToken(payload)));
  }

  private async send(session: Session, payload: unknown): Promise<SendAck> {
    const sends = this.shared.deps.sends;
    if (sends === undefined) return { ok: false, code: 'NOT_FOUND', message: 'This gateway accepts no client events' };
    return sends.handle(session, payload);
  }

  private narrow(session: Session, payload: unknown): NarrowAck {
    const scopes =
      typeof payload === 'object' && payload !== null ? (payload as { scopes?: unknown }).scopes : undefined;
    return this.shared.deps.hub.narrow(session, scopes);
  }

  private async channel(kind: 'subscribe' | 'unsubscribe', session: Session, payload: unknown): Promise<SubscribeAck> {
    const { hub } = this.shared.deps;
    // The channel name's one rule is the hub's (VALIDATION_FAILED), as on `/ws`.
    const channel = channelName(payloadChannel(payload));
    const answer = kind === 'subscribe' ? hub.subscribe(session, channel) : hub.unsubscribe(session, channel);
    // Cluster mode: acknowledged once events published from now on reach this node (or that wait
    // gave up, as it does after a bounded time: the channel is joined either way).
    if (answer.ok && kind === 'subscribe') await hub.channelReady?.(channel)?.catch(() => undefined);
    return answer;
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

/** The connection of each engine.io socket, for the listeners every connection shares. */
const connectionOf = new WeakMap<object, SioConnection>();

/** The connection registered on engine.io socket `conn`, if any. */
export function sioConnectionOf(conn: object): SioConnection | undefined {
  return connectionOf.get(conn);
}

function onEngineHeartbeat(this: object): void {
  connectionOf.get(this)?.onHeartbeat();
}

function onSocketDisconnect(this: SioSocket, reason: string): void {
  this.data.connection?.onDisconnect(reason);
}

const CONN_LISTENERS = { heartbeat: onEngineHeartbeat };
const SOCKET_LISTENERS = { disconnect: onSocketDisconnect };

type Middleware = Parameters<SioSocket['use']>[0];

const NO_HEADERS: SioSocket['handshake']['headers'] = Object.freeze({});
const NO_QUERY: SioSocket['handshake']['query'] = Object.freeze({});

/**
 * Lets go of the handshake request once the connection is open, which nothing reads again: engine.io
 * keeps it for the session's life (`conn.request`), socket.io its headers, query and URL
 * (`handshake`). Together with `releaseUpgradeResponses` (engine.io's other hold on an upgrade's
 * request) that was 1.7 KB of heap per connection with the bench's few short headers; a browser's
 * (user agent, cookies, languages) are several times those. The handshake's address, time and
 * `auth` stay. A later namespace CONNECT on this engine.io session, with no request to check, is
 * refused (`admit` in `socketio.ts`).
 */
function letGoOfRequest(socket: SioSocket): void {
  (socket.conn as unknown as { request: unknown }).request = null;
  const handshake = socket.handshake as { headers: unknown; query: unknown; url: string };
  handshake.headers = NO_HEADERS;
  handshake.query = NO_QUERY;
  handshake.url = '';
}

/**
 * `socket.use(middleware)` for a socket that has none yet, as a one-slot array: `use` pushes onto
 * socket.io's empty array, which grows it to 17 slots (~0.14 KB per connection). When socket.io's
 * field is not the empty array this expects, `use` it is.
 */
function useExactly(socket: SioSocket, middleware: Middleware): void {
  const internals = socket as unknown as { fns?: unknown };
  if (Array.isArray(internals.fns) && internals.fns.length === 0) internals.fns = [middleware];
  else socket.use(middleware);
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
