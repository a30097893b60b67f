import {
  TetherError,
  WS_BEARER_PROTOCOL_PREFIX,
  WS_PATH,
  type ClientFrame,
  type NarrowAck,
  type ReauthAck,
  type ResumeRequest,
  type SendAck,
  type SendRequest,
  type ServerFrame,
  type SubscribeAck,
} from '@tether/protocol';
import type { WebSocketLike } from '../platform.js';
import type { Transport, TransportFactory, TransportOptions } from './types.js';

export interface WsTransportOptions {
  /**
   * How the token travels. `frame` (default): a first `{type:'authenticate'}` frame, so the token
   * never appears in proxy logs of the upgrade request. `subprotocol`: `Sec-WebSocket-Protocol:
   * bearer.<token>` (browsers cannot set an Authorization header).
   */
  tokenDelivery?: 'frame' | 'subprotocol';
}

interface Pending<T> {
  resolve(value: T): void;
  reject(error: TetherError): void;
  timer: unknown;
}

/** The plain-WebSocket transport (`/ws`, JSON frames; see `ServerFrame`/`ClientFrame`). */
class WsTransport implements Transport {
  readonly kind = 'ws' as const;
  private socket: WebSocketLike | undefined;
  private closed = false;
  /** The server answers reauth frames in order, so a FIFO pairs answers with requests. */
  private readonly reauths: Array<Pending<ReauthAck>> = [];
  private readonly requests = new Map<string, Pending<SubscribeAck>>();
  private readonly narrows = new Map<string, Pending<NarrowAck>>();
  private readonly sends = new Map<string, Pending<SendAck>>();
  private rid = 0;

  constructor(
    private readonly options: TransportOptions,
    private readonly ws: WsTransportOptions,
  ) {}

