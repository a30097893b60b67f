import type { SendAck } from '@tether/protocol';
import type { Principal } from '../auth/types.js';

/** What `begin` finds for a `(scope, key)`. */
export type IdempotencyBegin = { status: 'new' } | { status: 'done'; result: unknown } | { status: 'pending' };

/**
 * Remembers client sends by `(scope, key)` so a retry after a lost acknowledgement is applied once.
 * `begin` claims the key atomically: exactly one caller sees `new` until `finish` or `release`.
 * Implementations: `memory-idempotency.ts` (one node); a Redis one in cluster mode.
 */
export interface IdempotencyStore {
  begin(scope: string, key: string, ttlMs: number): Promise<IdempotencyBegin>;
  /** Records the result; later `begin`s of the key answer `done` with it until `ttlMs` passes. */
  finish(scope: string, key: string, result: unknown, ttlMs: number): Promise<void>;
  /** Forgets a claimed key whose send failed in a way a retry may fix (optional: else the failure is kept). */
  release?(scope: string, key: string): Promise<void>;
}

/** Who sent a client event: given to the app's handler. */
export interface SendContext {
  userId: string;
  sessionId: string;
  principal: Principal;
}

/**
 * An app's handler for one client event name. Its return value is the `result` of the ack;
 * throwing a `TetherError` answers `{ok:false, code, message}` (anything else: SEND_FAILED).
 */
export type ClientEventHandler = (ctx: SendContext, data: unknown) => unknown;

/** A validated send, as the forwarder posts it to `CLIENT_EVENTS_URL`. */
export interface ForwardedSend {
  event: string;
  data: unknown;
  key: string;
  userId: string;
  sessionId: string;
}

/** Sends a client event to the app over HTTP; answers the ack. */
export type SendForwarder = (send: ForwardedSend) => Promise<SendAck>;
