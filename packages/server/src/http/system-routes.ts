import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Hub } from '../hub/types.js';

/** Liveness, Prometheus metrics and the public JWKS. None of them needs credentials. */
export async function registerSystemRoutes(
  app: FastifyInstance,
  deps: { hub: Hub; registry: Registry; jwks: object | undefined; startedAt: number },
): Promise<void> {
  app.get('/healthz', async () => ({
    status: 'ok',
    node: deps.hub.nodeId,
    uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
    connections: deps.hub.stats().sessions,
  }));

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
