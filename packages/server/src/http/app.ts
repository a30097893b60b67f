import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import type { Logger } from '../util/logger.js';
import { ServerDrain } from '../util/server-drain.js';
import { installErrorHandling, refuseWhileDraining } from './errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The shutdown state of this app's http.Server: `begin()` when draining starts, close through `closeWithin`. */
    readonly drain: ServerDrain;
  }
}

/**
 * The fastify instance every route is registered on: one error handler, cookies, CORS per
 * ALLOWED_ORIGINS, and a 503 SERVER_SHUTDOWN for every request once `app.drain` has begun.
 */
export async function createHttpApp(config: Config, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Fastify's request log would print URLs, and a URL may carry ?token=. We log our own line.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy,
    bodyLimit: Math.max(config.maxFrameBytes, 1024 * 1024),
    // Its 503 body is not ours ({error: 'Service Unavailable'}): refuseWhileDraining answers instead.
    return503OnClosing: false,
  });
  // Created before listen() so every socket of the server is tracked from the first one.
  const drain = ServerDrain.of(app.server);
  app.decorate('drain', drain);
  installErrorHandling(app, logger);
  app.addHook('onResponse', async (request, reply) => {
    logger.debug(
      {
        component: 'http',
        method: request.method,
        route: request.routeOptions.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'http request',
    );
  });
  await app.register(cookie);
  if (config.allowedOrigins.length > 0) {
    const any = config.allowedOrigins.includes('*');
    await app.register(cors, { origin: any ? true : config.allowedOrigins, credentials: true });
  }
  // After CORS: its hook answers preflights and adds the headers a browser needs to read the 503.
  refuseWhileDraining(app, drain);
  return app;
}
