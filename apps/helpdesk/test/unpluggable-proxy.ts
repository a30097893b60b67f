import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of the gateway that can be unplugged: every open connection (HTTP and
 * WebSocket alike) is cut, and new ones are refused until it is plugged back in. Chromium's offline
 * emulation (`context.setOffline`) does not touch open WebSockets, so a real "network gone" needs
 * this; the tests use both (setOffline also fires the page's `offline`/`online` events).
 */
export class UnpluggableProxy {
  private readonly sockets = new Set<Socket>();
  private plugged = true;

  private constructor(private readonly server: Server) {}

  static async start(targetPort: number): Promise<UnpluggableProxy> {
    const server = createServer();
    const proxy = new UnpluggableProxy(server);
    server.on('connection', (client) => proxy.accept(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  unplug(): void {
    this.plugged = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  plug(): void {
    this.plugged = true;
  }

  async close(): Promise<void> {
    this.unplug();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetPort: number): void {
    if (!this.plugged) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
