import type { PublishBatchResult, PublishRequest, PublishResult } from '@tether/protocol';
import type { Config } from '../config/index.js';
import type { Hub, PresenceEntry } from '../hub/types.js';
import type { DeviceStore } from '../push/device-store.js';
import { createPushFallback, type PushFallback } from '../push/push-fallback.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

export type PublishingSettings = Pick<Config, 'pushWebhookUrl' | 'pushMaxAttempts'>;

export interface Publishing {
  publish(request: PublishRequest): Promise<PublishResult>;
  publishBatch(requests: readonly PublishRequest[]): Promise<PublishBatchResult>;
  /** The push webhook sender, when `PUSH_WEBHOOK_URL` is set (stopped at close). */
  push: PushFallback | undefined;
}

/**
 * Publishing as the HTTP API and apps see it: the hub's publish, then the push webhook for the
 * addressed users with no live connection on any node (`PUSH_WEBHOOK_URL`).
 */
export function assemblePublishing(
  settings: PublishingSettings,
  deps: {
    hub: Hub;
    devices: DeviceStore;
    presenceAll(userId: string): Promise<PresenceEntry[]>;
    logger: Logger;
    clock: Clock;
  },
): Publishing {
  const { hub } = deps;
  const push =
    settings.pushWebhookUrl === undefined
      ? undefined
      : createPushFallback({
          webhookUrl: settings.pushWebhookUrl,
          maxAttempts: settings.pushMaxAttempts,
          devices: deps.devices,
          isOnline: async (userId) => (await deps.presenceAll(userId)).length > 0,
          logger: deps.logger,
          clock: deps.clock,
        });
  /** Users with no live connection get the push webhook. Validated by the hub by now. */
  const pushOffline = (id: string, request: PublishRequest): void => {
    const users = request.to.users ?? [];
    if (push !== undefined && users.length > 0)
      push.notify({ id, event: request.event, data: request.data ?? {}, users });
  };
  return {
    push,
    async publish(request) {
      const result = await hub.publish(request);
      pushOffline(result.id, request);
      return result;
    },
    async publishBatch(requests) {
      const results = await hub.publishBatch(requests);
      results.forEach((result, i) => {
        if (!('error' in result)) pushOffline(result.id, requests[i]!);
      });
      return { results };
    },
  };
}
