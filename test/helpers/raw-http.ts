import { connect, type Socket } from 'node:net';
import { WAIT_MS } from './realtime.js';

export interface RawAnswer {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test convenience: bodies are asserted field by field
  body: any;
}

/**
 * One HTTP/1.1 request on its own TCP connection, sent up to just before the blank line that ends
 * its head; `finish()` sends the rest. The server sees a request in progress, so `server.close()`
 * does not close the connection as idle: the request reaches the server after it stopped listening.
 */
export class HeldRequest {
  readonly socket: Socket;
  private readonly connected: Promise<void>;
  private readonly answered: Promise<RawAnswer>;

  constructor(
    port: number,
    method: string,
    path: string,
    headers: Record<string, string> = {},
    private readonly body = '',
  ) {
    const all = { host: `127.0.0.1:${port}`, 'content-length': String(Buffer.byteLength(body)), ...headers };
    const head =
      `${method} ${path} HTTP/1.1\r\n` +
      Object.entries(all)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
    this.socket = connect(port, '127.0.0.1');
    this.connected = new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => this.socket.write(head, () => resolve()));
      this.socket.once('error', reject);
    });
    this.answered = new Promise<RawAnswer>((resolve, reject) => {
      let buffer = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error(`no answer to ${method} ${path} within ${WAIT_MS} ms`)), WAIT_MS);
      const settle = (): void => {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [statusLine, ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const text = buffer.subarray(end + 4, end + 4 + length).toString('utf8');
        clearTimeout(timer);
        resolve({
          status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]),
          headers,
          body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined,
        });
      };
      this.socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        settle();
      });
      this.socket.on('close', () => reject(new Error(`connection closed without a full answer to ${method} ${path}`)));
    });
    this.answered.catch(() => undefined);
  }

  /** Resolves once the head (without its blank line) is on the wire. */
  ready(): Promise<void> {
    return this.connected;
  }

  finish(): void {
    this.socket.write('\r\n' + this.body);
  }

  answer(): Promise<RawAnswer> {
    return this.answered;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
