import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { DeviceStore } from './device-store.js';

const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** What the webhook receives, one POST per offline user and event. */
export interface PushWebhookBody {
  userId: string;
  devices: { id: string; platform: string; token: string }[];
  event: string;
  data: Record<string, unknown>;
  id: string;
}

export interface PushFallbackDeps {
  webhookUrl: string;
  maxAttempts: number;
  devices: DeviceStore;
  /** Whether the user has a live connection on any node. */
  isOnline(userId: string): Promise<boolean>;
  logger: Logger;
  clock: Clock;
  /** Randomness for backoff jitter, in [0, 1). */
  random?: () => number;
  /**
   * An addressed user who is online: called instead of pushing (push on a missing receipt schedules
   * a push for later). Absent: online users are not pushed.
   */
  whenOnline?(userId: string, event: PushEvent): void;
  /** A push for the user was handed to the webhook (its first attempt), with why. */
  onPushed?(eventId: string, userId: string, reason: 'offline' | 'no_receipt'): void;
}

export interface PushEvent {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

export interface PushFallback {
  /** Called after a successful publish; sends in the background, never throws. */
  notify(event: PushEvent & { users: readonly string[] }): void;
  /** Pushes the event to the user's devices now, online or not (no device acknowledged it in time). */
  pushNow(userId: string, event: PushEvent): Promise<void>;
  /** Cancels pending retries; resolves when in-flight requests have ended. */
  stop(): Promise<void>;
}

/**
 * Push fallback: a user-addressed event for a user with no live connection anywhere (cluster-wide
 * presence) and at least one registered device is POSTed to `PUSH_WEBHOOK_URL` — an Expo/FCM/APNs
 * relay the app runs. Network errors, timeouts, 408, 429 and 5xx are retried with capped exponential
 * backoff and full jitter, `PUSH_MAX_ATTEMPTS` attempts in all; other 4xx answers are final.
 * Only the publishing node sends, so each event is pushed once per user.
 *
 * @example
 *   const push = createPushFallback({ webhookUrl, maxAttempts: 5, devices, isOnline, logger, clock });
 *   push.notify({ id: result.id, event: 'ticket_assigned', data, users: ['u1'] });
 */
export function createPushFallback(deps: PushFallbackDeps): PushFallback {
  const { logger, clock } = deps;
  const random = deps.random ?? Math.random;
  const timers = new Set<TimerHandle>();
  const inflight = new Set<Promise<void>>();
  let stopped = false;

  function track(work: Promise<void>): void {
    inflight.add(work);
    void work.finally(() => inflight.delete(work));
  }

  async function attempt(body: PushWebhookBody, n: number): Promise<void> {
    if (stopped) return;
    let status = 0;
    let reason = '';
    try {
      const response = await fetch(deps.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = response.status;
      await response.body?.cancel();
    } catch (err) {
      reason = (err as Error).message;
    }
    const fields = {
      component: 'push',
      userId: body.userId,
      eventId: body.id,
      attempt: n,
      status: status || undefined,
    };
    if (status >= 200 && status < 300) {
      logger.info({ ...fields, devices: body.devices.length }, 'push webhook delivered');
      return;
    }
    const retryable = status === 0 || status === 408 || status === 429 || status >= 500;
    if (!retryable || n >= deps.maxAttempts) {
      logger.warn({ ...fields, reason: reason || undefined, final: true }, 'push webhook failed');
      return;
    }
    const delay = Math.floor(random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (n - 1)));
    logger.info({ ...fields, reason: reason || undefined, retryInMs: delay }, 'push webhook failed; retrying');
    const timer = clock.setTimeout(() => {
      timers.delete(timer);
      track(attempt(body, n + 1));
    }, delay);
    timers.add(timer);
  }

  async function forUser(userId: string, event: PushEvent): Promise<void> {
    if (await deps.isOnline(userId)) {
      deps.whenOnline?.(userId, event);
      return;
    }
    await pushTo(userId, event, 'offline');
  }

  async function pushTo(userId: string, event: PushEvent, reason: 'offline' | 'no_receipt'): Promise<void> {
    const devices = await deps.devices.listByUser(userId);
    if (devices.length === 0) return;
    const body: PushWebhookBody = {
      userId,
      devices: devices.map(({ id, platform, token }) => ({ id, platform, token })),
      event: event.event,
      data: event.data,
      id: event.id,
    };
    deps.onPushed?.(event.id, userId, reason);
    await attempt(body, 1);
  }

  /** Runs one user's push in the background: tracked for stop(), its failure logged, never thrown. */
  function guarded(userId: string, eventId: string, work: Promise<void>): Promise<void> {
    const logged = work.catch((err: unknown) =>
      logger.warn({ component: 'push', userId, eventId, err: (err as Error).message }, 'push fallback failed'),
    );
    track(logged);
    return logged;
  }

  return {
    notify(event) {
      if (stopped) return;
      for (const userId of new Set(event.users)) void guarded(userId, event.id, forUser(userId, event));
    },
    async pushNow(userId, event) {
      if (stopped) return;
      await guarded(userId, event.id, pushTo(userId, event, 'no_receipt'));
    },
    async stop() {
      stopped = true;
      for (const timer of timers) clock.clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...inflight]);
    },
  };
}
