import { Writable } from 'node:stream';
import { ERRORS, TetherError } from '@tether/protocol';
import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { startGateway, type Env, type TestGateway } from './gateway.js';
import { SioClient, waitUntil, WsClient, WAIT_MS } from './realtime.js';

/** Close codes a server close may carry: normal, or one of the registry's. */
export const REGISTRY_CLOSE_CODES = new Set<number>([1000, ...Object.values(ERRORS).map((e) => e.closeCode)]);

export function isRegistryCode(code: unknown): boolean {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** Log lines at error level or above (pino: 50 error, 60 fatal), as they are written. */
export class SevereLogs {
  readonly lines: string[] = [];
  readonly destination = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (/"level":(5|6)\d/.test(line)) this.lines.push(line.slice(0, 2_000));
      }
      done();
    },
  });
}

/** Errors nobody caught anywhere in this process (the gateway runs in it). */
export class Uncaught {
  readonly errors: unknown[] = [];
  private readonly record = (err: unknown): void => void this.errors.push(err);

  start(): void {
    process.on('uncaughtException', this.record);
    process.on('unhandledRejection', this.record);
  }

  stop(): void {
    process.off('uncaughtException', this.record);
    process.off('unhandledRejection', this.record);
  }
}

/**
 * A gateway for fuzzing: limits that would cut a fuzzing connection off (inbound rate, reauth
 * rate, connect rate, connections per user) raised, so inputs reach the code behind them; the login
 * throttle left as it is (beyond it, a coded 429 is the answer, and password hashing stays rare).
 */
export async function startFuzzGateway(logs: SevereLogs, env: Env = {}): Promise<TestGateway> {
  const gw = await startGateway(
    {
      LOG_LEVEL: 'info',
      CONNECT_RATE_PER_IP: '100000',
      INBOUND_BURST: '100000',
      INBOUND_RATE_PER_SECOND: '100000',
      REAUTH_RATE_PER_MINUTE: '100000',
      MAX_CONNECTIONS_PER_USER: '1000',
      JWT_EXPIRATION_SECONDS: '3600',
      ...env,
    },
    { logDestination: logs.destination },
  );
  gw.gateway.onClientEvent('chat', (_ctx, data) => ({ kind: typeof data }));
  gw.gateway.onClientEvent('strict', () => {
    throw new TetherError('VALIDATION_FAILED', 'text is required');
  });
  return gw;
}

/** Two well-behaved clients, one per transport, that must keep receiving what is published to them. */
export class HonestClients {
  private marker = 0;
  private constructor(
    private readonly gw: TestGateway,
    readonly ws: WsClient,
    readonly sio: SioClient,
  ) {}

  static async connect(gw: TestGateway): Promise<HonestClients> {
    const ws = new WsClient(gw.url, { headers: { authorization: `Bearer ${gw.sign({ sub: 'honest-ws' })}` } });
    const sio = new SioClient(gw.url, { auth: { token: gw.sign({ sub: 'honest-sio' }) } });
    await Promise.all([ws.first('session_created'), sio.session()]);
    return new HonestClients(gw, ws, sio);
  }

  /** Publishes to both and waits until both have it; returns how many markers were delivered so far. */
  async check(): Promise<number> {
    const n = ++this.marker;
    const answer = await this.gw.api('POST', '/v1/publish', {
      event: 'honest',
      data: { n },
      to: { users: ['honest-ws', 'honest-sio'] },
    });
    if (answer.status !== 202) throw new Error(`publish to the honest clients answered ${answer.status}`);
    await Promise.all([
      this.ws.next((f) => f.type === 'event' && (f.data as { n?: number }).n === n),
      this.sio.next((e) => e.event === 'honest' && (e.args[0] as { n?: number }).n === n),
    ]);
    if (this.ws.closeInfo !== undefined || !this.sio.socket.connected) throw new Error('an honest client was dropped');
    return n;
  }

  close(): void {
    this.ws.close();
    this.sio.close();
  }
}

/** What one fuzzing connection saw that breaks the rules (an uncoded answer, a bad close). */
export type Violations = string[];

/**
 * An authenticated `/ws` connection that counts the answers to its frames: every frame sent after
 * `session_created` gets exactly one (`error`, `*_ack`, `reauth_*`, `subscribed`…), events aside.
 */
export class FuzzWs {
  answers = 0;
  closed: { code: number; reason: string } | undefined;
  private readonly pokes = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {}

