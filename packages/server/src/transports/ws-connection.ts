import type { IncomingMessage } from 'node:http';
import { ERRORS, TetherError, type ErrorCode, type ResumeRequest, type ServerFrame } from '@tether/protocol';
import type { RawData, WebSocket } from 'ws';
import type {
  CloseReason,
  ConnectionInfo,
  ConnectionSink,
  OutboundEvent,
  PositionSource,
  Session,
  SystemMessage,
  TokenSource,
} from '../hub/types.js';
import type { TimerHandle } from '../util/clock.js';
import { listenShaped } from '../util/listeners.js';
import { asTetherError, clientIp, closeReasonForCode, forgetPeerAddress, type HandshakeGate } from './handshake.js';
import type { Beat, HeartbeatSweeper } from './heartbeat.js';
import { InboundGuard } from './inbound-guard.js';
import { resumeFromQuery } from './resume.js';
import { extractWsToken, type FoundToken } from './token-extract.js';
import type { TransportDeps } from './types.js';
import type { FrameSocket, WriteCoalescer } from './write-coalescer.js';
import {
  channelName,
  echoedChannel,
  encodeFrame,
  eventFrame,
  parseClientFrame,
  systemFrame,
  textFrame,
  tokenOf,
  type InboundFrame,
} from './ws-frames.js';

/** What every `/ws` connection of one server shares. */
export interface WsShared {
  deps: TransportDeps;
  gate: HandshakeGate;
  coalescer: WriteCoalescer;
  /** Sweeps the transport's table of connections (the map `wsListeners` reads). */
  heartbeat: HeartbeatSweeper<WebSocket, WsConnection>;
  authTimeoutMs: number;
  /** The socket's listeners, the same functions for every connection (`wsListeners`). */
  listeners: WsListeners;
}

/** A `/ws` socket's event listeners; `this` is the socket. */
export interface WsListeners {
  message(this: WebSocket, data: RawData, isBinary: boolean): void;
  pong(this: WebSocket): void;
  error(this: WebSocket, err: Error): void;
  close(this: WebSocket, code: number): void;
}

/**
 * Listeners shared by every connection of a transport, which find theirs in `connections`: four
 * closures and their context per connection, and the transport's own `close` closure, were ~0.48 KB
 * of what an idle connection held beyond a plain `ws` socket. `close` also forgets the socket.
 */
export function wsListeners(connections: Map<WebSocket, WsConnection>): WsListeners {
  return {
    message(data, isBinary) {
      connections.get(this)?.onMessage(data, isBinary);
    },
    pong() {
      connections.get(this)?.onPong();
    },
    error(err) {
      connections.get(this)?.onError(err);
    },
    close(code) {
      const connection = connections.get(this);
      connections.delete(this);
      connection?.onClose(code);
    },
  };
}

/**
 *   upgrade ─▶ awaiting ──(token in handshake, or first frame `authenticate`)──▶ verifying ─▶ open ─▶ closed
 *                 │                                                                 │
 *                 └── timeout: auth_error AUTH_TIMEOUT, close ◀── refused: auth_error <code>, close
 */
type State = 'awaiting' | 'verifying' | 'open' | 'closed';

/** Frames received while the token is being verified are kept (a bounded few) and handled after registration. */
const MAX_EARLY_FRAMES = 32;

/** One plain-WebSocket connection: parses frames into hub calls and is the hub's sink for it. */
export class WsConnection implements ConnectionSink, ConnectionInfo, Beat {
  // The heartbeat's, kept here rather than in an object and a map of the sweeper's (`Beat`).
  nextPingAt = 0;
  deadline = 0;
  pingAt = 0;
  private state: State = 'awaiting';
  private session: Session | undefined;
  private authTimer: TimerHandle | undefined;
  /** Frames that came while the token was being verified (none: no array). */
  private early: Array<[RawData, boolean]> | undefined;
  /** Why the socket is going away, when this side decided it (else the client left). */
  private closeReason: CloseReason = 'client';
  /** Made at the first inbound message. */
  private guard: InboundGuard | undefined;
  /** The client's address (`TRUST_PROXY`). The connection is its session's `ConnectionInfo`: no object of its own. */
  readonly ip: string;
  /** Which source the handshake's token came from; set when it is verified. */
  tokenSource: TokenSource = 'query';

