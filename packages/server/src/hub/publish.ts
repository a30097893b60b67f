import { randomFillSync } from 'node:crypto';
import {
  RESERVED_EVENT_NAMES,
  TetherError,
  normalizeScope,
  scopeAncestry,
  type PublishRequest,
} from '@tether/protocol';
import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth } from '../util/json-depth.js';
import { isValidChannelName } from './channels.js';
import type { SessionIndexes } from './indexes.js';
import type { HubSession } from './session.js';
import type { PublishEnvelope } from './types.js';

export const MAX_EVENT_NAME_LENGTH = 128;
export const MAX_PUBLISH_ID_LENGTH = 128;
/** Per target list; a publish to more recipients than this is better split by the caller. */
export const MAX_TARGETS = 10_000;

/**
 * Events per batch publish. A batch is validated whole and applied in order by one request; larger
 * sets are sent as several batches (ordering across batches is the caller's, as for single publishes).
 */
export const MAX_BATCH_EVENTS = 1000;

/** Random bytes drawn 4 KB at a time: one `randomFillSync` per 341 ids instead of one per id (as `randomUUID` does). */
const pool = Buffer.alloc(4092);
let pooled = pool.length;

/** A random publish id: 16 base64url characters (96 bits). */
export function generateId(): string {
  if (pooled === pool.length) {
    randomFillSync(pool);
    pooled = 0;
  }
  pooled += 12;
  return pool.toString('base64url', pooled - 12, pooled);
}

/** Envelopes whose id `validatePublish` generated: no earlier append can hold it, so the log need not look. */
const generated = new WeakSet<PublishEnvelope>();

/** Whether this envelope's id was generated here (not given by the publisher, who may retry with it). */
export function idWasGenerated(envelope: PublishEnvelope): boolean {
  return generated.has(envelope);
}

/**
 * Checks a publish request and returns it as an envelope with an id (the given one, or a new one).
 * Throws `TetherError('VALIDATION_FAILED', <which field and why>)`.
 *
 * `maxDepth` bounds how deep `data` nests (`MAX_JSON_DEPTH`): HTTP bodies are checked as they are
 * parsed, but an in-process publish, a NOTIFY payload or an outbox row reaches the event log only
 * through here, and a too-deep object would overflow the stack in its JSON encoding.
 *
 * `data` reaches every client exactly as given (its own `id` field included); the event id travels
 * beside it (the `/ws` frame's `id`, the second Socket.IO argument a client asks for).
 */
export function validatePublish(request: PublishRequest, maxDepth = DEFAULT_MAX_JSON_DEPTH): PublishEnvelope {
  if (!isPlainObject(request)) fail('body must be an object');
  const { event, data, to, id } = request;
  if (typeof event !== 'string' || event.length === 0 || event.length > MAX_EVENT_NAME_LENGTH) {
    fail(`event must be a non-empty string of at most ${MAX_EVENT_NAME_LENGTH} characters`);
  }
  if (RESERVED_EVENT_NAMES.has(event)) fail(`event "${event}" is a reserved name`);
  if (data !== undefined && !isPlainObject(data)) fail('data must be a JSON object');
  if (data !== undefined && exceedsJsonDepth(data, maxDepth)) fail(`data nests deeper than ${maxDepth} levels`);
  if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > MAX_PUBLISH_ID_LENGTH)) {
    fail(`id must be a non-empty string of at most ${MAX_PUBLISH_ID_LENGTH} characters`);
  }
  if (!isPlainObject(to)) fail('to must be an object with users, scopes or channels');

  const users = list(
    to.users,
    'to.users',
    (v) => typeof v === 'string' && v.length > 0 && v.length <= 256,
    'a non-empty user id',
  );
  const scopes = list(to.scopes, 'to.scopes', (v) => typeof v === 'string', 'a scope path').map((scope, i) => {
    const normalized = normalizeScope(scope);
    if (normalized === undefined) fail(`to.scopes[${i}] is not a valid scope path`);
    return normalized;
  });
  const channels = list(
    to.channels,
    'to.channels',
    isValidChannelName,
    'a channel name of 1–200 characters of [A-Za-z0-9_.:/-]',
  );
  if (users.length + scopes.length + channels.length === 0) {
    fail('to must name at least one user, scope or channel');
  }
  const envelope = { id: id ?? generateId(), event, data: data ?? {}, to: { users, scopes, channels } };
  if (id === undefined) generated.add(envelope);
  return envelope;
}

/**
 * Checks a batch: 1–`MAX_BATCH_EVENTS` requests, each valid, no id given twice (the second would be
 * a retry of the first and deliver nothing new). All or nothing: one bad event refuses the batch
 * before any is published, with its index in the message (`[3] to.users must be an array`).
 */
export function validateBatch(requests: unknown, maxDepth = DEFAULT_MAX_JSON_DEPTH): PublishEnvelope[] {
  if (!Array.isArray(requests)) fail('a batch must be an array of publish requests');
  if (requests.length === 0 || requests.length > MAX_BATCH_EVENTS) {
    fail(`a batch must hold 1–${MAX_BATCH_EVENTS} events, not ${requests.length}`);
  }
  const ids = new Set<string>();
  return requests.map((request: PublishRequest, i) => {
    let envelope: PublishEnvelope;
    try {
      envelope = validatePublish(request, maxDepth);
    } catch (err) {
      fail(`[${i}] ${(err as Error).message}`);
    }
    if (ids.has(envelope.id)) fail(`[${i}] id "${envelope.id}" is given twice in the batch`);
    ids.add(envelope.id);
    return envelope;
  });
}

/**
 * Calls `visit` once for each local session the envelope addresses. A session matched by several
 * targets is visited once: `stamp` (unique per publish) is written on the session on first visit.
 * Cost: one map lookup per user and channel, and per ancestor of each scope (O(depth)), plus the
 * recipients themselves — independent of how many sessions exist in total.
 */
export function route(
  indexes: SessionIndexes,
  envelope: PublishEnvelope,
  stamp: number,
  visit: (session: HubSession) => void,
): void {
  const once = (session: HubSession): void => {
    if (session.stamp === stamp || session.closed) return;
    session.stamp = stamp;
    visit(session);
  };
  for (const user of envelope.to.users) indexes.byUser.forEach(user, once);
  for (const scope of envelope.to.scopes) {
    for (const grant of scopeAncestry(scope)) indexes.byScope.forEach(grant, once);
  }
  for (const channel of envelope.to.channels) indexes.byChannel.forEach(channel, once);
}

/** A target list of strings, each accepted by `valid`; absent means empty. */
function list(value: unknown, field: string, valid: (v: unknown) => boolean, what: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(`${field} must be an array`);
  if (value.length > MAX_TARGETS) fail(`${field} must have at most ${MAX_TARGETS} entries`);
  value.forEach((v: unknown, i) => {
    if (!valid(v)) fail(`${field}[${i}] must be ${what}`);
  });
  return value as string[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function fail(message: string): never {
  throw new TetherError('VALIDATION_FAILED', message);
}
