import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { pipeBoth } from './tcp-pipe.js';

/**
 * A TCP load balancer on loopback, round-robin over the backends it currently has: what sits in
 * front of a gateway cluster. A rolling restart takes a node out (`remove`) before stopping it and
 * puts its replacement in (`add`); connections already forwarded stay until either side closes.
 */
export class Balancer {
  private readonly backends: number[] = [];
  private readonly sockets = new Set<Socket>();
  private next = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(ports: number[]): Promise<Balancer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const balancer = new Balancer(server, `http://127.0.0.1:${port}`);
    for (const p of ports) balancer.add(p);
    server.on('connection', (client) => balancer.forward(client));
    return balancer;
  }

  add(port: number): void {
    this.backends.push(port);
  }

  remove(port: number): void {
    const i = this.backends.indexOf(port);
    if (i >= 0) this.backends.splice(i, 1);
  }

  private forward(client: Socket): void {
    if (this.backends.length === 0) {
      client.destroy();
      return;
    }
    const port = this.backends[this.next++ % this.backends.length]!;
    const upstream = connect(port, '127.0.0.1');
    pipeBoth(client, upstream, this.sockets);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
