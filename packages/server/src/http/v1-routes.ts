import {
  ERRORS,
  TetherError,
  type ErrorBody,
  type PublishBatchResult,
  type PublishRequest,
  type PublishResult,
} from '@tether/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { PublicUser } from '../auth/user-admin.js';
import { MAX_BATCH_EVENTS } from '../hub/publish.js';
import type { Hub, PresenceEntry } from '../hub/types.js';
import type { DeliveryReport, TimelineReport } from '../receipts/types.js';
import type { ApiKeys } from './api-key.js';
import { errorBodySchema, type ApiOperation } from './openapi.js';
import { parseBody } from './validate.js';

/** What the `/v1` server-to-server routes need; the gateway provides it. */
export interface V1Deps {
  hub: Hub;
  apiKeys: ApiKeys;
  publish(request: PublishRequest): Promise<PublishResult>;
  publishBatch(requests: readonly PublishRequest[]): Promise<PublishBatchResult>;
  disconnectUser(userId: string): Promise<number>;
  /** Connections of a user on every node (cluster mode); default: `hub.presence`, this node only. */
  presence?(userId: string): Promise<PresenceEntry[]>;
  /** The delivery record of an event (undefined: nothing recorded under that id). */
  deliveries(eventId: string): Promise<DeliveryReport | undefined>;
  /** A user's connection timeline. */
  timeline(userId: string, options: { limit: number; before?: number }): Promise<TimelineReport>;
  /** Built-in user store operations; absent when the gateway only verifies external tokens. */
  users:
    | {
        create(input: UserInput): Promise<PublicUser>;
        update(id: string, patch: UserPatchInput): Promise<PublicUser>;
        get(id: string): Promise<PublicUser | undefined>;
      }
    | undefined;
}

const stringList = z.array(z.string().min(1).max(512)).max(1000);

// The bodies as parsed below; the OpenAPI document (`v1Operations`) describes these same objects.
export const publishSchema = z.object({
  event: z.string().min(1).max(128),
  data: z.record(z.string(), z.unknown()).optional(),
  to: z
    .object({ users: stringList.optional(), scopes: stringList.optional(), channels: stringList.optional() })
    .strict(),
  id: z.string().min(1).max(128).optional(),
});

/**
 * A batch as the document describes it. The route hands an array to the hub, whose `validateBatch`
 * checks it (all or nothing, its messages naming the event's index): this schema is for readers.
 */
export const publishBatchSchema = z.array(publishSchema).min(1).max(MAX_BATCH_EVENTS);

/** A batch body may be larger than other bodies: up to 1,000 events. */
export const BATCH_BODY_LIMIT = 8 * 1024 * 1024;

export const userSchema = z.object({
  email: z.email().max(320),
  password: z.string().min(8).max(1024),
  name: z.string().min(1).max(200),
  role: z.string().min(1).max(64).default('user'),
  scopes: stringList.default([]),
  channels: stringList.default([]),
});
export type UserInput = z.output<typeof userSchema>;

export const userPatchSchema = z
  .object({
    name: z.string().min(1).max(200),
    role: z.string().min(1).max(64),
    scopes: stringList,
    channels: stringList,
    active: z.boolean(),
    password: z.string().min(8).max(1024),
  })
  .partial()
  .strict();
export type UserPatchInput = z.output<typeof userPatchSchema>;

export const idParam = z.object({ id: z.string().min(1).max(200) });

