import { TetherError } from '@tether/protocol';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { jsonTextExceedsDepth } from '../util/json-depth.js';

/** Parses with a zod schema; a failure is a VALIDATION_FAILED naming the first bad field. */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
  throw new TetherError('VALIDATION_FAILED', `${where}: ${issue?.message ?? 'invalid'}`);
}

/**
 * Every `application/json` body goes through here: its nesting depth is checked on the raw text,
 * before a single object is built, and only then is it parsed by fastify's own parser (which keeps
 * refusing `__proto__` and `constructor.prototype` keys). A body over `maxDepth` is answered
 * 400 VALIDATION_FAILED; nothing recursive downstream (zod, the event log's JSON.stringify) ever
 * sees it. The body size is bounded before this by fastify's `bodyLimit`.
 *
 * `allowEmpty`: an empty body parses as "no body" (for routes that take none, called by clients
 * that still send `Content-Type: application/json`); otherwise it is VALIDATION_FAILED.
 */
export function installJsonBodyParser(
  app: FastifyInstance,
  maxDepth: number,
  options: { allowEmpty?: boolean } = {},
): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (options.allowEmpty === true && (body as string).trim() === '') {
      done(null, undefined);
      return;
    }
    if (jsonTextExceedsDepth(body as string, maxDepth)) {
      done(new TetherError('VALIDATION_FAILED', `JSON nests deeper than ${maxDepth} levels`), undefined);
      return;
    }
    parse(request, body as string, done);
  });
}
