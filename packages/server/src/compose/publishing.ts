import type { PublishBatchResult, PublishRequest, PublishResult } from '@tether/protocol';
import type { Config } from '../config/index.js';
import type { Hub, PresenceEntry } from '../hub/types.js';
import type { DeviceStore } from '../push/device-store.js';
import { createPushFallback, type PushFallback } from '../push/push-fallback.js';
import type { DeliveryRecorder } from '../receipts/recorder.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

export type PublishingSettings = Pick<Config, 'pushWebhookUrl' | 'pushMaxAttempts' | 'receiptPushAfterMs'>;

export interface Publishing {
  publish(request: PublishRequest): Promise<PublishResult>;
  publishBatch(requests: readonly PublishRequest[]): Promise<PublishBatchResult>;
  /** The push webhook sender, when `PUSH_WEBHOOK_URL` is set (stopped at close). */
  push: PushFallback | undefined;
}

/**
 * Publishing as the HTTP API and apps see it: the hub's publish, the delivery record's note of
 * which users a user-addressed event was for, then the push webhook for the addressed users with no
 * live connection on any node (`PUSH_WEBHOOK_URL`) and, with `RECEIPT_PUSH_AFTER_MS`, a pending push
 * for those online, sent if no device of theirs acknowledges the event in time.
 */
export function assemblePublishing(
  settings: PublishingSettings,
  deps: {
    hub: Hub;
    devices: DeviceStore;
    presenceAll(userId: string): Promise<PresenceEntry[]>;
    recorder: DeliveryRecorder;
    logger: Logger;
    clock: Clock;
  },
): Publishing {
  const { hub, recorder } = deps;
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
          onPushed: (eventId, userId, reason) => recorder.pushed(eventId, userId, reason),
          ...(settings.receiptPushAfterMs === undefined
            ? {}
            : { whenOnline: (userId, event) => recorder.schedulePush(userId, event) }),
        });
  /** Recorded as addressed; users with no live connection get the push webhook. Validated by the hub by now. */
  const pushOffline = (id: string, request: PublishRequest): void => {
    const users = request.to.users ?? [];
    if (users.length === 0) return;
    recorder.addressed({ id, event: request.event, users });
    push?.notify({ id, event: request.event, data: request.data ?? {}, users });
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
