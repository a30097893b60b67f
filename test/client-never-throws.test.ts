import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  RealtimeClient,
  TokenManager,
  createPlatform,
  socketIoTransport,
  wsTransport,
  type RealtimeClientOptions,
  type TransportFactory,
  type TransportKind,
  type WebSocketConstructor,
} from '@tether/client';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { eventually, reaches, type ClientUnderTest } from './helpers/client-harness.js';

/**
 * The SDK runs inside someone else's process: whatever state it is closed in, and whatever the
 * app's listeners do, nothing may escape as an uncaught exception or an unhandled rejection (in
 * Node either one can end the host app).
 */
const transports: TransportKind[] = ['socket.io', 'ws'];
const platform = createPlatform({ WebSocket: WebSocket as unknown as WebSocketConstructor });

/**
 * A TCP endpoint that keeps count of its connections: it forwards to `targetPort`, or, with null,
 * accepts and never answers (a half-dead gateway). `idle()` resolves once every connection is
 * closed: by then the client has torn its socket down, and whatever its WebSocket library emits
 * on the way out (ws emits `error` on a socket closed while CONNECTING) has been emitted.
 */
class TcpTap {
  private readonly sockets = new Set<Socket>();
  private readonly onChange = new Set<() => void>();
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(targetPort: number | null): Promise<TcpTap> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const tap = new TcpTap(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('connection', (client) => tap.accept(client, targetPort));
    return tap;
  }

  private accept(client: Socket, targetPort: number | null): void {
    this.accepted++;
    this.sockets.add(client);
    const pair = targetPort === null ? [client] : [client, connect(targetPort, '127.0.0.1')];
    for (const s of pair) {
      s.on('error', () => pair.forEach((p) => p.destroy()));
      s.on('close', () => pair.forEach((p) => p.destroy()));
    }
    client.on('close', () => {
      this.sockets.delete(client);
      this.changed();
    });
    if (pair[1]) {
      client.pipe(pair[1]);
      pair[1].pipe(client);
    } else {
      client.resume(); // read (and drop) the handshake: a socket nobody reads never notices the peer left
    }
    this.changed();
  }

  private changed(): void {
    for (const listener of [...this.onChange]) listener();
  }

  /** Resolves when `check` holds, re-checked on every connection opened or closed. */
  private until(check: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const listener = (): void => {
        if (!check()) return;
        this.onChange.delete(listener);
        resolve();
      };
      this.onChange.add(listener);
      listener();
    });
  }

  /** Resolves once `n` connections in all have been accepted. */
  connections(n: number): Promise<void> {
    return this.until(() => this.accepted >= n);
  }

  idle(): Promise<void> {
    return this.until(() => this.sockets.size === 0);
  }

  /** Drops every connection (the gateway "goes away"); new ones are still accepted. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Counts what would have crashed (or warned in) the host process while a test runs. */
class HostProcess {
  readonly uncaught: string[] = [];
  readonly rejections: string[] = [];
  private readonly onUncaught = (error: Error): void => void this.uncaught.push(String(error.stack ?? error));
  private readonly onRejection = (reason: unknown): void =>
    void this.rejections.push(String(reason instanceof Error ? reason.stack : reason));

  install(): void {
    this.uncaught.length = 0;
    this.rejections.length = 0;
    process.on('uncaughtException', this.onUncaught);
    process.on('unhandledRejection', this.onRejection);
  }

  remove(): void {
    process.off('uncaughtException', this.onUncaught);
    process.off('unhandledRejection', this.onRejection);
  }
}

/** A transport factory that calls `opened()` right after the transport starts opening its socket. */
function announcing(factory: TransportFactory, opened: () => void): TransportFactory {
  return (options) => {
    const inner = factory(options);
    return {
      kind: inner.kind,
      open(token, resume) {
        inner.open(token, resume);
        opened();
      },
      reauth: (token) => inner.reauth(token),
      subscribe: (channel) => inner.subscribe(channel),
      narrow: (scopes) => inner.narrow(scopes),
      unsubscribe: (channel) => inner.unsubscribe(channel),
      send: (request) => inner.send(request),
      close: () => inner.close(),
    };
  };
}

