import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { SOCKET_IO_PATH } from '@tether/protocol';

/** The parts of an engine.io socket this module reads. */
export interface EngineConn {
  readonly id: string;
  readonly request: IncomingMessage;
  readonly transport: { readonly name: string };
}

/**
 * Finds the TCP socket under a Socket.IO connection's websocket transport, so its writes can be
 * corked like `/ws` ones. engine.io does not expose it: a websocket-first connection's handshake
 * request *is* the upgrade (its `request.socket`); a connection that started on polling upgrades
 * later with `?sid=<id>`, which we note from the server's `upgrade` events (ours runs first).
 */
export class EngineSockets {
  private readonly bySid = new Map<string, Duplex>();

  constructor(private readonly server: Server) {
    server.prependListener('upgrade', this.onUpgrade);
  }

  /** The raw socket under `conn` (to cork, or to write finished frames to), or undefined on polling. */
  socketOf(conn: EngineConn): Duplex | undefined {
    if (conn.transport.name !== 'websocket') return undefined;
    return this.bySid.get(conn.id) ?? conn.request.socket;
  }

  detach(): void {
    this.server.off('upgrade', this.onUpgrade);
    this.bySid.clear();
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex): void => {
    const url = req.url;
    if (url === undefined || !url.startsWith(SOCKET_IO_PATH + '/')) return;
    const q = url.indexOf('?');
    const sid = q < 0 ? null : new URLSearchParams(url.slice(q + 1)).get('sid');
    if (sid === null) return;
    this.bySid.set(sid, socket);
    socket.once('close', () => {
      if (this.bySid.get(sid) === socket) this.bySid.delete(sid);
    });
  };
}
