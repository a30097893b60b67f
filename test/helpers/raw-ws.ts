import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { WAIT_MS, waitUntil, type Frame } from './realtime.js';

export interface RawWsOptions {
  path?: string;
  headers?: Record<string, string>;
  /**
   * Send the upgrade request without its final blank line; `finish()` sends it. A connection in the
   * middle of a request is not idle, so `server.close()` leaves it open: a way to reach the server
   * after it stopped listening.
   */
  hold?: boolean;
}

/**
 * A WebSocket client on a bare TCP socket (`/ws`, or engine.io's websocket transport with `path`),
 * for what the `ws` client cannot do: stop reading for good
 * (`stopReading()`: its closing handshake never completes), or hold its upgrade request half-sent.
 * It answers a close frame with a close frame, as a well-behaved client does.
 */
export class RawWs {
  readonly socket: Socket;
  /** HTTP status of the answer to the upgrade, once its head has arrived. */
  status: number | undefined;
  /** Every text frame received. */
  readonly texts: string[] = [];
  /** The text frames that are Tether `/ws` frames (JSON objects with a `type`). */
  readonly frames: Frame[] = [];
  /** The close frame's code, once one arrived. */
  closeCode: number | undefined;
  /** The TCP connection is gone (closed by either side, or refused). */
  ended = false;
  /** The socket error, if any (`ECONNREFUSED`: nothing listens any more; `ECONNRESET`: reset by the peer). */
  errorCode: string | undefined;
  /** When the client was made, and when its request was completely sent, in performance.now() ms. */
  readonly createdAt = performance.now();
  sentAt: number | undefined;
  /** When the close frame (or the end of the connection) came, in performance.now() ms. */
  settledAt: number | undefined;
  private buffer = Buffer.alloc(0);
  private headDone = false;
  private readonly pokes = new Set<() => void>();
  private readonly connected: Promise<void>;

  constructor(port: number, options: RawWsOptions = {}) {
    const headers = {
      host: `127.0.0.1:${port}`,
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': randomBytes(16).toString('base64'),
      'sec-websocket-version': '13',
      ...options.headers,
    };
    const head =
      `GET ${options.path ?? '/ws'} HTTP/1.1\r\n` +
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
    this.socket = connect(port, '127.0.0.1');
    this.connected = new Promise<void>((resolve) => {
      this.socket.once('connect', () => {
        this.socket.write(head, () => resolve());
        if (options.hold !== true) this.finish();
      });
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => (this.errorCode ??= err.code ?? err.message));
    this.socket.on('close', () => {
      this.ended = true;
      this.settledAt ??= performance.now();
      this.poke();
    });
  }

  /** Resolves once the request (or, held, its head) is on the wire. */
  ready(): Promise<void> {
    return this.connected;
  }

  /** Sends the rest of a held request. */
  finish(): void {
    this.socket.write('\r\n', () => {
      this.sentAt = performance.now();
      this.poke();
    });
  }

  /** Stops reading from the socket for good: the server's writes pile up and its close frame is never answered. */
  stopReading(): void {
    this.socket.pause();
  }

  /**
   * Ms from the request being sent (or, refused before it was, from the client being made) to the
   * close frame or the end of the connection.
   */
  settleMs(): number | undefined {
    if (this.settledAt === undefined) return undefined;
    return this.settledAt - (this.sentAt ?? this.createdAt);
  }

  /**
   * How a `/ws` upgrade made during a shutdown ended: `answered` (101, `server_shutdown` first, close
   * 1012), `refused` by the peer's kernel (`ECONNREFUSED`/`ECONNRESET`: nothing listens any more), or
   * `other` — which includes a connection closed without a word.
   */
  shutdownOutcome(): 'answered' | 'refused' | 'other' {
    if (this.status === 101 && this.frames[0]?.type === 'server_shutdown' && this.closeCode === 1012) return 'answered';
    if (this.status === undefined && (this.errorCode === 'ECONNREFUSED' || this.errorCode === 'ECONNRESET')) {
      return 'refused';
    }
    return 'other';
  }

  first(type: string, ms = WAIT_MS): Promise<Frame> {
    return this.until(`raw /ws frame ${type}`, () => this.frames.find((f) => f.type === type), ms);
  }

  /** The first text frame `match` accepts (engine.io packets, say). */
  text(match: (text: string) => boolean, ms = WAIT_MS): Promise<string> {
    return this.until('raw text frame', () => this.texts.find(match), ms);
  }

  /** Resolves once the server sent a close frame or the connection ended, whichever is first. */
  settled(ms = WAIT_MS): Promise<true> {
    return this.until(
      'raw /ws close or end',
      () => (this.closeCode !== undefined || this.ended ? true : undefined),
      ms,
    );
  }

  destroy(): void {
    this.socket.destroy();
  }

  private until<T>(what: string, check: () => T | undefined, ms: number): Promise<T> {
    return waitUntil(
      what,
      check,
      (poke) => {
        this.pokes.add(poke);
        return () => this.pokes.delete(poke);
      },
      ms,
    );
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (!this.headDone) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buffer.subarray(0, end).toString('latin1');
      this.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      this.headDone = true;
      this.buffer = this.buffer.subarray(end + 4);
    }
    if (this.status === 101) this.readFrames();
    this.poke();
  }

  /** Server frames are unmasked and, from Tether, never fragmented. */
  private readFrames(): void {
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      const opcode = b[0]! & 0x0f;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + length) return;
      const payload = b.subarray(offset, offset + length);
      this.buffer = b.subarray(offset + length);
      if (opcode === 0x1) this.onText(payload.toString('utf8'));
      if (opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.settledAt ??= performance.now();
        this.echoClose();
      }
    }
  }

  private onText(text: string): void {
    this.texts.push(text);
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value === 'object' && value !== null && 'type' in value) this.frames.push(value as Frame);
    } catch {
      // Not JSON: an engine.io packet, say ("0{…}", "42[…]"); kept in `texts`.
    }
  }

  /** Sends a text frame (client frames are masked). */
  sendText(text: string): void {
    this.socket.write(clientFrame(0x1, Buffer.from(text, 'utf8')));
  }

  private echoClose(): void {
    if (this.socket.writableEnded) return;
    const code = Buffer.alloc(2);
    code.writeUInt16BE(this.closeCode ?? 1000);
    this.socket.end(clientFrame(0x8, code));
  }

  private poke(): void {
    for (const poke of [...this.pokes]) poke();
  }
}

/** One masked client frame (payloads under 64 KiB). */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  const length =
    payload.length < 126
      ? Buffer.from([0x80 | payload.length])
      : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([Buffer.from([0x80 | opcode]), length, mask, masked]);
}
