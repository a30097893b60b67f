import { scopeAncestry } from '@tether/protocol';
import type { Principal } from '../auth/types.js';
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
  constructor(readonly prefix: string) {}

  /** Control messages (revocation, disconnect, grants): every node listens. */
  get control(): string {
    return `${this.prefix}:ctl`;
  }

  user(userId: string): string {
    return `${this.prefix}:u:${userId}`;
  }

  scope(grant: string): string {
    return `${this.prefix}:s:${grant}`;
  }

  channel(name: string): string {
    return `${this.prefix}:c:${name}`;
  }

  /** Hash sessionId → presence entry JSON, per user. */
  presence(userId: string): string {
    return `${this.prefix}:presence:${userId}`;
  }

  /** A node's liveness key (expires unless refreshed). */
  node(nodeId: string): string {
    return `${this.prefix}:node:${nodeId}`;
  }

  /** The event log stream and its metadata hash (epoch, sequence). */
  get logStream(): string {
    return `${this.prefix}:log`;
  }

  get logMeta(): string {
    return `${this.prefix}:log:meta`;
  }

  idempotency(scope: string, key: string): string {
    return `${this.prefix}:idem:${scope}:${key}`;
  }

  /** The interest channels a publish is sent to (each at most once). */
  publishChannels(envelope: PublishEnvelope): string[] {
    const out = new Set<string>();
    for (const user of envelope.to.users) out.add(this.user(user));
    for (const scope of envelope.to.scopes) for (const grant of scopeAncestry(scope)) out.add(this.scope(grant));
    for (const name of envelope.to.channels) out.add(this.channel(name));
    return [...out];
  }

  /** The interest channels one connection needs: its user, its scope grants, its joined channels. */
  sessionChannels(principal: Pick<Principal, 'userId' | 'scopes'>, channels: Iterable<string>): string[] {
    const out = [this.user(principal.userId)];
    for (const grant of principal.scopes) out.push(this.scope(grant));
    for (const name of channels) out.push(this.channel(name));
    return out;
  }
}