  /**
   * Kept from the upgrade request instead of the request itself (its headers cost ~1–2 KB per
   * connection), until the connection is open: only authentication reads it.
   */
  private url: string | undefined;
  readonly userAgent: string | undefined;

  constructor(
    private readonly shared: WsShared,
    private readonly ws: WebSocket,
    private readonly raw: FrameSocket,
    req: IncomingMessage,
  ) {
    const { config } = shared.deps;
    this.ip = clientIp(req, config.trustProxy);
    forgetPeerAddress(raw);
    this.url = req.url;
    this.userAgent = req.headers['user-agent'];
  }

  /**
   * Runs the handshake checks on the upgrade request; the request is not kept afterwards. `overRate`:
   * the connect rate, taken before the upgrade, refused this connection.
   */
  start(req: IncomingMessage, overRate?: TetherError): void {
    const { ws, shared } = this;
    const { listeners } = shared;
    // One table of fixed shape rather than the emitter's own (~0.22 KB less per connection); `close`
    // is an `on` listener (close fires once; a once-wrapper costs ~150 bytes per connection).
    listenShaped(ws, listeners);

    let origin;
    try {
      if (overRate !== undefined) throw overRate;
      origin = shared.gate.checkOrigin(req);
    } catch (err) {
      this.refuse(shared.gate.refused(err, this.ip));
      return;
    }
    const found = extractWsToken({
      headers: req.headers,
      url: this.url,
      origin,
      allowQueryToken: shared.deps.config.allowQueryToken,
    });
    if (found !== undefined) {
      void this.authenticate(found, resumeFromQuery(this.url));
      return;
    }
    this.authTimer = shared.deps.clock.setTimeout(() => {
      this.authTimer = undefined;
      if (this.state === 'awaiting') this.refuse(shared.gate.refused(new TetherError('AUTH_TIMEOUT'), this.ip));
    }, shared.authTimeoutMs);
    this.authTimer.unref?.();
  }

  /** As `ConnectionInfo` in a log line or a JSON body: its three fields, not the connection. */
  toJSON(): ConnectionInfo {
    return { ip: this.ip, userAgent: this.userAgent, tokenSource: this.tokenSource };
  }

  // --- ConnectionSink -------------------------------------------------------------------------

  /** On the prototype: a field would cost 8 bytes per connection. */
  get transport(): 'ws' {
    return 'ws';
  }

  sendEvent(event: OutboundEvent, position?: PositionSource): void {
    this.write(eventFrame(event, position));
  }

  sendSystem(message: SystemMessage): void {
    this.send(systemFrame(message));
  }

  close(code: ErrorCode | null, reason: string): void {
    this.closeReason = closeReasonForCode(code, this.closeReason);
    this.ws.close(code === null ? 1000 : ERRORS[code].closeCode, code ?? reason.slice(0, 120));
  }

  // --- inbound --------------------------------------------------------------------------------

  /** The heartbeat's pong. */
  onPong(): void {
    const rtt = this.shared.heartbeat.pong(this);
    if (rtt !== undefined && this.session !== undefined) this.shared.deps.hub.heartbeat(this.session, rtt);
  }

  onError(err: Error): void {
    // ws answers protocol errors (e.g. 1009 beyond the hard payload ceiling) itself, then closes.
    this.closeReason = 'transport_error';
    this.shared.deps.logger.debug({ transport: 'ws', ip: this.ip, err: err.message }, 'websocket error');
  }

  onMessage(data: RawData, isBinary: boolean): void {
    this.shared.heartbeat.alive(this);
    if (this.state === 'closed') return;
    switch ((this.guard ??= InboundGuard.of(this.shared.deps)).check()) {
      case 'accept':
        break;
      case 'warn':
        this.sendError(
          new TetherError('RATE_LIMITED', 'Too many messages; further ones are dropped, then the connection is closed'),
        );
        return;
      case 'drop':
        return;
      case 'cut':
        this.closeReason = 'rate_limited';
        this.refuse(new TetherError('RATE_LIMITED'));
        return;
    }
    if (this.state === 'verifying') {
      if ((this.early?.length ?? 0) < MAX_EARLY_FRAMES) (this.early ??= []).push([data, isBinary]);
      else this.sendError(new TetherError('RATE_LIMITED', 'Too many frames before authentication completed'));
      return;
    }
    const text = this.readText(data, isBinary);
    if (text === undefined) return;
    if (this.state === 'awaiting') this.onFirstFrame(text);
    else this.onFrame(text);
  }

