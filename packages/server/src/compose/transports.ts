import type { Server } from 'node:http';
import type { Authenticator } from '../auth/types.js';
import type { Config } from '../config/index.js';
import type { Hub, HubObserver } from '../hub/types.js';
import { createSendDispatcher, type SendDispatcher } from '../sends/dispatcher.js';
import type { IdempotencyStore } from '../sends/types.js';
import { createWebhookForwarder } from '../sends/webhook-forwarder.js';
import { attachSocketIo } from '../transports/socketio.js';
import type { TransportHandle } from '../transports/types.js';
import { refuseUnknownUpgrade } from '../transports/unknown-upgrade.js';
import { attachWs } from '../transports/ws.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { LimiterFactory } from '../util/rate-limit.js';

/**
 * Socket.IO and `/ws` on `server`, sharing one per-IP connect limiter (so CONNECT_RATE_PER_IP
 * counts connections of either transport) and one client-send dispatcher (in-process handlers, or
 * forwarded to CLIENT_EVENTS_URL); any other upgrade is refused.
 */
export function assembleTransports(
  server: Server,
  config: Config,
  deps: {
    hub: Hub;
    authenticator: Authenticator;
    observer: HubObserver;
    limiters: LimiterFactory;
    idempotency: IdempotencyStore;
    /** The key the send forwarder presents to CLIENT_EVENTS_URL. */
    apiKey: string | undefined;
    wsAuthTimeoutMs: number | undefined;
    logger: Logger;
    clock: Clock;
  },
): { sends: SendDispatcher; transports: TransportHandle[] } {
  const { clock } = deps;
  const connectLimiter = deps.limiters.bucket('connect-ip', {
    capacity: config.connectRatePerIp,
    perSecond: config.connectRatePerIp,
  });
  const sendsLogger = deps.logger.child({ component: 'sends' });
  const sends = createSendDispatcher({
    idempotency: deps.idempotency,
    ttlMs: config.idempotencyTtlSeconds * 1000,
    forward:
      config.clientEventsUrl === undefined
        ? undefined
        : createWebhookForwarder({ url: config.clientEventsUrl, apiKey: deps.apiKey, clock, logger: sendsLogger }),
    logger: sendsLogger,
  });
  const transportDeps = {
    sends,
    config,
    hub: deps.hub,
    authenticator: deps.authenticator,
    logger: deps.logger.child({ component: 'transport' }),
    clock,
    observer: deps.observer,
    connectLimiter,
    ...(deps.wsAuthTimeoutMs === undefined ? {} : { wsAuthTimeoutMs: deps.wsAuthTimeoutMs }),
  };
  const transports: TransportHandle[] = [attachSocketIo(server, transportDeps), attachWs(server, transportDeps)];
  server.on('upgrade', refuseUnknownUpgrade);
  return { sends, transports };
}
