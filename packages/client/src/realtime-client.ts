import {
  TetherError,
  type NarrowAck,
  type ResumeRequest,
  type SendAck,
  type SessionCreatedPayload,
  type SubscribeAck,
} from '@tether/protocol';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { Connection, type AuthNotice } from './connection.js';
import { RecentIds } from './dedupe.js';
import { Emitter } from './emitter.js';
import { Outbox } from './outbox.js';
import { PositionStore } from './position-store.js';
import { ReceiptBatcher } from './receipts.js';
import type { Platform } from './platform.js';
import type { ConnectionState, StateListener } from './state-machine.js';
import type { SignedOut, TokenManager } from './token-manager.js';
import { socketIoTransport, type SocketIoExtraOptions } from './transports/socketio-transport.js';
import type { Transport, TransportFactory, TransportKind } from './transports/types.js';
import { wsTransport, type WsTransportOptions } from './transports/ws-transport.js';

/** Application events by name → the data they carry. */
export type EventMap = { [event: string]: Record<string, unknown> };

/** Delivered with every application event. */
export interface EventMeta {
  /**
   * The server-assigned event id (not in `data`, which is exactly as published); an id already
   * delivered is not delivered twice.
   */
  id: string | undefined;
  event: string;
  transport: TransportKind;
}

export interface RealtimeClientOptions {
  /** The gateway's base URL, e.g. `https://rt.example.com`. */
  url: string;
  tokens: TokenManager;
  /** `socket.io` (default), `ws` (plain WebSocket at `/ws`), or a custom factory. */
  transport?: TransportKind | TransportFactory;
  /** Default: the token manager's platform. Node with `ws`: `createPlatform({ WebSocket })`. */
  platform?: Platform;
  backoff?: Partial<BackoffOptions>;
  /** Failed attempts in a row before `suspended` (slower retries). Default 8. */
  suspendAfterAttempts?: number;
  /** Retry period while suspended (± 50 % jitter). Default 60 s. */
  suspendedRetryMs?: number;
  /** How long to wait for `session_created`. Default 10 s. */
  sessionTimeoutMs?: number;
  /** How long to wait for the answer to reauth/subscribe. Default 10 s. */
  ackTimeoutMs?: number;
  /** On AUTH_INVALID/AUTH_REQUIRED, continue as a guest (`POST /auth/guest`) instead of failing. */
  guestFallback?: boolean;
  /** How many recent event ids are remembered for de-duplication. Default 1000. */
  dedupeCapacity?: number;
  /** Socket.IO transport only. */
  socketIo?: SocketIoExtraOptions;
  /** `ws` transport only. */
  ws?: WsTransportOptions;
  /** Sends held while disconnected or reauthenticating; one more rejects. Default 100. */
  sendBufferSize?: number;
  /** A send not acknowledged this long after `send()` rejects. Default 60 000 ms. */
  sendTtlMs?: number;
  /**
   * Receive only these scopes (inside the grants), live and in recovery — a phone that only cares
   * about two wards. Default: every scope granted. Change it later with `narrow()`.
   */
  narrow?: string[];
  /**
   * Delivery receipts: after the handlers of an event with an id ran, its id goes to the gateway in a
   * batch (one frame per `receiptDelayMs`, default 100, or per 256 events), so the gateway's delivery
   * record shows this device received it. False: none are sent. Default true.
   */
  receipts?: boolean;
  receiptDelayMs?: number;
}

/** After each `session_created` of a gateway with an event log. */
export interface RecoveryNotice {
  /** False: events may have been missed (first connect, history trimmed, gap too large): refetch. */
  recovered: boolean;
  /** Where the stream resumed (kept with the tokens, presented on the next connect). */
  position: string | undefined;
}

interface LifecycleEvents {
  session: SessionCreatedPayload;
  auth: AuthNotice;
  recovery: RecoveryNotice;
}

/**
 * One realtime connection that stays authorized: fresh token on every attempt, in-place reauth
 * when the token changes, backoff with jitter, `failed` on revocation.
 *
 * @example
 *   const client = new RealtimeClient<{ message_received: { text: string } }>({ url, tokens });
 *   client.on('message_received', (data, meta) => console.log(meta.id, data.text));
 *   client.onState(({ previous, current, reason }) => console.log(previous, '→', current, reason));
 *   client.connect();
 */
export class RealtimeClient<Events extends EventMap = EventMap> {
  private readonly connection: Connection;
  private readonly recent: RecentIds;
  private readonly handlers = new Map<string, Set<(data: never, meta: EventMeta) => void>>();
  private readonly lifecycle = new Emitter<LifecycleEvents>();
  private readonly channels = new Set<string>();
  /** The narrowing presented on every connect (undefined: every scope granted). */
  private narrowed: string[] | undefined;
  private lastSession: SessionCreatedPayload | null = null;
  private readonly positions: PositionStore;
  private readonly outbox: Outbox;
  private readonly receipts: ReceiptBatcher | undefined;

