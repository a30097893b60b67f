import type { Logger } from '../util/logger.js';
import type { HubObserver } from './types.js';

/** Every observer callback, present and guarded. */
export type GuardedObserver = Required<HubObserver>;

const CALLBACKS = [
  'onSessionOpened',
  'onSessionClosed',
  'onAuthFailed',
  'onReauth',
  'onExpiryWarning',
  'onHeartbeat',
  'onPublish',
  'onDelivered',
] as const satisfies readonly (keyof HubObserver)[];

/**
 * Wraps an observer so the hub can call every callback unconditionally, and so a throwing
 * observer (metrics, a dashboard) can never leave the hub's indexes half-updated.
 */
export function guardObserver(observer: HubObserver | undefined, logger: Logger): GuardedObserver {
  const guarded: Record<string, (...args: never[]) => void> = {};
  for (const name of CALLBACKS) {
    const callback = observer?.[name] as ((...args: unknown[]) => void) | undefined;
    guarded[name] =
      callback === undefined
        ? () => {}
        : (...args: unknown[]) => {
            try {
              callback.apply(observer, args);
            } catch (err) {
              logger.error({ err, callback: name }, 'hub observer threw');
            }
          };
  }
  return guarded as unknown as GuardedObserver;
}