  static async open(url: string, token: string, violations: Violations): Promise<FuzzWs> {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws', { headers: { authorization: `Bearer ${token}` } });
    const conn = new FuzzWs(ws);
    let ready = false;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return violations.push('binary frame from the server');
      const frame = JSON.parse(data.toString()) as { type: string; code?: unknown };
      if ('code' in frame && !isRegistryCode(frame.code)) violations.push(`uncoded answer ${data.toString()}`);
      if (frame.type === 'session_created') ready = true;
      else if (ANSWER_TYPES.has(frame.type)) conn.answers++;
      conn.poke();
    });
    ws.on('close', (code, reason) => {
      conn.closed = { code, reason: reason.toString() };
      if (!REGISTRY_CLOSE_CODES.has(code)) violations.push(`/ws closed with ${code} ${reason.toString()}`);
      conn.poke();
    });
    ws.on('error', () => conn.poke());
    await conn.until('session_created', () => ready || conn.closed !== undefined);
    if (!ready) throw new Error(`fuzzing /ws connection refused: ${JSON.stringify(conn.closed)}`);
    return conn;
  }

  /** Resolves once `count` answers arrived, or the server closed the connection. */
  answered(count: number): Promise<void> {
    return this.until(
      `${count} answers (have ${this.answers})`,
      () => this.answers >= count || this.closed !== undefined,
    );
  }

  private until(what: string, done: () => boolean): Promise<void> {
    return waitUntil(
      what,
      () => (done() ? true : undefined),
      (poke) => {
        this.pokes.add(poke);
        return () => this.pokes.delete(poke);
      },
    ).then(() => undefined);
  }

  private poke(): void {
    for (const p of [...this.pokes]) p();
  }
}

const ANSWER_TYPES = new Set([
  'error',
  'reauth_ok',
  'reauth_error',
  'send_ack',
  'subscribed',
  'unsubscribed',
  'subscribe_error',
  'narrowed',
  'narrow_error',
]);

/**
 * A Socket.IO connection that can write any packet (socket.io-client refuses reserved event names
 * and cannot send malformed packets) and collects the acknowledgements to its own ack ids.
 */
export class FuzzSio {
  readonly acks = new Map<number, unknown[]>();
  disconnectReason: string | undefined;
  private nextId = 1_000_000;
  private readonly pokes = new Set<() => void>();

  private constructor(readonly socket: Socket) {}

  static async open(url: string, token: string): Promise<FuzzSio> {
    const socket = io(url, {
      path: '/socket.io',
      transports: ['websocket'],
      auth: { token },
      reconnection: false,
      forceNew: true,
      timeout: WAIT_MS,
    });
    const conn = new FuzzSio(socket);
    socket.on('disconnect', (reason) => {
      conn.disconnectReason = reason;
      conn.poke();
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('session_created', () => resolve());
      socket.once('connect_error', (err) => reject(err));
    });
    // Engine-level messages: `3<id>[…]` is an ack to the packet with that id on the main namespace.
    socket.io.engine.on('message', (data: unknown) => {
      if (typeof data !== 'string') return;
      const match = /^3(\d+)(\[[\s\S]*)$/.exec(data);
      if (match === null) return;
      conn.acks.set(Number(match[1]), JSON.parse(match[2]!) as unknown[]);
      conn.poke();
    });
    return conn;
  }

  get connected(): boolean {
    return this.disconnectReason === undefined;
  }

  /** Writes one Socket.IO packet (without the engine.io `4`); returns its ack id when it asks for one. */
  event(name: unknown, args: unknown[], ack: boolean): number | undefined {
    const id = ack ? this.nextId++ : undefined;
    this.raw(`2${id ?? ''}${JSON.stringify([name, ...args])}`);
    return id;
  }

  /** The same with the payload already encoded as JSON text. */
  encodedEvent(name: string, payload: string, ack: boolean): number | undefined {
    const id = ack ? this.nextId++ : undefined;
    this.raw(`2${id ?? ''}[${JSON.stringify(name)},${payload}]`);
    return id;
  }

  raw(packet: string): void {
    (this.socket.io.engine as unknown as { send(data: string): void }).send(packet);
  }

  /** Resolves once every id has its ack, or the connection is gone. */
  acked(ids: number[]): Promise<void> {
    return waitUntil(
      `acks ${ids.filter((id) => !this.acks.has(id)).join(',')}`,
      () => (!this.connected || ids.every((id) => this.acks.has(id)) ? true : undefined),
      (poke) => {
        this.pokes.add(poke);
        return () => this.pokes.delete(poke);
      },
    ).then(() => undefined);
  }

  close(): void {
    this.socket.disconnect();
  }

  private poke(): void {
    for (const p of [...this.pokes]) p();
  }
}
