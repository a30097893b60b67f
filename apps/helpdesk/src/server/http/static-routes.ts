import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import { TetherError } from '@tether/protocol';
import type { FastifyInstance } from 'fastify';

/** Client-side routes of the single-page UI: each answers with index.html. */
const PAGES = ['/', '/customer', '/admin', '/tickets/:id', '/messages', '/messages/:peerId'];

/**
 * Serves the built web UI (`npm run build:web` → `apps/helpdesk/dist/public`): bundles under
 * `/assets/`, and index.html for every page path, so a reload on `/tickets/…` works.
 */
export async function registerStaticRoutes(app: FastifyInstance, publicDir: string): Promise<void> {
  await app.register(fastifyStatic, { root: publicDir, prefix: '/assets/', index: false, cacheControl: false });
  for (const path of PAGES) {
    app.get(path, async (_request, reply) => {
      if (!existsSync(join(publicDir, 'index.html'))) {
        throw new TetherError('NOT_FOUND', 'The web UI is not built: run `node apps/helpdesk/scripts/build-web.mjs`');
      }
      return reply.header('cache-control', 'no-cache').sendFile('index.html');
    });
  }
}
