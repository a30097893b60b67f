import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/** The cookie a sticky load balancer inserts (HAProxy: `cookie SERVERID insert`). */
export const STICKY_COOKIE = 'tether_node';

/**
 * A small load balancer in front of several gateways, as users deploy one: round-robin for a
 * client it has not seen, and — when `sticky` — every later request of that client (polling
 * requests, the WebSocket upgrade) to the same backend, by a cookie it inserts on the first answer.
 */
export class TestLoadBalancer {
  private readonly server: Server;
  private next = 0;
  /** Backend index chosen for each request, in order (tests assert on the spread). */
  readonly routed: number[] = [];
  /** Upgraded connections leave the HTTP server's bookkeeping: closed by hand. */
  private readonly tunnels = new Set<Socket>();

  constructor(
    private readonly backends: readonly number[],
    private readonly sticky: boolean,
  ) {
    this.server = createServer((req, res) => {
      const { index, pinned } = this.pick(req);
      const upstream = request(
        { host: '127.0.0.1', port: this.backends[index], method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          const headers = { ...answer.headers };
          if (this.sticky && !pinned) {
            const cookie = `${STICKY_COOKIE}=${index}; Path=/; HttpOnly`;
            headers['set-cookie'] = [...(headers['set-cookie'] ?? []), cookie];
          }
          res.writeHead(answer.statusCode ?? 502, headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
    });
    this.server.on('upgrade', (req: IncomingMessage, client: Socket, head: Buffer) => {
      const { index } = this.pick(req);
      const upstream = connect(this.backends[index] ?? 0, '127.0.0.1', () => {
        const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(lines.join('\r\n') + '\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      this.tunnels.add(client).add(upstream);
      const end = (): void => {
        upstream.destroy();
        client.destroy();
        this.tunnels.delete(client);
        this.tunnels.delete(upstream);
      };
      upstream.on('close', end);
      client.on('close', end);
      upstream.on('error', end);
      client.on('error', end);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    for (const socket of this.tunnels) socket.destroy();
    return new Promise((done) => this.server.close(() => done()));
  }

  private pick(req: IncomingMessage): { index: number; pinned: boolean } {
    const match = this.sticky ? new RegExp(`(?:^|;\\s*)${STICKY_COOKIE}=(\\d+)`).exec(req.headers.cookie ?? '') : null;
    const pinned = match !== null && Number(match[1]) < this.backends.length;
    const index = pinned ? Number(match[1]) : this.next++ % this.backends.length;
    this.routed.push(index);
    return { index, pinned };
  }
}
