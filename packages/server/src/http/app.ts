import type { IncomingMessage, ServerResponse } from 'node:http';
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import { TetherError } from '@tether/protocol';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import type { HttpMetrics } from '../observability/metrics.js';
import type { Logger } from '../util/logger.js';
import { ServerDrain } from '../util/server-drain.js';
import {
  answerClientError,
  answerRouterError,
  installErrorHandling,
  refuseWhileDraining,
  RequestGuards,
} from './errors.js';
import { installJsonBodyParser } from './validate.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The shutdown state of this app's http.Server: `begin()` when draining starts, close through `closeWithin`. */
    readonly drain: ServerDrain;
    /** Every route registered, as `METHOD url` (the OpenAPI test checks each is described). */
    readonly registeredRoutes: readonly string[];
  }
}

/**
 * Longest path parameter the router passes to a route. Routes check their own limits (an id is at
 * most 200 characters) and answer VALIDATION_FAILED after the API key; this bound only has to be
 * above any of them as sent on the wire, percent-encoded (up to 9 characters per character).
 */
const MAX_PARAM_LENGTH = 2048;

/**
 * The fastify instance every route is registered on: one error handler, cookies, CORS per
 * ALLOWED_ORIGINS, and a 503 SERVER_SHUTDOWN for every request once `app.drain` has begun.
 * Each answered request is reported to `metrics` (duration by method, route pattern and status).
 * Every answer it gives — route, router, body parser or node's HTTP parser — is a registry body.
 */
export async function createHttpApp(config: Config, logger: Logger, metrics?: HttpMetrics): Promise<FastifyInstance> {
  const timeoutMs = config.httpRequestTimeoutMs;
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Fastify's request log would print URLs, and a URL may carry ?token=. We log our own line.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy,
    bodyLimit: Math.max(config.maxFrameBytes, 1024 * 1024),
    // Its 503 body is not ours ({error: 'Service Unavailable'}): refuseWhileDraining answers instead.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: answerRouterError,
    clientErrorHandler: (error, socket) => answerClientError(logger, error, socket),
    // A slowloris client trickling its head or body — or a connection that sends nothing — is cut
    // once the whole request has taken longer than this (node answers through clientErrorHandler:
    // 408 REQUEST_TIMEOUT). Only requests still arriving are timed: a WebSocket upgrade leaves
    // node's HTTP parser, and an engine.io long-poll GET has arrived in full while the server holds
    // its answer, so neither is cut.
    requestTimeout: timeoutMs,
    http: {
      requestTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      // Node looks for expired requests on this interval (30 s by default, which would let a
      // short timeout run several times over).
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(timeoutMs / 4))),
    },
  });
  // Created before listen() so every socket of the server is tracked from the first one.
  const drain = ServerDrain.of(app.server);
  app.decorate('drain', drain);
  app.decorate('guards', new RequestGuards());
  const routes: string[] = [];
  app.decorate('registeredRoutes', routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push(`${method} ${route.url}`);
  });
  installErrorHandling(app, logger);
  // Bodiless POSTs (disconnect, logout, a cookie refresh) often still carry
  // `Content-Type: application/json`: an empty body is "no body", and a route that needs one says so.
  installJsonBodyParser(app, config.maxJsonDepth, { allowEmpty: true });
  refuseUnknownExpectations(app);
  app.addHook('onResponse', async (request, reply) => {
    // fastify already took the request's start and finish times: reading them costs no clock call.
    // The route is the router's pattern, never the URL: ids in paths must not become label values.
    const ms = reply.elapsedTime;
    const route = request.routeOptions.url;
    metrics?.request(request.method, route, reply.statusCode, ms / 1000);
    logger.debug(
      { component: 'http', method: request.method, route, status: reply.statusCode, ms: Math.round(ms) },
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

/**
 * Node answers an `Expect` header other than `100-continue` with a bodiless 417 of its own; with a
 * listener it hands the request over instead, so the answer is a registry body like every other.
 */
function refuseUnknownExpectations(app: FastifyInstance): void {
  app.server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const err = new TetherError('VALIDATION_FAILED', 'Unsupported Expect header; only 100-continue is understood');
    const body = JSON.stringify(err.toBody());
    response.writeHead(err.httpStatus, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    response.end(body);
  });
}