const publishAnswer = z.object({
  id: z.string(),
  delivered: z.number().int().describe('connections this node wrote the event to'),
});
/** One event's answer in a batch: published, or the error that event met. */
const batchResults = z.array(z.union([publishAnswer, z.object({ id: z.string(), error: errorBodySchema })]));
const batchAnswer = z.object({ results: batchResults });
const publicUser = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  role: z.string(),
  scopes: z.array(z.string()),
  channels: z.array(z.string()),
  active: z.boolean(),
});
const presenceEntry = z.object({
  sessionId: z.string(),
  userId: z.string(),
  transport: z.enum(['socket.io', 'ws']),
  connectedAt: z.number().int(),
  expiresAt: z.number().int(),
  ip: z.string(),
  userAgent: z.string().optional(),
  isGuest: z.boolean(),
  node: z.string(),
  rttMs: z.number().optional().describe('the last heartbeat round trip measured on it, in ms'),
});
const deviceDelivery = z.object({
  sessionId: z.string(),
  device: z.string().describe('the login session (refresh family) of its token, else the connection id'),
  transport: z.string(),
  node: z.string(),
  path: z.enum(['live', 'recovery']),
  deliveredAt: z.number().int(),
  acknowledgedAt: z.number().int().nullable().describe('when its SDK reported the event reached the app; null: not'),
});
const deliveryReport = z.object({
  id: z.string(),
  event: z.string().nullable(),
  publishedAt: z.number().int().nullable(),
  users: z.array(
    z.object({
      userId: z.string(),
      acknowledged: z.boolean(),
      devices: z.array(deviceDelivery),
      pushes: z.array(z.object({ at: z.number().int(), reason: z.string() })),
    }),
  ),
  unacknowledged: z.number().int(),
});
const timelineReport = z.object({
  userId: z.string(),
  entries: z.array(
    z.object({
      id: z.number().int(),
      at: z.number().int(),
      kind: z.enum(['connect', 'reauth', 'reauth_failed', 'warning', 'expired', 'revoked', 'disconnect']),
      sessionId: z.string(),
      device: z.string(),
      transport: z.string(),
      node: z.string(),
      code: z.string().nullable(),
      reason: z.string().nullable(),
      detail: z.record(z.string(), z.unknown()).nullable(),
    }),
  ),
  reconnectsLastHour: z.number().int(),
  devices: z.array(presenceEntry),
});
export const timelineQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(200),
  before: z.coerce.number().int().min(1).optional(),
});
const userStoreErrors = ['API_KEY_INVALID', 'LOGIN_DISABLED'] as const;

