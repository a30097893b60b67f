import { ERRORS, RESERVED_EVENT_NAMES, TetherError, type SendAck } from '@tether/protocol';
import { plainPrincipal } from '../auth/claims.js';
import type { Session } from '../hub/types.js';
import type { Logger } from '../util/logger.js';
import type { ClientEventHandler, IdempotencyStore, SendForwarder } from './types.js';

export const MAX_SEND_EVENT_CHARS = 128;
export const MAX_SEND_KEY_CHARS = 128;

export interface SendDispatcherDeps {
  idempotency: IdempotencyStore;
  /** How long a result is kept for retries (IDEMPOTENCY_TTL_SECONDS). */
  ttlMs: number;
  /** Used for events without an in-process handler (CLIENT_EVENTS_URL). */
  forward?: SendForwarder;
  logger: Logger;
}

/** Client → server sends: validation, idempotency, then the app's handler or its endpoint. */
export interface SendDispatcher {
  /** Registers the handler of one client event name (replacing any); returns a function removing it. */
  on(event: string, handler: ClientEventHandler): () => void;
  /** Answers one `send` of a live session. Never throws. */
  handle(session: Session, payload: unknown): Promise<SendAck>;
}

/**
 * The send path shared by both transports:
 *
 *   send{event,data,key} ─► validate ─► handler or forwarder? (none: NOT_FOUND)
 *     ─► idempotency.begin(userId, key) ─ done ─► the stored ack (the handler is not called again)
 *                                       ─ pending ─► same node: wait for it; else SEND_FAILED (retry)
 *                                       ─ new ─► handler ─► finish(ack) (retryable failure: release)
 *
 * @example
 *   const sends = createSendDispatcher({ idempotency: createMemoryIdempotencyStore({ clock }), ttlMs: 600_000, logger });
 *   sends.on('chat_message', async (ctx, data) => saveMessage(ctx.userId, data));
 */
export function createSendDispatcher(deps: SendDispatcherDeps): SendDispatcher {
  const { idempotency, ttlMs, logger } = deps;
  const handlers = new Map<string, ClientEventHandler>();
  /** Sends in progress on this node, so a retry racing its original waits for the same answer. */
  const inFlight = new Map<string, Promise<SendAck>>();

  async function run(
    session: Session,
    event: string,
    data: unknown,
    key: string,
    handler: ClientEventHandler | undefined,
  ): Promise<SendAck> {
    const claim = await idempotency.begin(session.userId, key, ttlMs);
    if (claim.status === 'done') return claim.result as SendAck;
    if (claim.status === 'pending')
      return failure(
        new TetherError('SEND_FAILED', 'A send with this key is still being processed; retry with the same key'),
      );
    let ack: SendAck;
    if (handler !== undefined) {
      try {
        const result: unknown = await handler(
          // A plain copy: the app may spread or keep it (the session's reads from the token's claims).
          { userId: session.userId, sessionId: session.id, principal: plainPrincipal(session.principal) },
          data,
        );
        ack = result === undefined ? { ok: true } : { ok: true, result };
      } catch (err) {
        if (!(err instanceof TetherError))
          logger.error({ component: 'sends', event, err }, 'client event handler threw');
        ack = failure(err instanceof TetherError ? err : new TetherError('SEND_FAILED'));
      }
    } else {
      ack = await (deps.forward as SendForwarder)({ event, data, key, userId: session.userId, sessionId: session.id });
    }
    // A failure a retry may fix frees the key; anything else is the answer for every retry.
    if (!ack.ok && ERRORS[ack.code].retryable && idempotency.release !== undefined)
      await idempotency.release(session.userId, key);
    else await idempotency.finish(session.userId, key, ack, ttlMs);
    return ack;
  }

  async function handle(session: Session, payload: unknown): Promise<SendAck> {
    let request;
    try {
      request = readSend(payload);
    } catch (err) {
      return failure(err as TetherError);
    }
    const { event, data, key } = request;
    const handler = handlers.get(event);
    if (handler === undefined && deps.forward === undefined)
      return failure(new TetherError('NOT_FOUND', `No handler for client event "${event}"`));
    const name = `${session.userId.length}:${session.userId}${key}`;
    const running = inFlight.get(name);
    if (running !== undefined) return running;
    const answer = run(session, event, data, key, handler).catch((err: unknown) => {
      logger.error({ component: 'sends', event, err }, 'client send failed');
      return failure(new TetherError('SEND_FAILED'));
    });
    inFlight.set(name, answer);
    const ack = await answer;
    inFlight.delete(name);
    logger.debug(
      {
        component: 'sends',
        sessionId: session.id,
        userId: session.userId,
        name: event,
        ok: ack.ok,
        code: ack.ok ? undefined : ack.code,
      },
      'client send answered',
    );
    return ack;
  }

  return {
    on(event, handler) {
      handlers.set(event, handler);
      return () => {
        if (handlers.get(event) === handler) handlers.delete(event);
      };
    },
    handle,
  };
}

function failure(error: TetherError): SendAck {
  return { ok: false, code: error.code, message: error.message };
}

/** `{event, data, key}` of a Socket.IO `send` or a `/ws` send frame. Throws VALIDATION_FAILED. */
export function readSend(payload: unknown): { event: string; data: unknown; key: string } {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw invalid('send needs an object {event, data, key}');
  const { event, data, key } = payload as Record<string, unknown>;
  if (typeof event !== 'string' || event.length === 0 || event.length > MAX_SEND_EVENT_CHARS) {
    throw invalid(`"event" must be a non-empty string of at most ${MAX_SEND_EVENT_CHARS} characters`);
  }
  if (RESERVED_EVENT_NAMES.has(event)) throw invalid(`"${event}" is a reserved event name`);
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_SEND_KEY_CHARS) {
    throw invalid(`"key" (the idempotency key) must be a non-empty string of at most ${MAX_SEND_KEY_CHARS} characters`);
  }
  return { event, data, key };
}

function invalid(message: string): TetherError {
  return new TetherError('VALIDATION_FAILED', message);
}
