import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { TetherError } from '@tether/protocol';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import type { Hub } from '../hub/types.js';
import type { ApiOperation } from './openapi.js';

/** A dependency `/readyz` checks: resolves when it answers, rejects (or times out) when it does not. */
export type ReadinessCheck = () => Promise<unknown>;

/** A check that has not answered within this long counts as down: a load balancer must not wait on it. */
export const READINESS_TIMEOUT_MS = 1000;

const readinessChecks = z.record(z.string(), z.enum(['ok', 'unreachable']));

/** The OpenAPI description of the routes below (`openapi.ts`). */
export const systemOperations: readonly ApiOperation[] = [
  {
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    summary: 'Liveness: the process answers',
    tag: 'system',
    responses: {
      200: {
        description: 'Alive',
        schema: z.object({
          status: z.literal('ok'),
          node: z.string(),
          uptimeSeconds: z.number().int(),
          connections: z.number().int(),
        }),
      },
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'ready',
    summary: 'Readiness: every dependency answers and the node is not draining',
    description: 'A 503 NOT_READY answer also carries `node` and `checks` (which dependency is unreachable).',
    tag: 'system',
    responses: {
      200: {
        description: 'Ready',
        schema: z.object({ status: z.literal('ready'), node: z.string(), checks: readinessChecks }),
      },
    },
    errors: ['NOT_READY'],
    errorFields: { node: z.string(), checks: readinessChecks },
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics (text exposition format)',
    tag: 'system',
    responses: { 200: { description: 'Metrics', schema: z.string(), contentType: 'text/plain' } },
    errors: [],
  },
  {
    method: 'get',
    path: '/.well-known/jwks.json',
    operationId: 'jwks',
    summary: 'The public keys that verify access tokens (RS256/ES256 keys only)',
    tag: 'system',
    responses: {
      200: { description: 'JWKS', schema: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }) },
    },
    errors: ['NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    summary: 'This document (OpenAPI 3.1); browsable at /docs',
    tag: 'system',
    responses: { 200: { description: 'The OpenAPI document', schema: z.record(z.string(), z.unknown()) } },
    errors: [],
  },
];

/**
 * Liveness (`/healthz`: the process answers), readiness (`/readyz`: it can serve — every
 * dependency answers, and it is not draining), Prometheus metrics and the public JWKS. None of them
 * needs credentials; none reveals more than which dependency is down.
 */
export async function registerSystemRoutes(
  app: FastifyInstance,
  deps: {
    hub: Hub;
    registry: Registry;
    jwks: object | undefined;
    startedAt: number;
    /** By name (`store`, `redis`, `log`): what this node needs to serve. */
    readiness: Readonly<Record<string, ReadinessCheck>>;
    /** The OpenAPI document, served at `/openapi.json` and browsable at `/docs`. */
    openapi: Record<string, unknown>;
  },
): Promise<void> {
  app.get('/openapi.json', async () => deps.openapi);
  // Swagger UI over the same document (static mode: nothing is generated from the routes).
  await app.register(swagger, { mode: 'static', specification: { document: deps.openapi as never } });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  app.get('/healthz', async () => ({
    status: 'ok',
    node: deps.hub.nodeId,
    uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
    connections: deps.hub.stats().sessions,
  }));

  // While draining, the drain hook answers 503 SERVER_SHUTDOWN before this runs.
  app.get('/readyz', async (_request, reply) => {
    const names = Object.keys(deps.readiness);
    const outcomes = await Promise.all(names.map((name) => bounded(deps.readiness[name]!)));
    const checks = Object.fromEntries(names.map((name, i) => [name, outcomes[i] ? 'ok' : 'unreachable']));
    if (outcomes.every(Boolean)) return { status: 'ready', node: deps.hub.nodeId, checks };
    const err = new TetherError('NOT_READY');
    return reply.code(err.httpStatus).send({ ...err.toBody(), node: deps.hub.nodeId, checks });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await deps.registry.metrics();
    return reply.header('content-type', deps.registry.contentType).send(text);
  });

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    if (deps.jwks === undefined) {
      return reply
        .code(404)
        .send({ code: 'NOT_FOUND', message: 'No asymmetric signing key is configured', timestamp: Date.now() });
    }
    return reply.header('cache-control', 'public, max-age=300').send(deps.jwks);
  });
}

/** Whether `check` succeeds within READINESS_TIMEOUT_MS. */
async function bounded(check: ReadinessCheck): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      check().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), READINESS_TIMEOUT_MS))),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