  open(token: string, resume?: ResumeRequest): void {
    const Ctor = this.options.platform.WebSocket;
    if (!Ctor) throw new TetherError('INTERNAL', 'No WebSocket implementation: pass one in the platform options');
    const bySubprotocol = this.ws.tokenDelivery === 'subprotocol';
    let url = this.options.url.replace(/^http/, 'ws').replace(/\/+$/, '') + WS_PATH;
    // With the token in a frame, the resume rides along in it; otherwise in the query string.
    if (bySubprotocol && resume !== undefined) url += '?' + resumeQuery(resume);
    const socket = bySubprotocol ? new Ctor(url, [WS_BEARER_PROTOCOL_PREFIX + token]) : new Ctor(url);
    this.socket = socket;
    const h = this.options.handlers;
    socket.onopen = () => {
      // A socket callback: whatever throws here is uncaught in the host app. A first frame that
      // cannot go out ends this attempt like any other socket failure instead.
      try {
        if (!bySubprotocol) this.sendFrame({ type: 'authenticate', token, ...resume });
      } catch (error) {
        this.report(`authenticate not sent: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
      h.open();
    };
    socket.onmessage = (event) => this.dispatch(event.data);
    socket.onclose = (event) => this.report(`close ${event.code}${event.reason ? ` ${event.reason}` : ''}`);
    socket.onerror = () => this.report('socket error');
  }

  reauth(token: string): Promise<ReauthAck> {
    return new Promise((resolve, reject) => {
      this.sendFrame({ type: 'reauth', token });
      const pending: Pending<ReauthAck> = {
        resolve,
        reject,
        timer: this.timeout(() => this.drop(this.reauths, pending)),
      };
      this.reauths.push(pending);
    });
  }

  subscribe(channel: string): Promise<SubscribeAck> {
    return this.request('subscribe', channel);
  }

  unsubscribe(channel: string): Promise<SubscribeAck> {
    return this.request('unsubscribe', channel);
  }

  send(request: SendRequest): Promise<SendAck> {
    return new Promise((resolve, reject) => {
      const rid = String(++this.rid);
      this.sendFrame({ type: 'send', event: request.event, data: request.data, key: request.key, rid });
      const pending: Pending<SendAck> = {
        resolve,
        reject,
        timer: this.timeout(() => {
          this.sends.delete(rid);
          reject(new TetherError('INTERNAL', 'No acknowledgement in time'));
        }),
      };
      this.sends.set(rid, pending);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    this.socket?.close(1000, 'client close');
    this.failPending('Connection closed');
  }

  receipt(ids: string[]): boolean {
    try {
      this.sendFrame({ type: 'receipt', ids });
      return true;
    } catch {
      return false;
    }
  }

  narrow(scopes: string[] | null): Promise<NarrowAck> {
    return this.pending(this.narrows, (rid) => ({ type: 'narrow', scopes, rid }));
  }

  private request(type: 'subscribe' | 'unsubscribe', channel: string): Promise<SubscribeAck> {
    return this.pending(this.requests, (rid) => ({ type, channel, rid }));
  }

  /** Sends a frame with a fresh `rid` and resolves with the answer that carries it back. */
  private pending<T>(map: Map<string, Pending<T>>, frame: (rid: string) => ClientFrame): Promise<T> {
    return new Promise((resolve, reject) => {
      const rid = String(++this.rid);
      this.sendFrame(frame(rid));
      const pending: Pending<T> = {
        resolve,
        reject,
        timer: this.timeout(() => {
          map.delete(rid);
          reject(new TetherError('INTERNAL', 'No acknowledgement in time'));
        }),
      };
      map.set(rid, pending);
    });
  }

  private timeout(onTimeout: () => void): unknown {
    return this.options.platform.setTimeout(onTimeout, this.options.ackTimeoutMs);
  }

  private drop(queue: Array<Pending<ReauthAck>>, pending: Pending<ReauthAck>): void {
    const index = queue.indexOf(pending);
    if (index >= 0) queue.splice(index, 1);
    pending.reject(new TetherError('INTERNAL', 'No acknowledgement in time'));
  }

  private sendFrame(frame: ClientFrame): void {
    if (this.closed || !this.socket || this.socket.readyState !== 1) {
      throw new TetherError('INTERNAL', 'Not connected');
    }
    this.socket.send(JSON.stringify(frame));
  }

  private dispatch(raw: unknown): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(typeof raw === 'string' ? raw : String(raw)) as ServerFrame;
    } catch {
      return; // A frame we cannot read is the server's bug; dropping it beats closing a live session.
    }
    const h = this.options.handlers;
    switch (frame.type) {
      case 'session_created': {
        const { type: _type, ...payload } = frame;
        h.session(payload);
        break;
      }
      case 'auth_error': {
        const { type: _type, ...body } = frame;
        h.authError(body);
        break;
      }
      case 'token_expiring':
        h.tokenExpiring({ expiresAt: frame.expiresAt, secondsLeft: frame.secondsLeft });
        break;
      case 'reauth_ok':
        this.settleReauth({ ok: true, expiresAt: frame.expiresAt });
        break;
      case 'reauth_error':
        this.settleReauth({ ok: false, code: frame.code, message: frame.message });
        break;
      case 'event':
        h.event(frame.event, frame.data, frame.id, frame.position);
        break;
      case 'send_ack': {
        const { type: _type, rid, ...ack } = frame;
        const pending = this.sends.get(rid);
        if (!pending) break;
        this.sends.delete(rid);
        this.options.platform.clearTimeout(pending.timer);
        pending.resolve(ack);
        break;
      }
      case 'subscribed':
      case 'unsubscribed':
        this.settleRequest(frame.rid, { ok: true, channel: frame.channel });
        break;
      case 'subscribe_error':
        this.settleRequest(frame.rid, { ok: false, code: frame.code, message: frame.message });
        break;
      case 'narrowed':
        this.settle(
          this.narrows,
          frame.rid,
          frame.scopes === undefined ? { ok: true } : { ok: true, scopes: frame.scopes },
        );
        break;
      case 'narrow_error':
        this.settle(this.narrows, frame.rid, { ok: false, code: frame.code, message: frame.message });
        break;
      case 'server_shutdown':
        h.shutdown({ reconnectInMs: frame.reconnectInMs, timestamp: frame.timestamp });
        break;
      case 'error':
        break;
    }
  }

  private settleReauth(ack: ReauthAck): void {
    const pending = this.reauths.shift();
    if (!pending) return;
    this.options.platform.clearTimeout(pending.timer);
    pending.resolve(ack);
  }

  private settleRequest(rid: string | undefined, ack: SubscribeAck): void {
    this.settle(this.requests, rid, ack);
  }

  private settle<T>(map: Map<string, Pending<T>>, rid: string | undefined, ack: T): void {
    const pending = rid === undefined ? undefined : map.get(rid);
    if (!pending || rid === undefined) return;
    map.delete(rid);
    this.options.platform.clearTimeout(pending.timer);
    pending.resolve(ack);
  }

  private failPending(message: string): void {
    for (const p of this.reauths.splice(0)) {
      this.options.platform.clearTimeout(p.timer);
      p.reject(new TetherError('INTERNAL', message));
    }
    for (const p of [...this.requests.values(), ...this.sends.values(), ...this.narrows.values()]) {
      this.options.platform.clearTimeout(p.timer);
      p.reject(new TetherError('INTERNAL', message));
    }
    this.requests.clear();
    this.sends.clear();
    this.narrows.clear();
  }

  private detach(): void {
    if (!this.socket) return;
    this.socket.onopen = null;
    this.socket.onmessage = null;
    this.socket.onclose = null;
    // Never null: closing a socket that is still CONNECTING makes `ws` (Node) emit `error`, and an
    // EventEmitter `error` nobody listens to is thrown, from a nextTick, killing the host process
    // ("WebSocket was closed before the connection was established"). engine.io-client leaves a
    // no-op there for the same reason.
    this.socket.onerror = ignore;
  }

  private report(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    this.failPending(reason);
    this.options.handlers.closed(reason);
  }
}

/** The `onerror` a detached socket keeps (see `detach`). */
function ignore(): void {}

/** Factory for the plain-WebSocket transport; the platform supplies the WebSocket constructor. */
export function wsTransport(ws: WsTransportOptions = {}): TransportFactory {
  return (options) => new WsTransport(options, ws);
}

/** `position` and `channels` as query parameters (for the subprotocol token delivery). */
function resumeQuery(resume: ResumeRequest): string {
  const params = new URLSearchParams();
  if (resume.position !== undefined) params.set('position', resume.position);
  if (resume.channels !== undefined && resume.channels.length > 0) params.set('channels', resume.channels.join(','));
  if (resume.narrow !== undefined) params.set('narrow', resume.narrow.join(','));
  return params.toString();
}
