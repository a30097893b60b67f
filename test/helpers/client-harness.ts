/**
 * Support for the client SDK's behaviour tests (`test/client-*.test.ts`): a TCP proxy whose
 * network can be cut and restored, a provisioned user, a client wired to a real gateway, and a
 * record of every token the gateway was asked to verify.
 */
import { randomUUID } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pipeBoth } from './tcp-pipe.js';
import {
  RealtimeClient,
  TokenManager,
  createPlatform,
  tokenExpiry,
  type SocketIoExtraOptions,
  type StateChange,
  type TransportKind,
  type WebSocketConstructor,
} from '@tether/client';
import { WebSocket } from 'ws';
import type { TestGateway } from './gateway.js';

/** A TCP forwarder to the gateway. `cut()` drops every connection and refuses new ones until `restore()`. */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private down = false;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const proxy = new TcpProxy(server, `http://127.0.0.1:${port}`);
    server.on('connection', (client) => proxy.forward(client, targetPort));
    return proxy;
  }

  private forward(client: Socket, targetPort: number): void {
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    pipeBoth(client, upstream, this.sockets);
  }

  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface Presented {
  /** `exp` of the token, in ms. */
  exp: number | undefined;
  /** When the gateway received it. */
  at: number;
}

/** Records every token the gateway verifies (handshakes and reauths), by wrapping its authenticator. */
export function recordPresentedTokens(gw: TestGateway): Presented[] {
  const seen: Presented[] = [];
  const authenticator = gw.internals.authenticator;
  const original = authenticator.authenticate.bind(authenticator);
  authenticator.authenticate = (token: string) => {
    seen.push({ exp: tokenExpiry(token), at: Date.now() });
    return original(token);
  };
  return seen;
}

/** Creates a built-in user and returns its credentials. */
export async function provisionUser(gw: TestGateway): Promise<{ id: string; email: string; password: string }> {
  const email = `u-${randomUUID()}@example.test`;
  const password = `pw-${randomUUID()}`;
  const res = await gw.api('POST', '/v1/users', {
    email,
    password,
    name: 'Client Test',
    role: 'user',
    scopes: ['ke/muranga'],
  });
  if (res.status !== 201) throw new Error(`creating a user failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: String(res.body.id), email, password };
}

export interface ClientUnderTest {
  tokens: TokenManager;
  client: RealtimeClient;
  changes: StateChange[];
  close(): void;
}

/**
 * A logged-in client. `httpUrl` is where the token manager talks (the gateway, or a proxy to cut
 * refreshes only); `realtimeUrl` is where the socket goes.
 */
export async function loggedInClient(
  transport: TransportKind,
  user: { email: string; password: string },
  urls: { httpUrl: string; realtimeUrl: string },
  options: { maxRefreshAttempts?: number; narrow?: string[]; socketIo?: SocketIoExtraOptions } = {},
): Promise<ClientUnderTest> {
  const platform = createPlatform({ WebSocket: WebSocket as unknown as WebSocketConstructor });
  const tokens = new TokenManager({
    baseUrl: urls.httpUrl,
    platform,
    retry: { minMs: 200, maxMs: 1_000 },
    maxRefreshAttempts: options.maxRefreshAttempts ?? 3,
  });
  await tokens.login(user.email, user.password);
  const client = new RealtimeClient({
    url: urls.realtimeUrl,
    tokens,
    transport,
    backoff: { minMs: 200, maxMs: 1_000 },
    suspendAfterAttempts: 1_000,
    ...(options.narrow === undefined ? {} : { narrow: options.narrow }),
    ...(options.socketIo === undefined ? {} : { socketIo: options.socketIo }),
  });
  const changes: StateChange[] = [];
  client.onState((c) => changes.push(c));
  return {
    tokens,
    client,
    changes,
    close() {
      client.dispose();
      tokens.dispose();
    },
  };
}

/** Resolves when `check` holds, re-checked on each state change and every 50 ms; rejects after `ms`. */
export function eventually(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      if (check()) return resolve();
      if (Date.now() - started > ms) return reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

/** Resolves on the client's next transition into `state` (or at once if already there). */
export function reaches(c: ClientUnderTest, state: StateChange['current'], ms = 15_000): Promise<StateChange | null> {
  if (c.client.state === state) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(
        new Error(`timed out after ${ms} ms waiting for ${state}; saw ${c.changes.map((x) => x.current).join(' → ')}`),
      );
    }, ms);
    const off = c.client.onState((change) => {
      if (change.current !== state) return;
      clearTimeout(timer);
      off();
      resolve(change);
    });
  });
}
