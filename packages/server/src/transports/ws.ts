import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WS_AUTH_TIMEOUT_MS, WS_PATH } from '@tether/protocol';
import { WebSocketServer, type WebSocket } from 'ws';
import { HandshakeGate } from './handshake.js';
import { HeartbeatSweeper } from './heartbeat.js';
import { bearerSubprotocol } from './token-extract.js';
import type { TransportDeps, TransportHandle } from './types.js';
import { WriteCoalescer } from './write-coalescer.js';
import { WsConnection, type WsShared } from './ws-connection.js';

/** How long `close()` waits for sockets to finish their closing handshake before terminating them. */
const CLOSE_WAIT_MS = 1000;

/**
 * Plain WebSocket transport on `/ws` (CONTRACT.md "Plain WebSocket"). Handles `upgrade` for its
 * own path only, so Socket.IO and anything else on the same `http.Server` keep theirs.
 *
 * Frames up to `config.maxFrameBytes` are handled; larger ones, up to a hard ceiling of four
 * times that, are read and answered with `FRAME_TOO_LARGE` (the connection stays); beyond the
 * ceiling `ws` itself closes with 1009 without buffering the rest.
 *
 * @example
 *   const ws = attachWs(httpServer, { config, hub, authenticator, logger, clock: systemClock });
 *   // … later
 *   await ws.close();
 */
export function attachWs(server: Server, deps: TransportDeps): TransportHandle {
  const connections = new Map<WebSocket, WsConnection>();
  const heartbeat = new HeartbeatSweeper({
    intervalMs: deps.config.pingIntervalMs,
    timeoutMs: deps.config.pingTimeoutMs,
    clock: deps.clock,
    onDead: (socket) => connections.get(socket as WebSocket)?.markDead(),
  });
  const shared: WsShared = {
    deps,
    gate: new HandshakeGate(deps, 'ws'),
    coalescer: new WriteCoalescer(),
    heartbeat,
    authTimeoutMs: deps.wsAuthTimeoutMs ?? WS_AUTH_TIMEOUT_MS,
  };
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    clientTracking: false,
    maxPayload: deps.config.maxFrameBytes * 4,
    // A browser offering subprotocols fails the upgrade unless one is echoed: echo the bearer one.
    handleProtocols: (protocols) =>
      bearerSubprotocol([...protocols].join(',')) ?? protocols.values().next().value ?? false,
  });
  let closing = false;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!isWsPath(req.url)) return;
    if (closing) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new WsConnection(shared, ws, socket, req);
      track(ws, connection);
      connection.start(req);
    });
  };
  // Outside onUpgrade on purpose: a close listener created in there would keep the upgrade
  // request (headers, ~1-2 KB) alive in its closure context for the life of the connection.
  const track = (ws: WebSocket, connection: WsConnection): void => {
    connections.set(ws, connection);
    ws.once('close', () => connections.delete(ws));
  };
  server.on('upgrade', onUpgrade);

  return {
    async close() {
      closing = true;
      server.off('upgrade', onUpgrade);
      heartbeat.stop();
      const sockets = [...connections.keys()];
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === ws.CLOSED) return resolve();
              const timer = setTimeout(() => ws.terminate(), CLOSE_WAIT_MS);
              ws.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
              // Sessions were already told to reconnect by hub.shutdown(); these are the leftovers.
              ws.close(1001, 'SERVER_SHUTDOWN');
            }),
        ),
      );
      shared.coalescer.flush();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function isWsPath(url: string | undefined): boolean {
  if (url === undefined) return false;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return path === WS_PATH || path === WS_PATH + '/';
}
