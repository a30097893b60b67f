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
  tag: 'auth' | 'publish' | 'users' | 'presence' | 'deliveries' | 'devices' | 'system';
  /**
   * Alternatives, any one of which is enough: `apiKey` for `/v1` (`Authorization: Bearer <key>`),
   * `refreshCookie` (the httpOnly cookie), `bearer` (an access token), `none` (e.g. a refresh token
   * in the body instead). Absent: the route takes no credentials.
   */
  security?: readonly ('apiKey' | 'refreshCookie' | 'bearer' | 'none')[];
  /** Path parameters (an object schema). */
  params?: z.ZodObject;
  /** Query parameters, each optional unless its schema refuses undefined. */
  query?: z.ZodObject;
  /** The request body, as the handler parses it (`parseBody`). */
  body?: z.ZodType;
  bodyRequired?: boolean;
  /** Success answers by status; `schema` absent for a bodiless one, `contentType` for non-JSON. */
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
  /** Registry codes this operation can answer with (besides the ones every route can: see `COMMON_ERRORS`). */
  errors: readonly ErrorCode[];
  /** Fields some of this route's error answers carry beside the registry body (documented as optional). */
  errorFields?: Record<string, z.ZodType>;
}

/**
 * Codes any route can answer: a malformed, oversize (FRAME_TOO_LARGE) or slow body, headers too
 * large, a draining node, a bug (`errors.ts` maps every framework and parser error to one of these).
 */
export const COMMON_ERRORS: readonly ErrorCode[] = [
  'VALIDATION_FAILED',
  'FRAME_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'HEADERS_TOO_LARGE',
  'SERVER_SHUTDOWN',
  'INTERNAL',
];

/** The body of every error answer: the protocol's `ErrorBody` (`TetherError.toBody()`). */
export const errorBodySchema = z
  .object({
    code: z.enum(ErrorCode),
    message: z.string(),
    timestamp: z.number().int(),
    retryAfterMs: z.number().int().optional(),
  })
  .describe('Every error answer: a registry code, a message, when (and for some codes, when to retry).');

/** The OpenAPI 3.1 document for `operations`. Built once at start-up; `version` is the package's. */
export function buildOpenApi(version: string, operations: readonly ApiOperation[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  // Anything zod cannot express in JSON Schema throws (at start-up, and in test/openapi.test.ts)
  // rather than being described as "anything".
  const toSchema = (schema: z.ZodType, io: 'input' | 'output') =>
    strip(z.toJSONSchema(schema, { target: 'draft-2020-12', io, reused: 'inline' }));
  // The shared error body, open so each answer below can add its own fields and close it again
  // (`unevaluatedProperties` sees through `allOf`; `additionalProperties` would not).
  const { additionalProperties: _open, ...errorBody } = toSchema(errorBodySchema, 'output');
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
    const extraFields =
      op.errorFields === undefined ? {} : toSchema(z.object(op.errorFields).partial(), 'output')['properties'];
    for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
      // The shared body, its `code` narrowed to what this route answers with this status.
      const schema = {
        allOf: [{ $ref: '#/components/schemas/ErrorBody' }],
        properties: { code: { enum: codes }, ...(extraFields as object) },
        unevaluatedProperties: false,
      };
      responses[String(status)] = { description: codes.join(', '), content: { 'application/json': { schema } } };
    }
    const parameters = [
      ...Object.entries(op.params?.shape ?? {}).map(([name, schema]) => ({
        name,
        in: 'path',
        required: true,
        schema: toSchema(schema as z.ZodType, 'input'),
      })),
      ...Object.entries(op.query?.shape ?? {}).map(([name, schema]) => ({
        name,
        in: 'query',
        required: !(schema as z.ZodType).safeParse(undefined).success,
        schema: toSchema(schema as z.ZodType, 'input'),
      })),
    ];
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description === undefined ? {} : { description: op.description }),
      tags: [op.tag],
      ...(op.security === undefined
        ? {}
        : { security: op.security.map((name) => (name === 'none' ? {} : { [name]: [] })) }),
      ...(parameters.length === 0 ? {} : { parameters }),
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
      { name: 'deliveries', description: 'Delivery records with receipts, and connection timelines.' },
      { name: 'devices', description: 'Push devices for users without a live connection.' },
      { name: 'system', description: 'Health, readiness, metrics, keys.' },
    ],
    paths,
    components: {
      schemas: { ErrorBody: errorBody },
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
