import { TetherError } from '@tether/protocol';
import type { Principal, RevocationState } from '../auth/types.js';
import type { Config } from '../config/index.js';
import type { RedisEventLog } from '../history/redis-log.js';
import { readScopes } from '../history/streams.js';
import type { LocalHub } from '../hub/hub.js';
import type { HubBroker, PresenceEntry, PublishEnvelope } from '../hub/types.js';
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

export interface ClusterBrokerDeps {
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
}

/** The cluster over Redis as a node's hub sees it (`HubBroker`), plus what the gateway runs it with. */
export interface ClusterBroker extends HubBroker {
  /** Starts handing other nodes' events and actions to the node's hub (created with this broker). */
  attach(local: LocalHub): Promise<void>;
  /** Connections of the user on every live node (this node only while Redis is down). */
  presenceAll(userId: string): Promise<PresenceEntry[]>;
  /** Removes this node's presence and disconnects from Redis (after the local shutdown). */
  close(): Promise<void>;
}

/**
 * The hub's broker over Redis (standalone or Redis Cluster):
 *
 *   publish(A) ─► hub validates ─► broker: one script per event (standalone) or per stream (Redis
 *                 Cluster): append to the streams, PUBLISH/SPUBLISH ─► every interested node's
 *                 EventReceiver ─► once per event ─► LocalHub.deliverLocal / deliverCopy
 *   disconnect / family / grants ─► hub applies locally ─► broker.broadcast ─► ctl ─► LocalHub.apply
 *
 * Delivery always goes through Redis, also on the publishing node, so every node writes events in
 * stream order whoever published them.
 *
 * @example
 *   const broker = createClusterBroker({ bus, log, interest, presence, cursors, revocations, config, clock, logger });
 *   const hub = createHub({ …, broker, follower });
 *   await broker.attach(hub);
 */
export function createClusterBroker(deps: ClusterBrokerDeps): ClusterBroker {
  const { bus, log, config, clock, logger } = deps;
  const { interest, presence } = deps;
  let receiver: EventReceiver | undefined;
  let local: LocalHub | undefined;

  function onControl(message: ControlMessage): void {
    switch (message.t) {
      case 'disconnect':
      case 'family':
      case 'grants':
        // The local hub tells its follower of grant changes, which moves this node's subscriptions.
        local?.apply(message);
        return;
      default:
        applyRevocation(deps.revocations, message);
    }
  }

  async function publish(envelope: PublishEnvelope): Promise<number> {
    if (!bus.isUp()) throw new TetherError('PUBLISH_FAILED', 'Redis is unavailable; the event was not published');
    const channels = bus.keys.publishChannels(envelope);
    await log.appendAndPublish(envelope, channels);
    return receiver !== undefined && interest.wantsAny(channels) ? receiver.ownDelivery(envelope.id) : 0;
  }

  async function admit(principal: Principal): Promise<void> {
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

  return {
    admit,
    publish,
    broadcast: (action) => void bus.sendControl({ ...action, from: bus.nodeId }),
    channelReady: (channel) => bounded(interest.ready(bus.keys.channel(channel))),
    presenceAll: (userId) => presence.list(userId),
    async attach(hub) {
      local = hub;
      const events = new EventReceiver(hub, log, clock, logger, config.recoveryMaxEvents, deps.cursors, log.sharded);
      receiver = events;
      bus.onEvent((_channel, text) => events.onMessage(text));
      bus.onControl(onControl);
      bus.onLost(() => events.suspend());
      bus.onReconnect(() => {
        void events.catchUp();
        presence
          .resync()
          .catch((err: unknown) =>
            logger.warn({ component: 'cluster', err: (err as Error).message }, 'presence resync failed'),
          );
      });
      await presence.start();
    },
    async close() {
      receiver?.close();
      await presence.stop();
      await bus.close();
    },
  };
}
