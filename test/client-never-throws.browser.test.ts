import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium } from './helpers/chromium.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type * as Tether from '@tether/client';
import { startGateway, type TestGateway } from './helpers/gateway.js';

/**
 * The browser bundle of the SDK, in a real Chromium: clients closed while connecting, connected,
 * stuck on a server that never answers, or after their session timeout, and app listeners that
 * throw, leave no page error and no unhandled rejection behind.
 */
const ROOT = join(import.meta.dirname, '..');
const BUNDLE = join(ROOT, 'packages/client/dist/browser/tether-client.js');
const PAGE = `<!doctype html><meta charset="utf-8"><title>tether</title>
<script type="module">import * as tether from '/tether-client.js'; window.tether = tether;</script>`;

/** What the page holds: the SDK, what went wrong, and helpers installed before any script runs. */
interface PageWindow {
  tether: typeof Tether;
  rejections: string[];
  /** Every WebSocket the page opened (both transports use the global constructor). */
  sockets: WebSocket[];
  client: Tether.RealtimeClient;
  /** States the current client went through. */
  states: string[];
  /** Resolves when the current client enters `state` (with `reason`, if given); rejects after 15 s. */
  reach(state: string, reason?: string): Promise<void>;
  /** Resolves once every socket the page opened has closed, and one task later. */
  settle(): Promise<void>;
}

/** Runs in the page before the bundle loads (serialized by Playwright: no imports in here). */
function instrument(): void {
  const w = window as unknown as PageWindow & { WebSocket: typeof WebSocket };
  w.rejections = [];
  w.sockets = [];
  w.states = [];
  addEventListener('unhandledrejection', (event) => w.rejections.push(String(event.reason)));
  const Native = w.WebSocket;
  w.WebSocket = class extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      w.sockets.push(this);
    }
  };
  w.reach = (state, reason) =>
    new Promise((resolve, reject) => {
      const deadline = setTimeout(() => {
        off();
        reject(new Error(`no ${state} within 15 s; saw ${w.states.join(' → ')}`));
      }, 15_000);
      const off = w.client.onState((change) => {
        if (change.current !== state || (reason !== undefined && change.reason !== reason)) return;
        clearTimeout(deadline);
        off();
        resolve();
      });
    });
  w.settle = async () => {
    const open = w.sockets.filter((s) => s.readyState !== Native.CLOSED);
    await Promise.all(open.map((s) => new Promise((resolve) => s.addEventListener('close', resolve, { once: true }))));
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
}

/** A server that accepts TCP connections and never answers. */
class SilentServer {
  accepted = 0;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<SilentServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const silent = new SilentServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('connection', (socket) => {
      silent.accepted++;
      silent.sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => silent.sockets.delete(socket));
      socket.resume(); // read and drop the handshake, never answer
      for (const wake of [...silent.waiters]) wake();
    });
    return silent;
  }

  /** Resolves once `n` connections in all have been accepted. */
  connections(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.accepted < n) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const transports: Tether.TransportKind[] = ['socket.io', 'ws'];

let gw: TestGateway;
let site: HttpServer;
let browser: Browser;