/** The OpenAPI description of the routes below (`openapi.ts`). */
export const v1Operations: readonly ApiOperation[] = [
  {
    method: 'post',
    path: '/v1/publish',
    operationId: 'publish',
    summary: 'Publish one event, or a batch of up to 1,000 in order',
    description:
      'An object publishes one event (202 `{id, delivered}`). An array publishes a batch, validated whole and ' +
      "applied in order: 202 `{results}` with one answer per event, or, when one failed, that failure's " +
      'status and body with `results` beside it.',
    tag: 'publish',
    security: ['apiKey'],
    body: z.union([publishSchema, publishBatchSchema]),
    responses: {
      202: {
        description: 'Published (an event: `{id, delivered}`; a batch: `{results}`)',
        schema: z.union([publishAnswer, batchAnswer]),
      },
    },
    errors: ['API_KEY_INVALID', 'PUBLISH_FAILED'],
    errorFields: { results: batchResults.describe("a failed batch: every event's own answer") },
  },
  {
    method: 'post',
    path: '/v1/users/{id}/disconnect',
    operationId: 'disconnectUser',
    summary: "Close every connection of a user, on every node, and revoke the user's sessions",
    tag: 'users',
    security: ['apiKey'],
    params: idParam,
    responses: { 200: { description: 'Connections closed', schema: z.object({ disconnected: z.number().int() }) } },
    errors: ['API_KEY_INVALID'],
  },
  {
    method: 'get',
    path: '/v1/presence/users/{id}',
    operationId: 'presence',
    summary: "A user's live connections (every node in cluster mode)",
    tag: 'presence',
    security: ['apiKey'],
    params: idParam,
    responses: {
      200: {
        description: 'Presence',
        schema: z.object({ online: z.boolean(), connections: z.array(presenceEntry) }),
      },
    },
    errors: ['API_KEY_INVALID'],
  },
  {
    method: 'get',
    path: '/v1/events/{id}/deliveries',
    operationId: 'eventDeliveries',
    summary: 'Which device of which addressed user received an event, when, by which path, and its receipt',
    description:
      'Recorded for events addressed to users by id (`DELIVERY_RECORD=users`, the default) or every event ' +
      '(`all`), for `DELIVERY_RETENTION_SECONDS`. 404 when nothing is recorded under the id.',
    tag: 'deliveries',
    security: ['apiKey'],
    params: idParam,
    responses: { 200: { description: 'The delivery record', schema: deliveryReport } },
    errors: ['API_KEY_INVALID', 'NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/v1/users/{id}/timeline',
    operationId: 'userTimeline',
    summary: "A user's connection timeline: connects, reauths, warnings, expiries, revocations, disconnects",
    tag: 'deliveries',
    security: ['apiKey'],
    params: idParam,
    query: timelineQuery,
    responses: {
      200: { description: 'The newest entries, oldest first, and the live connections', schema: timelineReport },
    },
    errors: ['API_KEY_INVALID', 'VALIDATION_FAILED'],
  },
  {
    method: 'post',
    path: '/v1/users',
    operationId: 'createUser',
    summary: 'Create a user in the built-in store',
    tag: 'users',
    security: ['apiKey'],
    body: userSchema,
    responses: { 201: { description: 'Created', schema: publicUser } },
    errors: [...userStoreErrors, 'CONFLICT'],
  },
  {
    method: 'get',
    path: '/v1/users/{id}',
    operationId: 'getUser',
    summary: 'A user of the built-in store',
    tag: 'users',
    security: ['apiKey'],
    params: idParam,
    responses: { 200: { description: 'The user', schema: publicUser } },
    errors: [...userStoreErrors, 'NOT_FOUND'],
  },
  {
    method: 'patch',
    path: '/v1/users/{id}',
    operationId: 'updateUser',
    summary: "Change a user's name, role, grants, password or active flag",
    description: 'New grants apply to live connections at once; deactivating revokes the sessions.',
    tag: 'users',
    security: ['apiKey'],
    params: idParam,
    body: userPatchSchema,
    responses: { 200: { description: 'The user', schema: publicUser } },
    errors: [...userStoreErrors, 'NOT_FOUND'],
  },
];

export async function registerV1Routes(app: FastifyInstance, deps: V1Deps): Promise<void> {
  const requireApiKey = (request: FastifyRequest): void => {
    if (request.url.startsWith('/v1/')) deps.apiKeys.check(request);
  };
  // Also for URLs the router refuses, so nothing about /v1 is said before the key is checked.
  app.guards.add(requireApiKey);
  app.addHook('onRequest', async (request) => requireApiKey(request));

  // One event (an object) or a batch (an array, validated whole by the hub, answered per event).
  app.post('/v1/publish', { bodyLimit: BATCH_BODY_LIMIT }, async (request, reply) => {
    if (Array.isArray(request.body)) {
      const batch = await deps.publishBatch(request.body as PublishRequest[]);
      const failed = batch.results.find((r): r is { id: string; error: ErrorBody } => 'error' in r);
      if (failed === undefined) return reply.code(202).send(batch);
      // The first failure's code and status, with every event's own answer beside it.
      return reply.code(ERRORS[failed.error.code].httpStatus).send({ ...failed.error, results: batch.results });
    }
    const body = parseBody(publishSchema, request.body);
    const result = await deps.publish(body as PublishRequest);
    return reply.code(202).send(result);
  });

  app.post('/v1/users/:id/disconnect', async (request) => {
    const { id } = parseBody(idParam, request.params);
    return { disconnected: await deps.disconnectUser(id) };
  });

  app.get('/v1/presence/users/:id', async (request) => {
    const { id } = parseBody(idParam, request.params);
    const connections = deps.presence === undefined ? deps.hub.presence(id) : await deps.presence(id);
    return { online: connections.length > 0, connections };
  });

  app.get('/v1/events/:id/deliveries', async (request) => {
    const { id } = parseBody(idParam, request.params);
    const report = await deps.deliveries(id);
    if (report === undefined) throw new TetherError('NOT_FOUND', 'No deliveries are recorded for this event id');
    return report;
  });

  app.get('/v1/users/:id/timeline', async (request) => {
    const { id } = parseBody(idParam, request.params);
    const query = parseBody(timelineQuery, request.query);
    return deps.timeline(id, query);
  });

  app.post('/v1/users', async (request, reply) => {
    const users = requireUserStore(deps);
    const body = parseBody(userSchema, request.body);
    return reply.code(201).send(await users.create(body));
  });

  app.get('/v1/users/:id', async (request) => {
    const users = requireUserStore(deps);
    const { id } = parseBody(idParam, request.params);
    const user = await users.get(id);
    if (user === undefined) throw new TetherError('NOT_FOUND', 'No such user');
    return user;
  });

  app.patch('/v1/users/:id', async (request) => {
    const users = requireUserStore(deps);
    const { id } = parseBody(idParam, request.params);
    const patch = parseBody(userPatchSchema, request.body);
    return users.update(id, patch);
  });
}

function requireUserStore(deps: V1Deps): NonNullable<V1Deps['users']> {
  if (deps.users === undefined)
    throw new TetherError('LOGIN_DISABLED', 'The built-in user store is disabled on this gateway');
  return deps.users;
}
