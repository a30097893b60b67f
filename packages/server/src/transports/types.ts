import type { Authenticator } from '../auth/types.js';
import type { Config } from '../config/index.js';
import type { Hub, HubObserver } from '../hub/types.js';
import type { Clock } from '../util/clock.js';
import type { SendDispatcher } from '../sends/dispatcher.js';
import type { Logger } from '../util/logger.js';
import type { RateLimiter } from '../util/rate-limit.js';

/** What both transport factories need. The lead's `gateway.ts` builds one and passes it to each. */
export interface TransportDeps {
  config: Config;
  hub: Hub;
  authenticator: Authenticator;
  logger: Logger;
  clock: Clock;
  /** Told about handshake failures (the hub reports everything after registration). */
  observer?: HubObserver;
  /**
   * Per-IP connect limiter. Pass the same instance to both transports so `CONNECT_RATE_PER_IP`
   * counts connections of either kind (`/ws` upgrades, engine.io handshakes of every transport);
   * each transport makes its own when absent. Called in one place: `HandshakeGate.takeConnect`.
   * Asynchronous: in cluster mode the buckets are in Redis, so every node counts against one rate.
   */
  connectLimiter?: RateLimiter;
  /** Client → server sends (`send`); absent: every send is answered NOT_FOUND. */
  sends?: SendDispatcher;
  /**
   * How long a `/ws` connection without a token may wait for `authenticate`, and an engine.io
   * session for its Socket.IO namespace connect. Default `WS_AUTH_TIMEOUT_MS`.
   */
  wsAuthTimeoutMs?: number;
  /**
   * The longest a connection's frames wait after their turn for publishes pending in the hub
   * (`WriteCoalescer`'s `maxHoldMs`). Default 1 ms; 0 flushes at the end of every turn.
   */
  writeHoldMs?: number;
}

/** A transport attached to the shared `http.Server`. */
export interface TransportHandle {
  /** Stops accepting, closes this transport's sockets and detaches from the server (which stays open). */
  close(): Promise<void>;
}
