import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, WS_AUTH_TIMEOUT_MS, type TetherError } from '@tether/protocol';
import { WebSocketServer, type WebSocket } from 'ws';
import { ServerDrain } from '../util/server-drain.js';
import { asTetherError, clientIp, HandshakeGate } from './handshake.js';
import { HeartbeatSweeper } from './heartbeat.js';
import { bearerSubprotocol } from './token-extract.js';
import type { TransportDeps, TransportHandle } from './types.js';
import { isWsPath } from './upgrade-paths.js';
import { transportCoalescer } from './write-coalescer.js';
import { WsConnection, wsListeners, type WsShared } from './ws-connection.js';
import { encodeFrame, systemFrame } from './ws-frames.js';

/**
 * How long a closing handshake may take before the socket is terminated: connections left at
 * `close()`, and late upgrades. A peer that reads answers within a round trip; one that never reads
 * never answers, and must not hold the shutdown.
 */
const CLOSE_WAIT_MS = 300;
/** A late upgrade is told to reconnect within this (jittered, capped by the grace period). */
const LATE_RECONNECT_MS = 1000;
const SHUTDOWN_CLOSE_CODE = ERRORS.SERVER_SHUTDOWN.closeCode;

/**
 * Plain WebSocket transport on `/ws` (docs/PROTOCOL.md "Plain WebSocket"). Handles `upgrade` for its
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
  // Every open socket's connection, from the upgrade to its `close` (`wsListeners`); the heartbeat
  // sweeps it, the connection holding its beat.
  const connections = new Map<WebSocket, WsConnection>();
  const heartbeat = new HeartbeatSweeper<WebSocket, WsConnection>(
    {
      intervalMs: deps.config.pingIntervalMs,
      timeoutMs: deps.config.pingTimeoutMs,
      clock: deps.clock,
      onDead: (_socket, connection) => connection.markDead(),
    },
    connections,
  );
  const shared: WsShared = {
    listeners: wsListeners(connections),
    deps,
    gate: new HandshakeGate(deps, 'ws'),
    coalescer: transportCoalescer(deps),
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
  const drain = ServerDrain.of(server);
  let closing = false;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!isWsPath(req.url)) return;
    if (closing || drain.draining) {
      answerShutdown(req, socket, head);
      return;
    }
    // The connect rate is taken before the upgrade completes (in cluster mode it asks Redis), so no
    // frame is read from a connection over it; the refusal is still the coded auth_error after the
    // upgrade. Until `ws` takes the socket over, a reset must not be an unhandled 'error'.
    const ignore = (): void => undefined;
    socket.on('error', ignore);
    void shared.gate.takeConnect(clientIp(req, deps.config.trustProxy)).then(
      () => upgrade(req, socket, head, ignore, undefined),
      (err: unknown) => upgrade(req, socket, head, ignore, asTetherError(err)),
    );
  };
  const upgrade = (
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    ignore: () => void,
    overRate: TetherError | undefined,
  ): void => {
    socket.off('error', ignore);
    if (closing || drain.draining) {
      answerShutdown(req, socket, head);
      return;
    }
    // Held to the end of the turn: the 101 answer and `session_created` (the token verified and the
    // connection registered within the turn, as they usually are) leave in one write.
    shared.coalescer.hold(socket);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new WsConnection(shared, ws, socket, req);
      heartbeat.add(ws, connection); // in `connections` until its `close` (`wsListeners`)
      connection.start(req, overRate);
    });
  };

  /**
   * An upgrade during shutdown is completed only to say so, without authentication: a client told
   * nothing waits for its own timeout and then backs off for longer.
   *
   *   client                          gateway (draining)
   *     │ GET /ws  Upgrade              │
   *     │──────────────────────────────▶│
   *     │ 101, server_shutdown          │
   *     │   {reconnectInMs, timestamp}, │
   *     │ close 1012 SERVER_SHUTDOWN    │
   *     │◀──────────────────────────────│
   *     │ close                         │  no answer within CLOSE_WAIT_MS: terminate
   *     │──────────────────────────────▶│
   */
  const answerShutdown = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => undefined); // a peer that misbehaves now only speeds up the close
      const spreadMs = Math.min(LATE_RECONNECT_MS, deps.config.shutdownGraceMs);
      const payload = { reconnectInMs: Math.floor(Math.random() * spreadMs), timestamp: deps.clock.now() };
      ws.send(encodeFrame(systemFrame({ kind: 'server_shutdown', payload })));
      void closeWithin(ws);
    });
  };

  // Stays attached through close(): every `/ws` upgrade until the server is gone gets an answer.
  // (The WebSocketServer is never closed either: with noServer it holds nothing, and a closed one
  // would answer those upgrades with a bare 503.)
  server.on('upgrade', onUpgrade);

  return {
    async close() {
      closing = true;
      heartbeat.stop();
      // Sessions were already told to reconnect, and closed, by hub.shutdown(); these are the leftovers.
      await Promise.all([...connections.keys()].map((ws) => closeWithin(ws)));
      shared.coalescer.flush();
    },
  };
}

/** Starts the closing handshake (1012 SERVER_SHUTDOWN); terminates the socket if it is not done within CLOSE_WAIT_MS. */
function closeWithin(ws: WebSocket): Promise<void> {
  return new Promise<void>((resolve) => {
    if (ws.readyState === ws.CLOSED) return resolve();
    const timer = setTimeout(() => ws.terminate(), CLOSE_WAIT_MS);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(SHUTDOWN_CLOSE_CODE, 'SERVER_SHUTDOWN');
  });
}