/** Lets I/O callbacks and ticks queued by a close run: a crash they cause lands before the assertions. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ AUTH_RATE_PER_MINUTE: '1000' });
});
afterAll(async () => {
  await gw?.close();
});

describe.each(transports)('client SDK over %s never throws into the host', (transport) => {
  const host = new HostProcess();
  const taps: TcpTap[] = [];
  const open: ClientUnderTest[] = [];
  let gateway: TcpTap;
  let silent: TcpTap;

  beforeEach(async () => {
    host.install();
    gateway = await TcpTap.start(gw.port);
    silent = await TcpTap.start(null);
    taps.push(gateway, silent);
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    for (const tap of taps.splice(0)) await tap.close();
    host.remove();
  });

  /** A client of `url`; the token comes from "the app backend" (the gateway's own key). */
  function client(url: string, options: Partial<RealtimeClientOptions> = {}, sub = `nt-${transport}`) {
    const tokens = new TokenManager({ baseUrl: gw.url, platform, getToken: async () => gw.sign({ sub }, 60) });
    const rc = new RealtimeClient({
      url,
      tokens,
      transport,
      backoff: { minMs: 50, maxMs: 100 },
      // Long enough for a loaded machine to finish a real handshake, short enough to fire in the silent-server tests.
      sessionTimeoutMs: 5_000,
      ...options,
    });
    const c: ClientUnderTest = {
      tokens,
      client: rc,
      changes: [],
      close() {
        rc.dispose();
        tokens.dispose();
      },
    };
    rc.onState((change) => c.changes.push(change));
    open.push(c);
    return c;
  }

  /** Closes `c`, waits until its connections are gone, and checks the host saw nothing. */
  async function closeAndCheck(c: ClientUnderTest, ...via: TcpTap[]): Promise<void> {
    c.client.close();
    expect(c.client.state).toBe('disconnected');
    for (const tap of via) await tap.idle();
    await turn();
    expect(host.uncaught).toEqual([]);
    expect(host.rejections).toEqual([]);
  }

  it('closing a client that never connected (disconnected) throws nothing, also twice', async () => {
    const c = client(gateway.url);
    c.client.close();
    await closeAndCheck(c);
  });

  it('closing as soon as it is connecting, before a socket exists, throws nothing and opens no socket', async () => {
    const c = client(gateway.url);
    c.client.connect();
    expect(c.client.state).toBe('connecting');
    await closeAndCheck(c, gateway);
    expect(c.changes.map((x) => x.current)).toEqual(['connecting', 'disconnected']);
  });

  it('closing while the socket to a real gateway is still opening throws nothing', async () => {
    let opened!: () => void;
    const socketOpening = new Promise<void>((resolve) => (opened = resolve));
    const base = transport === 'ws' ? wsTransport() : socketIoTransport();
    const c = client(gateway.url, { transport: announcing(base, opened) });
    c.client.connect();
    await socketOpening; // no I/O has run since: the socket is still CONNECTING
    expect(c.client.state).toBe('connecting');
    await closeAndCheck(c, gateway);
  });

  it('closing while authenticating (socket open, no session yet), from a state listener, throws nothing', async () => {
    const c = client(gateway.url);
    // From inside the listener: the session may be in the same TCP read as the socket's opening.
    c.client.onState(({ current }) => {
      if (current === 'authenticating') c.client.close();
    });
    c.client.connect();
    await reaches(c, 'disconnected');
    await closeAndCheck(c, gateway);
    expect(c.changes.map((x) => x.current)).toEqual(['connecting', 'authenticating', 'disconnected']);
  });

  it('closing a connected client throws nothing', async () => {
    const c = client(gateway.url);
    c.client.connect();
    await reaches(c, 'connected');
    await closeAndCheck(c, gateway);
  });

  it('closing while reconnecting after the gateway dropped the connection throws nothing', async () => {
    const c = client(gateway.url, { backoff: { minMs: 10_000, maxMs: 10_000 } });
    c.client.connect();
    await reaches(c, 'connected');
    gateway.cut();
    await reaches(c, 'reconnecting');
    await gateway.idle();
    await closeAndCheck(c, gateway);
  });

  it('closing while connecting to a server that accepts TCP and never answers throws nothing', async () => {
    const c = client(silent.url);
    c.client.connect();
    await silent.connections(1);
    expect(c.client.state).toBe('connecting');
    await closeAndCheck(c, silent);
  });

  it('the session timeout against a silent server tears the opening socket down without throwing', async () => {
    // The reported crash: the timeout's retry closes a socket still CONNECTING.
    const c = client(silent.url, { sessionTimeoutMs: 200 });
    c.client.connect();
    const retrying = await reaches(c, 'reconnecting');
    expect(retrying?.reason).toBe('session_created timeout');
    await silent.idle();
    await turn();
    expect(host.uncaught).toEqual([]);
    // The next attempt times out too, and a client closed after all that still throws nothing.
    await silent.connections(2);
    await reaches(c, 'reconnecting');
    await closeAndCheck(c, silent);
  });

  it('closing while suspended after repeated timeouts throws nothing', async () => {
    const c = client(silent.url, { sessionTimeoutMs: 200, suspendAfterAttempts: 1, suspendedRetryMs: 60_000 });
    c.client.connect();
    await reaches(c, 'suspended');
    await closeAndCheck(c, silent);
  });

  it('closing a failed client (token refused) throws nothing', async () => {
    const c = client(gateway.url);
    await c.tokens.setSession({ accessToken: 'not.a.token' });
    c.client.connect();
    await reaches(c, 'failed');
    await closeAndCheck(c, gateway);
  });

  it('app listeners that throw are reported, and the client still connects, reconnects and closes cleanly', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const sub = `nt-listeners-${transport}`;
      const c = client(gateway.url, {}, sub);
      const boom = (): never => {
        throw new Error('a bug in the app');
      };
      c.client.onState(boom);
      c.client.onSession(boom);
      c.client.onRecovery(boom);
      c.client.onAuth(boom);
      c.client.on('note', boom);
      const got: unknown[] = [];
      c.client.on('note', (data) => void got.push(data['n']));

      c.client.connect();
      await reaches(c, 'connected');
      await gw.gateway.publish({ event: 'note', data: { n: 1 }, to: { users: [sub] } });
      await eventually('the event, past the throwing handler', () => got.length === 1);
      gateway.cut();
      await reaches(c, 'reconnecting');
      await reaches(c, 'connected');
      await closeAndCheck(c, gateway);
      const states = c.changes.map((x) => x.current);
      expect(states.filter((s) => s === 'connected')).toHaveLength(2);
      expect(states.at(-1)).toBe('disconnected');
      expect(reported).toHaveBeenCalled();
    } finally {
      reported.mockRestore();
    }
  });
});