  constructor(private readonly options: RealtimeClientOptions) {
    this.recent = new RecentIds(options.dedupeCapacity ?? 1000);
    this.narrowed = options.narrow === undefined ? undefined : [...options.narrow];
    const platform = options.platform ?? options.tokens.platform;
    this.positions = new PositionStore(options.tokens.storage, `${options.tokens.storageKey}.position`, platform);
    this.outbox = new Outbox({
      platform,
      bufferSize: Math.max(1, options.sendBufferSize ?? 100),
      ttlMs: options.sendTtlMs ?? 60_000,
    });
    this.connection = new Connection({
      url: options.url,
      tokens: options.tokens,
      platform,
      transport: pickTransport(options),
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      suspendAfterAttempts: Math.max(1, options.suspendAfterAttempts ?? 8),
      suspendedRetryMs: options.suspendedRetryMs ?? 60_000,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
      ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
      guestFallback: options.guestFallback ?? false,
      onSession: (payload, transport) => this.handleSession(payload, transport),
      onEvent: (name, data, id, transport, position) => this.dispatch(name, data, id, transport, position),
      onAuthNotice: (notice) => this.lifecycle.emit('auth', notice),
      resume: () => this.resume(),
      onReauthing: (active) => this.outbox.setPaused(active),
    });
    this.receipts =
      options.receipts === false
        ? undefined
        : new ReceiptBatcher(platform, Math.max(0, options.receiptDelayMs ?? 100), (ids) => {
            const transport = this.connection.currentTransport;
            return this.lastSession !== null && transport?.receipt !== undefined && transport.receipt(ids);
          });
    this.connection.machine.onChange((change) => {
      if (change.current === 'connected') return;
      this.lastSession = null;
      this.outbox.setTransport(null);
    });
  }

  get state(): ConnectionState {
    return this.connection.machine.state;
  }

  /** The live session (`session_created`), or null when not connected. */
  get session(): SessionCreatedPayload | null {
    return this.lastSession;
  }

  get tokens(): TokenManager {
    return this.options.tokens;
  }

  /** Starts connecting (or, while waiting to retry, retries now). */
  connect(): void {
    this.connection.connect();
  }

  /** Closes; stays `disconnected` until connect(). Subscriptions, listeners and waiting sends are kept. */
  close(): void {
    this.connection.close();
    this.positions.flush();
  }

  /** The position of the last event received (what the next connect presents). */
  get position(): string | undefined {
    return this.positions.peek();
  }

  /**
   * Sends a client event to the gateway (the app's handler); resolves with its acknowledgement
   * `{ok:true, result}` or `{ok:false, code, message}`. While disconnected or reauthenticating the
   * send waits (at most `sendBufferSize` of them, each at most `sendTtlMs`, else it rejects with a
   * TetherError SEND_FAILED); sends go in order, and one whose acknowledgement was lost is sent
   * again with the same idempotency key, so the app applies it once.
   *
   * @example
   *   const ack = await client.send('chat_message', { room: 'r1', text: 'hi' });
   *   if (!ack.ok) console.warn(ack.code, ack.message);
   */
  send(event: string, data?: unknown): Promise<SendAck> {
    return this.outbox.send(event, data);
  }

  /**
   * After every `session_created` from a gateway with an event log: `recovered: false` means
   * events may have been missed (always so on a first connect): reload the state you show.
   */
  onRecovery(listener: (notice: RecoveryNotice) => void): () => void {
    return this.lifecycle.on('recovery', listener);
  }

  /**
   * Closes, logs out on the server (revoking the refresh family), clears the tokens, the
   * de-duplication memory, channel subscriptions and application event listeners.
   */
  async logout(): Promise<void> {
    // Close first: the server ends this session's sockets with AUTH_REVOKED, which must not read as a revocation.
    this.connection.close('logout()');
    this.outbox.clear('Logged out before the send was acknowledged');
    this.receipts?.clear();
    this.positions.clear();
    this.recent.clear();
    this.channels.clear();
    this.handlers.clear();
    await this.options.tokens.logout();
  }

  /** Stops everything (timers, hooks, listeners); the instance is not usable afterwards. */
  dispose(): void {
    this.connection.dispose();
    this.outbox.shut('Client disposed');
    this.receipts?.clear();
    this.positions.flush();
    this.handlers.clear();
    this.lifecycle.clear();
  }