  /** The frame's text, or undefined after answering FRAME_INVALID / FRAME_TOO_LARGE. */
  private readText(data: RawData, isBinary: boolean): string | undefined {
    const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (buffer.length > this.shared.deps.config.maxFrameBytes) {
      this.sendError(
        new TetherError(
          'FRAME_TOO_LARGE',
          `Frame of ${buffer.length} bytes exceeds the limit of ${this.shared.deps.config.maxFrameBytes}`,
        ),
      );
      return undefined;
    }
    if (isBinary) {
      this.sendError(new TetherError('FRAME_INVALID', 'Binary frames are not supported; send JSON text frames'));
      return undefined;
    }
    return buffer.toString('utf8');
  }

  /** The frame, or undefined after answering a malformed one with its coded error. */
  private parse(text: string): InboundFrame | undefined {
    try {
      return parseClientFrame(text);
    } catch (err) {
      this.sendError(asTetherError(err));
      return undefined;
    }
  }

  private onFirstFrame(text: string): void {
    const frame = this.parse(text);
    if (frame === undefined) return;
    const { gate } = this.shared;
    if (frame.type !== 'authenticate') {
      this.refuse(
        gate.refused(
          new TetherError('AUTH_REQUIRED', 'Authenticate first: send {"type":"authenticate","token":"…"}'),
          this.ip,
        ),
      );
      return;
    }
    let token;
    try {
      token = tokenOf(frame.token);
    } catch (err) {
      // A missing or malformed token is refused like any other bad token here: auth_error, then close.
      this.refuse(gate.refused(err, this.ip));
      return;
    }
    void this.authenticate({ token, source: 'frame' }, frame.resume ?? resumeFromQuery(this.url));
  }

  private onFrame(text: string): void {
    const session = this.session;
    if (session === undefined) return;
    const frame = this.parse(text);
    if (frame === undefined) return;
    const { hub } = this.shared.deps;
    switch (frame.type) {
      case 'authenticate':
        this.sendError(new TetherError('FRAME_INVALID', 'Already authenticated; send reauth to replace the token'));
        return;
      case 'reauth':
        void this.reauth(session, frame.token);
        return;
      case 'send':
        void this.clientSend(session, frame);
        return;
      case 'receipt':
        try {
          hub.receipt(session, frame.ids);
        } catch (err) {
          this.sendError(asTetherError(err));
        }
        return;
      case 'narrow': {
        const ack = hub.narrow(session, frame.scopes);
        const ridPart = frame.rid === undefined ? {} : { rid: frame.rid };
        if (!ack.ok) this.send({ type: 'narrow_error', code: ack.code, message: ack.message, ...ridPart });
        else this.send({ type: 'narrowed', ...(ack.scopes === undefined ? {} : { scopes: ack.scopes }), ...ridPart });
        return;
      }
      case 'subscribe':
      case 'unsubscribe': {
        const { rid } = frame;
        const channel = channelName(frame.channel);
        let ack;
        try {
          ack = frame.type === 'subscribe' ? hub.subscribe(session, channel) : hub.unsubscribe(session, channel);
        } catch (err) {
          const e = asTetherError(err);
          ack = { ok: false as const, code: e.code, message: e.message };
        }
        const ridPart = rid === undefined ? {} : { rid };
        const answer = (): void => {
          if (ack.ok)
            this.send({ type: frame.type === 'subscribe' ? 'subscribed' : 'unsubscribed', channel, ...ridPart });
          else
            this.send({
              type: 'subscribe_error',
              channel: echoedChannel(frame.channel),
              code: ack.code,
              message: ack.message,
              ...ridPart,
            });
        };
        // Cluster mode: acknowledged once events published from now on reach this node (or that wait
        // gave up, as it does after a bounded time: the channel is joined either way).
        const ready = ack.ok && frame.type === 'subscribe' ? hub.channelReady?.(channel) : undefined;
        if (ready === undefined) answer();
        else void ready.then(answer, answer);
        return;
      }
    }
  }

