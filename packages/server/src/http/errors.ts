import { TetherError, type ErrorCode } from '@tether/protocol';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from '../util/logger.js';
import type { ServerDrain } from '../util/server-drain.js';

/**
 * One error handler for every route: a TetherError answers with its registry status and body;
 * fastify's own errors (bad JSON, body too large, schema) are mapped to registry codes; anything
 * else is a 500 INTERNAL whose details stay in the log.
 */
export function installErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((error: FastifyError | TetherError | Error, request, reply) => {
    const tether = toTetherError(error);
    if (tether.code === 'INTERNAL') {
      logger.error({ err: error, method: request.method, route: request.routeOptions.url }, 'request failed');
    }
    if (tether.retryAfterMs !== undefined) reply.header('retry-after', Math.ceil(tether.retryAfterMs / 1000));
    void reply.code(tether.httpStatus).send(tether.toBody());
  });
  app.setNotFoundHandler((_request, reply) => {
    const err = new TetherError('NOT_FOUND');
    void reply.code(err.httpStatus).send(err.toBody());
  });
}

/**
 * Once the drain has begun (or fastify itself is closing), every request is answered 503 with the
 * registry's SERVER_SHUTDOWN body and `connection: close`, before any route runs — a load
 * balancer's health check and a publisher both learn to go elsewhere, and nothing new starts here.
 */
export function refuseWhileDraining(app: FastifyInstance, drain: ServerDrain): void {
  app.addHook('preClose', async () => drain.begin());
  app.addHook('onRequest', async (_request, reply) => {
    if (!drain.draining) return;
    const err = new TetherError('SERVER_SHUTDOWN');
    return reply.code(err.httpStatus).header('connection', 'close').send(err.toBody());
  });
}

const FASTIFY_CODES: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: ['VALIDATION_FAILED', 'Body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['VALIDATION_FAILED', 'Body is empty'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['VALIDATION_FAILED', 'Unsupported content type'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['FRAME_TOO_LARGE', 'Request body too large'],
  FST_ERR_VALIDATION: ['VALIDATION_FAILED', 'Request body is invalid'],
};

export function toTetherError(error: unknown): TetherError {
  if (error instanceof TetherError) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code in FASTIFY_CODES) {
    const [tetherCode, message] = FASTIFY_CODES[code]!;
    return new TetherError(tetherCode, message);
  }
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new TetherError('VALIDATION_FAILED', (error as Error).message);
  }
  return new TetherError('INTERNAL');
}
