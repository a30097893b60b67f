import { TetherError, type ErrorCode, type PublishRequest, type PublishResult } from '@tether/protocol';
import type { Principal, RevocationState } from '../auth/types.js';
import type { Config } from '../config/index.js';
import type { RedisEventLog } from '../history/redis-log.js';
import { readScopes } from '../history/streams.js';
import type { LocalHub } from '../hub/hub.js';
import { validatePublish } from '../hub/publish.js';
import type { HubObserver, PresenceEntry } from '../hub/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { applyRevocation, type ControlMessage } from './control.js';
import { EventReceiver } from './event-receiver.js';
import type { InterestSet } from './interest.js';
import type { ClusterPresence } from './presence.js';
import type { ClusterBus } from './redis-bus.js';
import type { StreamCursors } from './stream-follower.js';

/** How long a handshake holds its subscriptions until its session (registered a few turns later) holds them. */
const ADMIT_HOLD_MS = 2_000;
/** A handshake or a subscribe ack waits at most this long for a Redis subscription. */
const SUBSCRIBE_WAIT_MS = 2_000;

export interface ClusterHubDeps {
  local: LocalHub;
  bus: ClusterBus;
  log: RedisEventLog;
  /** The node's subscriptions (shared with the `ClusterFollower` the local hub was given). */
  interest: InterestSet;
  presence: ClusterPresence;
  cursors: StreamCursors;
  /** This node's own revocation state (not the broadcasting wrapper): remote updates land here. */
  revocations: RevocationState;
  config: Config;
  clock: Clock;
  logger: Logger;
  /** Told about publishes (metrics), as the local hub would. */
  observer?: HubObserver;
}

/** The hub of a node in cluster mode: the `LocalHub` interface, cluster-wide. */
export interface ClusterHub extends LocalHub {
  /**
   * Cross-node admission: the per-user cap counts connections on every live node, and the
   * user's and grants' channels are subscribed before the handshake completes, so no event
   * published after `session_created` can be missed. Redis down: the local check only.
   */
  admit(principal: Principal): Promise<void>;
  /** Connections of the user on every live node (this node only while Redis is down). */
  presenceAll(userId: string): Promise<PresenceEntry[]>;
  start(): Promise<void>;
  /** Removes this node's presence and disconnects from Redis (after the local shutdown). */
  close(): Promise<void>;
}

/**
 * Wraps the node's `LocalHub` for cluster mode over Redis:
 *
 *   publish(A) ─► validate ─► EVAL: XADD log; PUBLISH u:/s:/c: channels ─► sub of interested nodes
 *                                                                          ─► dedupe by seq ─► deliverLocal
 *   disconnect / family / grants / revocation ─► local now ─► PUBLISH ctl ─► every other node
 *
 * Delivery always goes through Redis, also on the publishing node, so every node writes events in
 * stream order whoever published them; a node subscribed on several matching channels gets one
 * copy per channel, all adjacent (one script), and keeps the first by sequence number.
 *
 * @example
 *   const cluster = createClusterHub({ local, bus, log, revocations, config, clock, logger });
 *   await cluster.start();
 */
export function createClusterHub(deps: ClusterHubDeps): ClusterHub {
  const { local, bus, log, config, clock, logger } = deps;
  const { interest, presence } = deps;
  const receiver = new EventReceiver(local, log, clock, logger, config.recoveryMaxEvents, deps.cursors, log.sharded);

  function onControl(message: ControlMessage): void {
    if (applyRevocation(deps.revocations, message)) return;
    switch (message.t) {
      case 'disconnect':
        local.disconnectUser(message.userId, message.code);
        return;
      case 'family':
        local.revokeFamily(message.familyId);
        return;
      case 'grants':
        // The local hub tells its follower, which moves this node's subscriptions.
        local.updateGrants(message.userId, { scopes: message.scopes, channels: message.channels });
        return;
    }
  }

  async function publish(request: PublishRequest): Promise<PublishResult> {
    const envelope = validatePublish(request);
    if (!bus.isUp()) throw new TetherError('PUBLISH_FAILED', 'Redis is unavailable; the event was not published');
    const channels = bus.keys.publishChannels(envelope);
    const logged = await log.appendAndPublish(envelope, channels);
    const delivered = interest.wantsAny(channels) ? await receiver.ownDelivery(envelope.id) : 0;
    const result: PublishResult = { id: envelope.id, delivered };
    logger.debug(
      {
        event: 'publish',
        eventId: envelope.id,
        name: envelope.event,
        streams: logged.cursors.size,
        channels: channels.length,
        delivered,
      },
      'event published',
    );
    deps.observer?.onPublish?.(result, envelope.event);
    return result;
  }

  async function admit(principal: Principal): Promise<void> {
    local.admit(principal);
    if (!bus.isUp()) return;
    const everywhere = await presence.list(principal.userId);
    if (everywhere.length >= config.maxConnectionsPerUser) throw new TetherError('CONNECTION_LIMIT');
    const channels = bus.keys.sessionChannels(principal.userId, readScopes(principal.scopes), []);
    const hold = clock.setTimeout(() => interest.release(channels), ADMIT_HOLD_MS);
    hold.unref?.();
    await bounded(interest.acquire(channels));
  }

  /** If Redis drops right now a SUBSCRIBE waits in the queue; a handshake or an ack must not wait with it. */
  async function bounded(confirmed: Promise<void>): Promise<void> {
    let timer: TimerHandle | undefined;
    await Promise.race([
      confirmed,
      new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, SUBSCRIBE_WAIT_MS))),
    ]);
    if (timer !== undefined) clock.clearTimeout(timer);
  }

  const send = (message: ControlMessage): void => void bus.sendControl(message);

  return {
    ...local,
    admit,
    publish,
    disconnectUser(userId: string, code: ErrorCode = 'AUTH_REVOKED') {
      const count = local.disconnectUser(userId, code);
      send({ t: 'disconnect', from: bus.nodeId, userId, code });
      return count;
    },
    revokeFamily(familyId) {
      const count = local.revokeFamily(familyId);
      send({ t: 'family', from: bus.nodeId, familyId });
      return count;
    },
    updateGrants(userId, grants) {
      const count = local.updateGrants(userId, grants);
      send({ t: 'grants', from: bus.nodeId, userId, ...grants });
      return count;
    },
    channelReady: (channel) => bounded(interest.ready(bus.keys.channel(channel))),
    presenceAll: (userId) => presence.list(userId),
    async start() {
      bus.onEvent((_channel, text) => receiver.onMessage(text));
      bus.onControl(onControl);
      bus.onReconnect(() => {
        void receiver.catchUp();
        presence
          .resync()
          .catch((err: unknown) =>
            logger.warn({ component: 'cluster', err: (err as Error).message }, 'presence resync failed'),
          );
      });
      await presence.start();
    },
    async close() {
      receiver.close();
      await presence.stop();
      await bus.close();
    },
  };
}