  private async clientSend(session: Session, frame: Extract<InboundFrame, { type: 'send' }>): Promise<void> {
    const sends = this.shared.deps.sends;
    const ack =
      sends === undefined
        ? { ok: false as const, code: 'NOT_FOUND' as const, message: 'This gateway accepts no client events' }
        : await sends.handle(session, { event: frame.event, data: frame.data, key: frame.key });
    this.send({ type: 'send_ack', rid: frame.rid, ...ack });
  }

  /** Every reauth frame gets reauth_ok or reauth_error, and a refused one leaves the connection open. */
  private async reauth(session: Session, token: unknown): Promise<void> {
    try {
      const ack = await this.shared.deps.hub.reauth(session, tokenOf(token));
      this.send(
        ack.ok
          ? { type: 'reauth_ok', expiresAt: ack.expiresAt }
          : { type: 'reauth_error', code: ack.code, message: ack.message },
      );
    } catch (err) {
      const e = asTetherError(err);
      this.send({ type: 'reauth_error', code: e.code, message: e.message });
    }
  }

  // --- handshake ------------------------------------------------------------------------------

  private async authenticate(found: FoundToken, resume?: ResumeRequest): Promise<void> {
    const { gate, deps } = this.shared;
    this.state = 'verifying';
    this.clearAuthTimer();
    try {
      const principal = await gate.verify(found, this.ip);
      if (this.state !== 'verifying') return; // the client left while we were verifying
      this.tokenSource = found.source;
      this.session = deps.hub.register(principal, this, this, resume);
      this.state = 'open';
      this.url = undefined;
      gate.connected(this.session);
    } catch (err) {
      if (this.state === 'verifying') this.refuse(gate.refused(err, this.ip));
      return;
    }
    const early = this.early;
    this.early = undefined;
    for (const [data, isBinary] of early ?? []) {
      if (this.state !== 'open') break;
      const text = this.readText(data, isBinary);
      if (text !== undefined) this.onFrame(text);
    }
  }

  /** `auth_error` then close with the registry's close code (1008 for auth codes); accepted upgrades only. */
  private refuse(error: TetherError): void {
    if (this.state === 'closed') return;
    const previous = this.state;
    this.state = 'closed';
    this.clearAuthTimer();
    const session = this.session;
    this.send({ type: 'auth_error', ...error.toBody(this.shared.deps.clock.now()) });
    this.ws.close(error.closeCode, error.code);
    if (previous === 'open' && session !== undefined) this.unregister(session);
  }

  onClose(code: number): void {
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.clearAuthTimer();
    if (this.closeReason === 'client' && code === 1006) this.closeReason = 'transport_error';
    if (wasOpen && this.session !== undefined) this.unregister(this.session);
  }

  private unregister(session: Session): void {
    if (!session.closed) this.shared.deps.hub.unregister(session, this.closeReason);
    this.shared.gate.disconnected(session, this.closeReason);
  }

  /** The heartbeat gave up on this socket. */
  markDead(): void {
    this.closeReason = 'heartbeat';
  }

  // --- outbound -------------------------------------------------------------------------------

  private sendError(error: TetherError): void {
    this.send({ type: 'error', ...error.toBody(this.shared.deps.clock.now()) });
  }

  private send(frame: ServerFrame): void {
    this.write(textFrame(encodeFrame(frame)));
  }

  /**
   * Writes a finished frame to the socket, held to the end of the turn. Straight to the socket rather
   * than through `ws.send`: with compression off (`ws.ts`), `ws` queues nothing of its own, so frames
   * leave in the order written, before a close frame `ws.close()` writes after them.
   */
  private write(frame: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.shared.coalescer.write(this.raw, frame);
  }

  private clearAuthTimer(): void {
    if (this.authTimer === undefined) return;
    this.shared.deps.clock.clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }
}
