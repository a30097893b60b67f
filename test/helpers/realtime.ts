import { once } from 'node:events';
import type { ErrorBody, SessionCreatedPayload } from '@tether/protocol';
import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';

/** Generous default: the machine has two cores and runs test files in parallel. */
export const WAIT_MS = 10_000;

/** Resolves with the first value `check` returns, re-checked on every `poke`; rejects after `ms`. */
export function waitUntil<T>(
  what: string,
  check: () => T | undefined,
  subscribe: (poke: () => void) => () => void,
  ms = WAIT_MS,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const first = check();
    if (first !== undefined) return resolve(first);
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const unsubscribe = subscribe(() => {
      const value = check();
      if (value === undefined) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Socket.IO

export interface SioOptions {
  auth?: Record<string, unknown>;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  transports?: ('websocket' | 'polling')[];
}

/** A socket.io-client socket that records every event it receives. */
export class SioClient {
  readonly socket: Socket;
  readonly received: Array<{ event: string; args: unknown[]; at: number }> = [];
  private readonly pokes = new Set<() => void>();
  disconnectReason: string | undefined;

  constructor(url: string, options: SioOptions = {}) {
    this.socket = io(url, {
      path: '/socket.io',
      transports: options.transports ?? ['websocket'],
      auth: options.auth ?? {},
      extraHeaders: options.headers ?? {},
      query: options.query ?? {},
      reconnection: false,
      forceNew: true,
      timeout: WAIT_MS,
    });
    this.socket.onAny((event: string, ...args: unknown[]) => this.record(event, args));
    this.socket.on('connect_error', (err: Error & { data?: unknown }) =>
      this.record('connect_error', [{ message: err.message, data: err.data }]),
    );
    this.socket.on('disconnect', (reason: string) => {
      this.disconnectReason = reason;
      this.record('disconnect', [reason]);
    });
  }

  /** session_created, or throws with the connect_error code. */
  async session(): Promise<SessionCreatedPayload> {
    const first = await this.next((e) => e.event === 'session_created' || e.event === 'connect_error');
    if (first.event === 'connect_error') {
      const err = first.args[0] as { message: string; data?: ErrorBody };
      throw Object.assign(new Error(err.message), { data: err.data });
    }
    return first.args[0] as SessionCreatedPayload;
  }

  /** The connect_error refusal ({message, data}); fails if the handshake was accepted. */
  async refusal(): Promise<{ message: string; data: ErrorBody }> {
    const first = await this.next((e) => e.event === 'session_created' || e.event === 'connect_error');
    if (first.event !== 'connect_error') throw new Error('expected connect_error, got session_created');
    return first.args[0] as { message: string; data: ErrorBody };
  }

  /** The first recorded event matching `match` (already received or future). */
  next(
    match: (e: { event: string; args: unknown[] }) => boolean,
    ms = WAIT_MS,
  ): Promise<{ event: string; args: unknown[]; at: number }> {
    return waitUntil(
      'a Socket.IO event',
      () => this.received.find(match),
      (poke) => this.subscribe(poke),
      ms,
    );
  }

  /** First argument of the first `event`. */
  async first<T = Record<string, unknown>>(event: string, ms = WAIT_MS): Promise<T> {
    return (await this.next((e) => e.event === event, ms)).args[0] as T;
  }

  count(event: string): number {
    return this.received.filter((e) => e.event === event).length;
  }

  all<T = Record<string, unknown>>(event: string): T[] {
    return this.received.filter((e) => e.event === event).map((e) => e.args[0] as T);
  }

  /** Emits with an acknowledgement and resolves with it. */
  request<T>(event: string, payload: unknown): Promise<T> {
    return this.socket.timeout(WAIT_MS).emitWithAck(event, payload) as Promise<T>;
  }

  disconnected(ms = WAIT_MS): Promise<string> {
    return waitUntil(
      'disconnect',
      () => this.disconnectReason,
      (poke) => this.subscribe(poke),
      ms,
    );
  }

  close(): void {
    this.socket.disconnect();
  }

  subscribe(poke: () => void): () => void {
    this.pokes.add(poke);
    return () => this.pokes.delete(poke);
  }

  private record(event: string, args: unknown[]): void {
    this.received.push({ event, args, at: Date.now() });
    for (const poke of [...this.pokes]) poke();
  }
}

// ---------------------------------------------------------------------------------------------
// Plain WebSocket

export type Frame = { type: string } & Record<string, unknown>;

export interface WsOptions {
  headers?: Record<string, string>;
  protocols?: string[];
  autoPong?: boolean;
  path?: string;
}

/** A `ws` client on `/ws` that records every frame it receives. */
export class WsClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  /** When each frame arrived (ms since the epoch). */
  readonly arrivals = new Map<Frame, number>();
  closeInfo: { code: number; reason: string; at: number } | undefined;
  private readonly pokes = new Set<() => void>();

  constructor(url: string, options: WsOptions = {}) {
    const wsUrl = url.replace(/^http/, 'ws') + (options.path ?? '/ws');
    this.ws = new WebSocket(wsUrl, options.protocols ?? [], {
      headers: options.headers ?? {},
      autoPong: options.autoPong ?? true,
    });
    this.ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        const frame = JSON.parse(data.toString()) as Frame;
        this.frames.push(frame);
        this.arrivals.set(frame, Date.now());
      }
      this.poke();
    });
    this.ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString(), at: Date.now() };
      this.poke();
    });
    this.ws.on('error', () => this.poke());
  }

  async opened(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return;
    await once(this.ws, 'open');
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  next(match: (f: Frame) => boolean, ms = WAIT_MS): Promise<Frame> {
    return waitUntil(
      'a /ws frame',
      () => this.frames.find(match),
      (poke) => this.subscribe(poke),
      ms,
    );
  }

  /** The `index`-th (0-based) frame of `type`, waiting until it arrives. */
  nth(type: string, index: number, ms = WAIT_MS): Promise<Frame> {
    return waitUntil(
      `frame ${type} #${index}`,
      () => this.frames.filter((f) => f.type === type)[index],
      (poke) => this.subscribe(poke),
      ms,
    );
  }

  first(type: string, ms = WAIT_MS): Promise<Frame> {
    return this.next((f) => f.type === type, ms);
  }

  count(type: string, match: (f: Frame) => boolean = () => true): number {
    return this.frames.filter((f) => f.type === type && match(f)).length;
  }

  closed(ms = WAIT_MS): Promise<{ code: number; reason: string; at: number }> {
    return waitUntil(
      '/ws close',
      () => this.closeInfo,
      (poke) => this.subscribe(poke),
      ms,
    );
  }

  close(): void {
    this.ws.close();
  }

  subscribe(poke: () => void): () => void {
    this.pokes.add(poke);
    return () => this.pokes.delete(poke);
  }

  private poke(): void {
    for (const p of [...this.pokes]) p();
  }
}

/**
 * Re-checks `check` every 20 ms until it holds, for server-side effects no client event announces
 * (e.g. the hub forgetting a session after the TCP connection died).
 */
export async function eventually(what: string, check: () => boolean, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
