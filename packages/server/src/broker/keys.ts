import { redisTag } from '../history/redis-log.js';
import { StreamLayout, channelStream, scopeStream, userStream } from '../history/streams.js';
import type { PublishEnvelope } from '../hub/types.js';

/**
 * Every Redis key and pub/sub channel name cluster mode uses, under one prefix (`REDIS_PREFIX`),
 * so several deployments (or test runs) can share a Redis without seeing each other.
 *
 * Interest channels: a node subscribes to `u:<user>` for each local user, `s:<grant>` for each
 * local scope grant and `c:<channel>` for each joined channel. A publish is sent to the channel
 * of every user, every ancestor of every scope (a grant on an ancestor covers the scope) and every
 * channel it names, so it reaches exactly the nodes with a possible recipient.
 */
export class ClusterKeys {
  constructor(
    readonly prefix: string,
    readonly layout: StreamLayout = StreamLayout.SINGLE,
  ) {}

  /** Control messages (revocation, disconnect, grants): every node listens. */
  get control(): string {
    return `${this.prefix}:ctl`;
  }

  user(userId: string): string {
    return this.ofStream(userStream(userId));
  }

  scope(grant: string): string {
    return this.ofStream(scopeStream(grant));
  }

  channel(name: string): string {
    return this.ofStream(channelStream(name));
  }

  /** Hash sessionId → presence entry JSON, per user. */
  presence(userId: string): string {
    return `${this.prefix}:presence:${userId}`;
  }

  /** A node's liveness key (expires unless refreshed). */
  node(nodeId: string): string {
    return `${this.prefix}:node:${nodeId}`;
  }

  /** The interest channel of a log stream: its hash tag (see `redisTag`). */
  ofStream(stream: string): string {
    return redisTag(this.prefix, stream);
  }

  idempotency(scope: string, key: string): string {
    return `${this.prefix}:idem:${scope}:${key}`;
  }

  /** A shared rate-limit bucket or failure counter (`broker/redis-rate-limit.ts`): limiter name, then its key. */
  rateLimit(limiter: string, key: string): string {
    return `${this.prefix}:rl:${limiter}:${key}`;
  }

  /** The interest channels a publish is sent to (each at most once). */
  publishChannels(envelope: PublishEnvelope): string[] {
    return this.layout.streamsOf(envelope).map((stream) => this.ofStream(stream));
  }

  /** The interest channels one connection needs: its user, the scopes it reads, its joined channels. */
  sessionChannels(userId: string, scopes: readonly string[], channels: Iterable<string>): string[] {
    return this.layout.streamsRead(userId, scopes, channels).map((stream) => this.ofStream(stream));
  }
}
