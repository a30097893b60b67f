import { isErrorCode, TetherError, type ErrorCode, type SendAck } from '@tether/protocol';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { ForwardedSend, SendForwarder } from './types.js';

export interface WebhookForwarderOptions {
  /** CLIENT_EVENTS_URL */
  url: string;
  /** Sent as `Authorization: Bearer …` so the app can tell the caller is its gateway (an API key). */
  apiKey?: string;
  clock: Clock;
  logger: Logger;
  /** Attempts per send on 5xx and network errors. Default 4. */
  maxAttempts?: number;
  /** First retry delay; doubles each time, with full jitter. Default 200 ms. */
  baseDelayMs?: number;
  /** Per attempt. Default 10 s. */
  timeoutMs?: number;
  random?: () => number;
}

/**
 * Forwards client sends to the app's endpoint: `POST {event, data, key, userId, sessionId}` with an
 * `Idempotency-Key` header. 2xx: the JSON body (if any) is the result. 4xx: the app refused; its
 * `{code, message}` is passed on when the code is one of ours. 5xx, timeouts and network errors
 * are retried with backoff and the same key (the app may dedupe on it too), then SEND_FAILED.
 *
 *   client ─send{key}─► gateway ─POST (1..n, same key)─► app
 *          ◄──ack────── gateway ◄─2xx body / 4xx {code}── app
 *
 * @example
 *   const forward = createWebhookForwarder({ url: config.clientEventsUrl, apiKey, clock, logger });
 *   const ack = await forward({ event: 'chat_message', data: { text: 'hi' }, key, userId, sessionId });
 */
export function createWebhookForwarder(options: WebhookForwarderOptions): SendForwarder {
  const { url, clock, logger } = options;
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const baseDelayMs = options.baseDelayMs ?? 200;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const random = options.random ?? Math.random;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => void clock.setTimeout(resolve, ms));

  return async function forward(send: ForwardedSend): Promise<SendAck> {
    const body = JSON.stringify(send);
    let last = '';
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (attempt > 1) await sleep(Math.round(random() * baseDelayMs * 2 ** (attempt - 2)));
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { ...headers, 'idempotency-key': send.key },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        last = (err as Error).message;
        logger.warn({ component: 'sends', event: send.event, attempt, err: last }, 'client event forward failed');
        continue;
      }
      const text = await response.text().catch(() => '');
      if (response.status >= 500) {
        last = `HTTP ${response.status}`;
        logger.warn(
          { component: 'sends', event: send.event, attempt, status: response.status },
          'client event forward failed',
        );
        continue;
      }
      if (response.ok) return { ok: true, ...resultOf(text) };
      return refusal(response.status, text);
    }
    const error = new TetherError('SEND_FAILED', `The application did not answer (${last}); retry with the same key`);
    return { ok: false, code: error.code, message: error.message };
  };
}

function resultOf(text: string): { result?: unknown } {
  if (text.length === 0) return {};
  try {
    return { result: JSON.parse(text) as unknown };
  } catch {
    return { result: text };
  }
}

/** A 4xx from the app: its own `{code, message}` when the code is ours, else one by status. */
function refusal(status: number, text: string): SendAck {
  let code: ErrorCode =
    status === 404
      ? 'NOT_FOUND'
      : status === 403 || status === 401
        ? 'FORBIDDEN'
        : status === 409
          ? 'CONFLICT'
          : status === 429
            ? 'RATE_LIMITED'
            : 'VALIDATION_FAILED';
  let message = new TetherError(code).message;
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    if (isErrorCode(body.code)) code = body.code;
    if (typeof body.message === 'string') message = body.message.slice(0, 500);
    else message = new TetherError(code).message;
  } catch {
    // Not JSON: the status decides.
  }
  return { ok: false, code, message };
}
