import type { Server as HttpServer, IncomingMessage } from 'node:http';
import { SOCKET_IO_PATH, TetherError, WS_AUTH_TIMEOUT_MS, type ErrorBody } from '@tether/protocol';
import { Server, type ExtendedError, type ServerOptions } from 'socket.io';
import { EngineAdmission } from './engine-admission.js';
import { releaseUpgradeResponses, tcpSocketOf, type EngineConn } from './engine-sockets.js';
import { clientIp, HandshakeGate } from './handshake.js';
import { SioConnection, sioConnectionOf, type SioServer, type SioShared, type SioSocket } from './sio-connection.js';
import { readResume } from './resume.js';
import { extractSocketIoToken } from './token-extract.js';
import type { TransportDeps, TransportHandle } from './types.js';
import { transportCoalescer } from './write-coalescer.js';

/**
 * Socket.IO transport on `/socket.io` (websocket and polling; docs/PROTOCOL.md "Socket.IO").
 *
 * Handshakes are checked in `io.use` middleware: only a namespace middleware can refuse with a
 * `connect_error` carrying our `{code, message, timestamp}`, and the contract wants every refusal
 * coded. The per-IP connect rate alone is also taken at engine.io's door (`EngineAdmission`), since
 * an engine.io session exists, and costs, before any namespace connect. A foreign-origin page can
 * open an engine.io session (no events, no auth) that lives until the refusal, a few milliseconds.
 *
 * @example
 *   const sio = attachSocketIo(httpServer, { config, hub, authenticator, logger, clock: systemClock });
 */
export function attachSocketIo(server: HttpServer, deps: TransportDeps): TransportHandle {
  const { config } = deps;
  const gate = new HandshakeGate(deps, 'socket.io');
  const admission = new EngineAdmission(gate, config.trustProxy);
  const io: SioServer = new Server(server, {
    path: SOCKET_IO_PATH,
    serveClient: false,
    pingInterval: config.pingIntervalMs,
    pingTimeout: config.pingTimeoutMs,
    maxHttpBufferSize: config.maxFrameBytes,
    // `/ws` and any other upgrade on this server are not ours to destroy.
    destroyUpgrade: false,
    // An engine.io connection that never completes a namespace connect is dropped after this: the
    // same time a `/ws` connection has to authenticate.
    connectTimeout: deps.wsAuthTimeoutMs ?? WS_AUTH_TIMEOUT_MS,
    allowRequest: admission.allowRequest,
    cors: corsOptions(config.allowedOrigins),
  });
  io.engine.on('connection', admission.onConnection);
  const detachUpgrades = releaseUpgradeResponses(server);
  const coalescer = transportCoalescer(deps);
  const shared: SioShared = { deps, gate, io, admission, coalescer };

  io.use((socket, next) => {
    admit(shared, socket).then(
      () => {
        next();
        const connection = socket.data.connection;
        if (connection !== undefined) setImmediate(() => connection.settle());
      },
      (err: unknown) =>
        next(connectError(gate.refused(err, addressOf(socket, config.trustProxy)).toBody(deps.clock.now()))),
    );
  });
  io.on('connection', (socket) => socket.data.connection?.onConnected());

  // engine.io emits `flush` right before handing a batch to the transport: cork the TCP socket
  // under a websocket transport for the rest of the turn (see WriteCoalescer).
  // A ping among the packets starts the connection's heartbeat round trip.
  io.engine.on('flush', (conn: EngineConn, packets: readonly { readonly type: string }[]) => {
    const raw = tcpSocketOf(conn);
    if (raw !== undefined) coalescer.hold(raw);
    sioConnectionOf(conn)?.onFlush(packets);
  });

  return {
    async close() {
      detachUpgrades();
      // Not io.close(): that would also close the shared http.Server, which the gateway owns.
      io.disconnectSockets(true);
      io.engine.close();
      coalescer.flush();
    },
  };
}

async function admit(shared: SioShared, socket: SioSocket): Promise<void> {
  const { deps, gate } = shared;
  // Null once a connect on this engine.io session completed (`letGoOfRequest`). socket.io closes a
  // session that sends CONNECT for the namespace it is in, and the gateway closes the session when
  // its socket leaves, so no CONNECT should find it so; one that does is refused, not crashed on.
  const req = socket.request as IncomingMessage | null;
  if (req === null) throw new TetherError('CONFLICT', 'This Socket.IO session is already connected');
  const ip = clientIp(req, deps.config.trustProxy);
  await shared.admission.admitConnect(req, ip);
  const origin = gate.checkOrigin(req);
  const found = extractSocketIoToken(socket.handshake.auth, {
    headers: req.headers,
    url: req.url,
    origin,
    allowQueryToken: deps.config.allowQueryToken,
  });
  const principal = await gate.verify(found, ip);
  if (socket.conn.readyState !== 'open') return; // the client left while we verified; socket.io drops it
  const connection = new SioConnection(shared, socket, ip);
  const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
  connection.register(principal, found?.source ?? 'auth', readResume(auth.position, auth.channels, auth.narrow));
  socket.data.connection = connection;
  // socket.io keeps `handshake.auth` as long as the connection: without this, every connection would
  // hold its verified access token (~0.3 KB), which nothing reads again (reauth brings a new one).
  if (typeof auth.token === 'string') socket.handshake.auth = withoutToken(auth);
}

/** The client's address for a refusal's log line: the session's own when its request is gone. */
function addressOf(socket: SioSocket, trustProxy: boolean): string {
  const req = socket.request as IncomingMessage | null;
  if (req !== null) return clientIp(req, trustProxy);
  return sioConnectionOf(socket.conn)?.ip ?? socket.conn.remoteAddress;
}

/** A copy of a handshake's `auth` object minus its `token` (the other fields are the client's options). */
export function withoutToken(auth: Record<string, unknown>): Record<string, unknown> {
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(auth)) if (key !== 'token') rest[key] = auth[key];
  return rest;
}

/** A refusal the client sees as `connect_error`: `message` is the code, `data` the error body. */
function connectError(body: ErrorBody): ExtendedError {
  const error: ExtendedError = new Error(body.code);
  error.data = body;
  return error;
}

function corsOptions(allowed: readonly string[]): ServerOptions['cors'] {
  // Same-origin only: browsers need no CORS headers, so none are sent.
  if (allowed.length === 0) return undefined;
  return { origin: allowed.includes('*') ? true : [...allowed], credentials: true };
}
