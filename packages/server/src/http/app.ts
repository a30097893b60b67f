import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import type { Logger } from '../util/logger.js';
import { installErrorHandling } from './errors.js';

/** The fastify instance every route is registered on: one error handler, cookies, CORS per ALLOWED_ORIGINS. */
export async function createHttpApp(config: Config, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Fastify's request log would print URLs, and a URL may carry ?token=. We log our own line.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy,
    bodyLimit: Math.max(config.maxFrameBytes, 1024 * 1024),
  });
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
  return app;
}