  /** Subscribes to an application event; returns the unsubscribe function. */
  on<K extends keyof Events & string>(event: K, handler: (data: Events[K], meta: EventMeta) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    const stored = handler as (data: never, meta: EventMeta) => void;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  /** Every state change `{previous, current, reason, retryInMs}`. */
  onState(listener: StateListener): () => void {
    // Transitions run inside socket callbacks and timers, with work left to do after telling
    // listeners (scheduling the retry, closing the transport): an app listener that throws must
    // neither escape into the host nor cut that work, or the other listeners, short.
    return this.connection.machine.onChange((change) => {
      try {
        listener(change);
      } catch (error) {
        console.error('tether: state listener threw', error);
      }
    });
  }

  /** Each `session_created` (first connect and every reconnect). */
  onSession(listener: (session: SessionCreatedPayload) => void): () => void {
    return this.lifecycle.on('session', listener);
  }

  /** Reauth results and auth errors, for diagnostics. */
  onAuth(listener: (notice: AuthNotice) => void): () => void {
    return this.lifecycle.on('auth', listener);
  }

  /** Terminal sign-out (revocation, refused refresh, logout). */
  onSignedOut(listener: (event: SignedOut) => void): () => void {
    return this.options.tokens.on('signed_out', listener);
  }

  /** Joins a channel now (when connected) and again after every reconnect. */
  async subscribe(channel: string): Promise<SubscribeAck> {
    this.channels.add(channel);
    const transport = this.connection.currentTransport;
    if (!transport) return { ok: true, channel };
    const ack = await transport.subscribe(channel);
    if (!ack.ok) this.channels.delete(channel);
    return ack;
  }

  /**
   * Receives only these scopes from now on (each inside a grant; the answer lists what is kept), or
   * every scope granted again with `null`. Kept for reconnects, where recovery reads only those
   * scopes' history.
   *
   * @example
   *   const ack = await client.narrow(['ke/muranga/kiharu/ward-5', 'ke/muranga/kiharu/ward-6']);
   */
  async narrow(scopes: string[] | null): Promise<NarrowAck> {
    this.narrowed = scopes === null ? undefined : [...scopes];
    const transport = this.connection.currentTransport;
    if (!transport) return scopes === null ? { ok: true } : { ok: true, scopes: [...scopes] };
    const ack = await transport.narrow(scopes);
    if (ack.ok) this.narrowed = ack.scopes;
    return ack;
  }

  async unsubscribe(channel: string): Promise<SubscribeAck> {
    this.channels.delete(channel);
    const transport = this.connection.currentTransport;
    if (!transport) return { ok: true, channel };
    return transport.unsubscribe(channel);
  }

  private async resume(): Promise<ResumeRequest | undefined> {
    const position = await this.positions.get();
    const channels = [...this.channels];
    const narrow = this.narrowed;
    if (position === undefined && channels.length === 0 && narrow === undefined) return undefined;
    return {
      ...(position === undefined ? {} : { position }),
      ...(channels.length === 0 ? {} : { channels }),
      ...(narrow === undefined ? {} : { narrow }),
    };
  }

  private handleSession(payload: SessionCreatedPayload, transport: Transport): void {
    this.lastSession = payload;
    if (payload.position !== undefined) this.positions.set(payload.position);
    this.lifecycle.emit('session', payload);
    if (payload.recovered !== undefined)
      this.lifecycle.emit('recovery', { recovered: payload.recovered, position: payload.position });
    this.outbox.setTransport(transport);
    // Receipts held while disconnected go out on the new connection.
    this.receipts?.flush();
    for (const channel of this.channels) {
      transport.subscribe(channel).then(
        (ack) => {
          if (!ack.ok) this.channels.delete(channel);
        },
        () => undefined, // The connection is gone; the next session subscribes again.
      );
    }
  }

  private dispatch(
    name: string,
    data: Record<string, unknown>,
    id: string | undefined,
    transport: Transport,
    position?: string,
  ): void {
    if (position !== undefined) this.positions.set(position);
    if (id === undefined) {
      this.runHandlers(name, data, id, transport);
      return;
    }
    // A repeat (recovery after a live copy) was handled before: it is acknowledged, not handled again.
    if (!this.recent.seen(id)) this.runHandlers(name, data, id, transport);
    this.receipts?.add(id);
  }

  private runHandlers(name: string, data: Record<string, unknown>, id: string | undefined, transport: Transport): void {
    const set = this.handlers.get(name);
    if (!set) return;
    const meta: EventMeta = { id, event: name, transport: transport.kind };
    for (const handler of [...set]) {
      try {
        (handler as (data: Record<string, unknown>, meta: EventMeta) => void)(data, meta);
      } catch (error) {
        console.error('tether: event handler threw', error);
      }
    }
  }
}

function pickTransport(options: RealtimeClientOptions): TransportFactory {
  const choice = options.transport ?? 'socket.io';
  if (typeof choice === 'function') return choice;
  if (choice === 'ws') return wsTransport(options.ws);
  if (choice === 'socket.io') return socketIoTransport(options.socketIo);
  throw new TetherError('VALIDATION_FAILED', `Unknown transport: ${String(choice)}`);
}
