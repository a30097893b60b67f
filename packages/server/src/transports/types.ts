import type { Authenticator } from '../auth/types.js';
import type { Config } from '../config/index.js';
import type { Hub, HubObserver } from '../hub/types.js';
import type { Clock } from '../util/clock.js';
import type { SendDispatcher } from '../sends/dispatcher.js';
import type { Logger } from '../util/logger.js';
import type { KeyedRateLimiter } from '../util/rate-limit.js';

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
   * counts connections of either kind; each transport makes its own when absent.
   */
  connectLimiter?: KeyedRateLimiter;
  /** Client → server sends (`send`); absent: every send is answered NOT_FOUND. */
  sends?: SendDispatcher;
  /** `/ws` only: how long a connection without a token may wait for `authenticate`. Default `WS_AUTH_TIMEOUT_MS`. */
  wsAuthTimeoutMs?: number;
}

/** A transport attached to the shared `http.Server`. */
export interface TransportHandle {
  /** Stops accepting, closes this transport's sockets and detaches from the server (which stays open). */
  close(): Promise<void>;
}
