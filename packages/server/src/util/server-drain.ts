import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** How long `server.close()` may wait for the sockets still open before they are destroyed. */
export const SOCKET_REAP_MS = 250;

const drains = new WeakMap<Server, ServerDrain>();

/**
 * The shutdown state of one `http.Server`, shared by everything attached to it: the HTTP app answers
 * 503 SERVER_SHUTDOWN once `draining`, the `/ws` transport answers late upgrades with
 * `server_shutdown`, and the gateway closes the server through `closeWithin`, because
 * `server.close()` waits for every socket — upgraded ones too, which no HTTP machinery tracks — and
 * a client that never reads would otherwise hold the process forever.
 *
 * One per server (`ServerDrain.of`), so the parts that only see the server find the same one.
 *
 * @example
 *   const drain = ServerDrain.of(app.server); // before listen(): sockets are tracked from the start
 *   drain.begin();
 *   // … drain connections, close the transports …
 *   const destroyed = await drain.closeWithin(() => app.close());
 */
export class ServerDrain {
  private readonly sockets = new Set<Socket>();
  private started = false;
  private reaping = false;

  private constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      if (this.reaping) {
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      // One listener function for every socket, and `on` (close fires once): no closure and no
      // once-wrapper per connection (~210 bytes each).
      socket.on('close', onSocketClose);
    });
  }

  /** Sockets tracked now (open ones). */
  get tracked(): number {
    return this.sockets.size;
  }

  /** A socket closed: no longer tracked. */
  forget(socket: Socket): void {
    this.sockets.delete(socket);
  }

  static of(server: Server): ServerDrain {
    let drain = drains.get(server);
    if (drain === undefined) {
      drain = new ServerDrain(server);
      drains.set(server, drain);
    }
    return drain;
  }

  /** True from `begin()` on: new work is answered "shutting down" instead of being started. */
  get draining(): boolean {
    return this.started;
  }

  begin(): void {
    this.started = true;
  }

  /**
   * Runs `closeServer` (which waits for every socket) and destroys the sockets still open
   * `boundMs` later, and any that connect after that. Resolves with how many were destroyed.
   *
   * The sockets are destroyed on the `setImmediate` after the timer, so I/O already waiting — an
   * upgrade that arrived while the process was busy — is answered before its socket is cut.
   * Real time on purpose: the exit must be bounded in wall-clock time whatever clock the hub runs on.
   */
  async closeWithin(closeServer: () => Promise<void>, boundMs = SOCKET_REAP_MS): Promise<number> {
    this.begin();
    let destroyed = 0;
    let reap: NodeJS.Immediate | undefined;
    const timer = setTimeout(() => {
      reap = setImmediate(() => {
        this.reaping = true;
        destroyed = this.sockets.size;
        for (const socket of this.sockets) socket.destroy();
      });
    }, boundMs);
    try {
      await closeServer();
    } finally {
      clearTimeout(timer);
      if (reap !== undefined) clearImmediate(reap);
    }
    return destroyed;
  }
}

/** The close listener of every tracked socket (`this` is the socket; net.Server sets `socket.server`). */
function onSocketClose(this: Socket & { server?: Server }): void {
  if (this.server !== undefined) drains.get(this.server)?.forget(this);
}