beforeAll(async () => {
  await promisify(execFile)(process.execPath, [join(ROOT, 'packages/client/scripts/build-browser.mjs')]);
  const [bundle, map] = await Promise.all([readFile(BUNDLE), readFile(`${BUNDLE}.map`)]);
  site = createHttpServer((req, res) => {
    if (req.url === '/tether-client.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    else if (req.url === '/tether-client.js.map') res.writeHead(200, { 'content-type': 'application/json' }).end(map);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  gw = await startGateway({ ALLOWED_ORIGINS: origin });
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
  await gw?.close();
});

describe.each(transports)('client SDK bundle over %s in Chromium never throws into the page', (transport) => {
  let context: BrowserContext;
  let page: Page;
  let silent: SilentServer;
  const pageErrors: string[] = [];

  beforeEach(async () => {
    pageErrors.length = 0;
    silent = await SilentServer.start();
    context = await browser.newContext();
    await context.addInitScript(instrument);
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.stack ?? error.message));
    await page.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => 'tether' in window);
  });
  afterEach(async () => {
    await context?.close();
    await silent?.close();
  });

  /** Creates the page's client (not yet connected). `announce`: resolve `opening` once its socket starts opening. */
  function newClient(url: string, options: { sessionTimeoutMs?: number; announce?: boolean } = {}): Promise<void> {
    const token = gw.sign({ sub: `browser-${transport}` }, 60);
    return page.evaluate(
      ({ transport, url, token, options }) => {
        const w = window as unknown as PageWindow & { opening: Promise<void> };
        const { RealtimeClient, TokenManager, socketIoTransport, wsTransport } = w.tether;
        const tokens = new TokenManager({ baseUrl: url, getToken: async () => token });
        let base: Tether.TransportFactory = transport === 'ws' ? wsTransport() : socketIoTransport();
        if (options.announce) {
          const inner = base;
          let opened = (): void => undefined;
          w.opening = new Promise((resolve) => (opened = resolve));
          base = (o) => {
            const t = inner(o);
            return {
              kind: t.kind,
              open: (tk, resume) => {
                t.open(tk, resume);
                opened();
              },
              reauth: (tk) => t.reauth(tk),
              subscribe: (c) => t.subscribe(c),
              narrow: (scopes) => t.narrow(scopes),
              unsubscribe: (c) => t.unsubscribe(c),
              send: (r) => t.send(r),
              close: () => t.close(),
            };
          };
        }
        w.client = new RealtimeClient({
          url,
          tokens,
          transport: base,
          backoff: { minMs: 60_000, maxMs: 60_000 }, // one attempt per test: the retry never comes
          sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
        });
        w.states = [];
        w.client.onState((change) => w.states.push(change.current));
      },
      { transport, url, token, options },
    );
  }

  /** Closes the page's client, waits until its sockets are closed, and checks the page saw nothing go wrong. */
  async function closeAndCheck(): Promise<void> {
    const rejections = await page.evaluate(async () => {
      const w = window as unknown as PageWindow;
      w.client.close();
      await w.settle();
      return w.rejections;
    });
    expect(rejections).toEqual([]);
    expect(pageErrors).toEqual([]);
  }

  it('closing while the socket to a real gateway is still opening leaves no page error', async () => {
    await newClient(gw.url, { announce: true });
    await page.evaluate(async () => {
      const w = window as unknown as PageWindow & { opening: Promise<void> };
      w.client.connect();
      await w.opening; // no task has run since: the socket is still CONNECTING
    });
    await closeAndCheck();
  });

  it('closing a connected client leaves no page error', async () => {
    await newClient(gw.url);
    await page.evaluate(async () => {
      const w = window as unknown as PageWindow;
      const connected = w.reach('connected');
      w.client.connect();
      await connected;
    });
    await closeAndCheck();
  });

  it('closing while connecting to a server that accepts TCP and never answers leaves no page error', async () => {
    await newClient(silent.url);
    await page.evaluate(() => (window as unknown as PageWindow).client.connect());
    await silent.connections(1);
    await closeAndCheck();
  });

  it('the session timeout against a silent server, then close, leaves no page error', async () => {
    await newClient(silent.url, { sessionTimeoutMs: 300 });
    const rejections = await page.evaluate(async () => {
      const w = window as unknown as PageWindow;
      const timedOut = w.reach('reconnecting', 'session_created timeout');
      w.client.connect();
      await timedOut;
      await w.settle(); // the socket the timeout closed while it was CONNECTING
      return w.rejections;
    });
    expect(silent.accepted).toBe(1);
    expect(rejections).toEqual([]);
    expect(pageErrors).toEqual([]);
    await closeAndCheck();
  });

  it('app listeners that throw leave no page error, and the client still connects and receives', async () => {
    await newClient(gw.url);
    const connected = page.evaluate(async () => {
      const w = window as unknown as PageWindow & { got: unknown[] };
      const boom = (): never => {
        throw new Error('a bug in the app');
      };
      w.client.onState(boom);
      w.client.onSession(boom);
      w.client.on('note', boom);
      w.got = [];
      w.client.on('note', (data) => void w.got.push(data['n']));
      const reached = w.reach('connected');
      w.client.connect();
      await reached;
    });
    await connected;
    await gw.gateway.publish({ event: 'note', data: { n: 1 }, to: { users: [`browser-${transport}`] } });
    await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length === 1);
    await closeAndCheck();
    expect(await page.evaluate(() => (window as unknown as PageWindow).states)).toEqual([
      'connecting',
      'authenticating',
      'connected',
      'disconnected',
    ]);
  });
});
