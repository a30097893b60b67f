import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, TetherError, type ErrorCode } from '@tether/protocol';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../util/logger.js';
import type { ServerDrain } from '../util/server-drain.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Checks every request must pass before anything about its route is said (the `/v1` API key). */
    readonly guards: RequestGuards;
  }
}

/**
 * Checks that answer first, whether or not the router found a route: a request the router refuses
 * (bad percent-encoding, over-long parameter) runs no hooks, so without these an unauthenticated
 * caller would learn about routes before the API key is asked for. Routed requests run the same
 * checks from an `onRequest` hook their plugin adds.
 */
export class RequestGuards {
  private readonly guards: Array<(request: FastifyRequest) => void> = [];

  /** `guard` throws a TetherError to refuse the request. */
  add(guard: (request: FastifyRequest) => void): void {
    this.guards.push(guard);
  }

  check(request: FastifyRequest): void {
    for (const guard of this.guards) guard(request);
  }
}

/**
 * One error handler for every route: a TetherError answers with its registry status and body;
 * fastify's own errors (bad JSON, body too large, schema) are mapped to registry codes; anything
 * else is a 500 INTERNAL whose details stay in the log.
 */
export function installErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((error: FastifyError | TetherError | Error, request, reply) => {
    const tether = toTetherError(error);
    // Unexpected failures only; a mapped fastify error's message may quote the URL.
    if (tether.code === 'INTERNAL' || hasRangeErrorCause(error)) {
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
 * fastify's `frameworkErrors`: the router refused the URL before any route or hook ran. The guards
 * answer first (an unauthenticated `/v1` caller gets API_KEY_INVALID), then the registry's code.
 */
export function answerRouterError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  let tether: TetherError;
  try {
    if (request.server.drain.draining) throw new TetherError('SERVER_SHUTDOWN');
    request.server.guards.check(request);
    tether = toTetherError(error);
  } catch (refusal) {
    tether = toTetherError(refusal);
  }
  void reply.code(tether.httpStatus).send(tether.toBody());
}

/**
 * fastify's `clientErrorHandler`: node's HTTP parser refused the connection's bytes (head too large,
 * malformed request) or the request did not arrive within `requestTimeout`/`headersTimeout`. Answers
 * with a registry body when no answer has started on that socket, then closes it. Only the error
 * code is logged: the error carries the raw request bytes, which may hold a token.
 */
export function answerClientError(logger: Logger, error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const tether =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new TetherError('REQUEST_TIMEOUT')
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new TetherError('HEADERS_TOO_LARGE')
        : new TetherError('VALIDATION_FAILED', 'Malformed HTTP request');
  logger.debug({ component: 'http', code: error.code, answer: tether.code }, 'http client error');
  closeWithAnswer(socket, tether);
}

/**
 * Writes `tether` as a complete HTTP answer on a raw socket — unless an answer has already started
 * on it — then destroys the socket: its remaining bytes cannot be trusted (node does the same
 * after its own 400/408/431).
 */
function closeWithAnswer(socket: Duplex, tether: TetherError): void {
  if (socket.writable && !answerStarted(socket)) {
    const body = JSON.stringify(tether.toBody());
    const status = tether.httpStatus;
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Whether a response is already on its way on this socket (then nothing may be written beside it).
 * `_httpMessage` is node's link from a socket to its in-flight ServerResponse; node's own
 * client-error handling checks it the same way.
 */
function answerStarted(socket: Duplex): boolean {
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  return inFlight?.headersSent === true;
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

/** Every fastify error a client can cause (node_modules/fastify/lib/errors.js), as a registry code. */
const FASTIFY_CODES: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: ['VALIDATION_FAILED', 'Body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['VALIDATION_FAILED', 'Body is empty'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['VALIDATION_FAILED', 'Unsupported content type; send application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['VALIDATION_FAILED', 'Request body size did not match Content-Length'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['FRAME_TOO_LARGE', 'Request body too large'],
  FST_ERR_ROUTE_MISSING_CONTENT_TYPE: ['VALIDATION_FAILED', 'Content-Type is missing'],
  FST_ERR_VALIDATION: ['VALIDATION_FAILED', 'Request body is invalid'],
  FST_ERR_BAD_URL: ['VALIDATION_FAILED', 'The URL has an invalid percent-encoding'],
  FST_ERR_MAX_PARAM_LENGTH: ['VALIDATION_FAILED', 'A path parameter is too long'],
  FST_ERR_NOT_FOUND: ['NOT_FOUND', ERRORS.NOT_FOUND.message],
  FST_ERR_ASYNC_CONSTRAINT: ['INTERNAL', ERRORS.INTERNAL.message],
};

/**
 * Any error as the registry error a client is answered with. A server failure (5xx) caused by a
 * RangeError — a stack overflow or an impossible string length, from input no limit caught — is
 * VALIDATION_FAILED: sending the same request again would fail the same way, so it must not say
 * "retry" (a deep publish once came back as a retryable 503 PUBLISH_FAILED forever).
 */
export function toTetherError(error: unknown): TetherError {
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof TetherError) && typeof code === 'string' && code in FASTIFY_CODES) {
    const [tetherCode, message] = FASTIFY_CODES[code]!;
    return new TetherError(tetherCode, message);
  }
  if (hasRangeErrorCause(error) && (!(error instanceof TetherError) || error.httpStatus >= 500)) {
    return new TetherError(
      'VALIDATION_FAILED',
      'The request could not be processed: it nests too deeply or is too large',
      {
        cause: error,
      },
    );
  }
  if (error instanceof TetherError) return error;
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new TetherError('VALIDATION_FAILED', (error as Error).message);
  }
  return new TetherError('INTERNAL');
}

/** Whether the error, or an error in its `cause` chain, is a RangeError. */
function hasRangeErrorCause(error: unknown): boolean {
  let at: unknown = error;
  for (let hops = 0; at instanceof Error && hops < 10; hops++) {
    if (at instanceof RangeError) return true;
    at = at.cause;
  }
  return false;
}
