import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { KeyMaterial } from '../auth/keys.js';
import { jwks } from '../auth/keys.js';
import type { TokenService } from '../auth/token-service.js';
import type { Authenticator } from '../auth/types.js';
import type { ClusterMode } from '../broker/cluster-mode.js';
import type { Config } from '../config/index.js';
import type { EventLog } from '../history/types.js';
import { ApiKeys } from '../http/api-key.js';
import { authOperations, registerAuthRoutes } from '../http/auth-routes.js';
import { deviceOperations, registerDeviceRoutes } from '../http/device-routes.js';
import { buildOpenApi } from '../http/openapi.js';
import { registerSystemRoutes, systemOperations } from '../http/system-routes.js';
import { registerV1Routes, v1Operations, type V1Deps } from '../http/v1-routes.js';
import type { Hub } from '../hub/types.js';
import type { Metrics } from '../observability/metrics.js';
import type { DeviceStore } from '../push/device-store.js';
import type { OpenStore } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { LimiterFactory } from '../util/rate-limit.js';
import { SERVER_VERSION } from '../util/version.js';

/**
 * Every HTTP route of the gateway on `app`: system routes (health, readiness, metrics, JWKS, the
 * OpenAPI document and its page), the token service (`/auth/*`) and the API-key routes (`/v1/*`).
 */
export async function assembleHttpRoutes(
  app: FastifyInstance,
  config: Config,
  deps: {
    hub: Hub;
    store: OpenStore;
    log: EventLog;
    cluster: ClusterMode | undefined;
    keys: KeyMaterial;
    tokens: TokenService | undefined;
    authenticator: Authenticator;
    limiters: LimiterFactory;
    devices: DeviceStore;
    metrics: Metrics;
    apiKeys: readonly string[];
    v1: Omit<V1Deps, 'hub' | 'apiKeys'>;
    logger: Logger;
    clock: Clock;
  },
): Promise<void> {
  const { hub, store, log, cluster, clock } = deps;
  await registerSystemRoutes(app, {
    hub,
    registry: deps.metrics.registry,
    jwks: jwks(deps.keys),
    startedAt: clock.now(),
    openapi: buildOpenApi(SERVER_VERSION, [
      ...authOperations,
      ...v1Operations,
      ...deviceOperations,
      ...systemOperations,
    ]),
    readiness: {
      store: () => sql`SELECT 1`.execute(store.db),
      // A real read of the log (a stream nobody writes): the store's tables, or Redis's scripts.
      log: () => log.heads(['u:readyz']),
      ...(cluster === undefined
        ? {}
        : {
            redis: () =>
              cluster.bus.isUp() ? cluster.bus.cmd.ping() : Promise.reject(new Error('cluster bus is down')),
          }),
    },
  });
  await registerAuthRoutes(app, {
    config,
    tokens: deps.tokens,
    authenticator: deps.authenticator,
    logger: deps.logger.child({ component: 'auth' }),
    limiters: deps.limiters,
    clock,
  });
  await registerV1Routes(app, { ...deps.v1, hub, apiKeys: new ApiKeys(deps.apiKeys) });
  await registerDeviceRoutes(app, deps.devices);
}
