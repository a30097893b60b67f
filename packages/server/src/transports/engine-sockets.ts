import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { SOCKET_IO_PATH } from '@tether/protocol';

/** The parts of an engine.io socket this module reads. */
export interface EngineConn {
  readonly transport: { readonly name: string; readonly socket?: { readonly _socket?: Duplex | null } };
}

/**
 * The TCP socket under a Socket.IO connection's websocket transport (to cork, or to write finished
 * frames to), or undefined on polling. engine.io does not expose it: its websocket transport's
 * `socket` is the `ws` WebSocket, whose `_socket` is the TCP socket — the field engine.io itself
 * reads for a websocket client's address, and `ws` for its `bufferedAmount`. The same for a
 * connection that opened on websocket and one that upgraded from polling, without keeping the
 * handshake request (which the connection lets go once it is open) or a map of upgrades.
 */
export function tcpSocketOf(conn: EngineConn): Duplex | undefined {
  if (conn.transport.name !== 'websocket') return undefined;
  return conn.transport.socket?._socket ?? undefined;
}

/**
 * engine.io's listener on the TCP socket of each websocket upgrade: engine.io builds a response
 * object for the upgrade (`WebSocketResponse`, so that HTTP middlewares can run on it) and re-emits
 * the socket's `close` on it. Known by its source text; an engine.io release that changes it is
 * left alone (and the test of the request's release fails).
 */
const UPGRADE_RESPONSE_CLOSE = '() => this.emit("close")';

/**
 * Removes engine.io's `close` listener from the TCP socket of every Socket.IO websocket upgrade on
 * `server` (websocket-first or from polling), as soon as engine.io has added it. That listener
 * holds the upgrade's response object and, through it, the upgrade request — its headers, raw
 * headers, URL and query — for as long as the socket is open; it serves only engine.io's HTTP
 * middlewares (`io.engine.use`), which the gateway has none of. (Socket.IO's own advice, `request =
 * null` on the engine.io socket, frees nothing while this listener holds the request.)
 *
 * Must be called after engine.io attached to `server`: it runs after engine.io's `upgrade` listener.
 * Returns the function that detaches it.
 */
export function releaseUpgradeResponses(server: Server): () => void {
  const onUpgrade = (req: IncomingMessage, socket: Duplex): void => {
    if (req.url?.startsWith(SOCKET_IO_PATH + '/') !== true) return;
    for (const raw of socket.rawListeners('close')) {
      const listener = (raw as { listener?: unknown }).listener;
      if (typeof listener === 'function' && String(listener) === UPGRADE_RESPONSE_CLOSE) {
        socket.removeListener('close', listener as () => void);
        return;
      }
    }
  };
  server.on('upgrade', onUpgrade);
  return () => void server.off('upgrade', onUpgrade);
}
