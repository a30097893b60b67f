import { ErrorCode, ERRORS } from '@tether/protocol';
import { z } from 'zod';

/**
 * One HTTP operation as the OpenAPI document describes it. Each route file lists its own beside
 * its handlers, with the same zod schemas the handlers validate with, so a route and its
 * description change together; `test/openapi.test.ts` checks that every registered route is
 * described and that real answers match.
 */
export interface ApiOperation {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** OpenAPI form: `/v1/users/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: 'auth' | 'publish' | 'users' | 'presence' | 'devices' | 'system';
  /** `apiKey`: `/v1` (`Authorization: Bearer <key>`); `refreshCookie`: reads the cookie; none by default. */
  security?: readonly ('apiKey' | 'refreshCookie' | 'bearer')[];
  /** Path parameters (an object schema). */
  params?: z.ZodObject;
  /** The request body, as the handler parses it (`parseBody`). */
  body?: z.ZodType;
  bodyRequired?: boolean;
  /** Success answers by status; `schema` absent for a bodiless one, `contentType` for non-JSON. */
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
  /** Registry codes this operation can answer with (besides the ones every route can: see `COMMON_ERRORS`). */
  errors: readonly ErrorCode[];
}

/** Codes any route can answer: a malformed, oversize (FRAME_TOO_LARGE) or slow body, a draining node, a bug. */
export const COMMON_ERRORS: readonly ErrorCode[] = [
  'VALIDATION_FAILED',
  'FRAME_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'SERVER_SHUTDOWN',
  'INTERNAL',
];

/** The body of every error answer (the protocol's `ErrorBody`; some routes add fields, listed per route). */
export const errorBodySchema = z
  .object({
    code: z.enum(ErrorCode),
    message: z.string(),
    timestamp: z.number().int(),
    retryAfterMs: z.number().int().optional(),
  })
  // Some answers add fields (a batch's `results`, `/readyz`'s `checks`): other keys are allowed.
  .loose()
  .describe('Every error answer: a registry code, a message, when.');

/** The OpenAPI 3.1 document for `operations`. Built once at start-up; `version` is the package's. */
export function buildOpenApi(version: string, operations: readonly ApiOperation[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const toSchema = (schema: z.ZodType, io: 'input' | 'output') =>
    strip(z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', reused: 'inline' }));
  for (const op of operations) {
    const responses: Record<string, unknown> = {};
    for (const [status, answer] of Object.entries(op.responses)) {
      responses[status] =
        answer.schema === undefined
          ? { description: answer.description }
          : {
              description: answer.description,
              content: { [answer.contentType ?? 'application/json']: { schema: toSchema(answer.schema, 'output') } },
            };
    }
    const byStatus = new Map<number, ErrorCode[]>();
    for (const code of new Set([...op.errors, ...COMMON_ERRORS])) {
      const status = ERRORS[code].httpStatus;
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
      responses[String(status)] = {
        description: codes.join(', '),
        content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } },
      };
    }
    const parameters =
      op.params === undefined
        ? undefined
        : Object.entries(op.params.shape).map(([name, schema]) => ({
            name,
            in: 'path',
            required: true,
            schema: toSchema(schema as z.ZodType, 'input'),
          }));
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description === undefined ? {} : { description: op.description }),
      tags: [op.tag],
      ...(op.security === undefined ? {} : { security: op.security.map((name) => ({ [name]: [] })) }),
      ...(parameters === undefined ? {} : { parameters }),
      ...(op.body === undefined
        ? {}
        : {
            requestBody: {
              required: op.bodyRequired ?? true,
              content: { 'application/json': { schema: toSchema(op.body, 'input') } },
            },
          }),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tether gateway HTTP API',
      version,
      description:
        'The token service (`/auth/*`), the server-to-server API (`/v1/*`, API key) and the system routes of a ' +
        'Tether gateway. Generated at start-up from the schemas the routes validate with. Realtime traffic ' +
        '(`/ws`, `/socket.io`) is described in docs/PROTOCOL.md.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: [
      { name: 'auth', description: 'Token service: login, refresh, logout, guests.' },
      { name: 'publish', description: 'Publishing events to users, scopes and channels.' },
      { name: 'users', description: 'The built-in user store.' },
      { name: 'presence', description: 'Who is connected, on every node.' },
      { name: 'devices', description: 'Push devices for users without a live connection.' },
      { name: 'system', description: 'Health, readiness, metrics, keys.' },
    ],
    paths,
    components: {
      schemas: { ErrorBody: toSchema(errorBodySchema, 'output') },
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'One of API_KEYS, as `Authorization: Bearer <key>`.',
        },
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token.' },
        refreshCookie: {
          type: 'apiKey',
          in: 'cookie',
          name: 'refresh_token',
          description: 'The httpOnly refresh cookie set by login (cookie mode).',
        },
      },
    },
  };
}

/** Drops the per-schema `$schema` (the document's `jsonSchemaDialect` says it once). */
function strip(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}
