import type { PresenceEntry } from '../hub/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { ClusterBus } from './redis-bus.js';

/** A node counts as alive while its last heartbeat is younger than this; it beats three times per period. */
export const NODE_TTL_MS = 15_000;

/**
 * Cluster-wide presence: one Redis hash per user (sessionId → entry) written by the node holding
 * the connection, and one hash of heartbeats `<prefix>:nodes` (nodeId → last beat, ms), so a dead
 * node's entries stop counting within NODE_TTL_MS and are removed by the next read. Writes that fail
 * while Redis is down are replayed by `resync` when it returns.
 *
 * Every command names one key (no script or pipeline spans two), so the same code runs on a Redis
 * Cluster, where a user's hash and the heartbeats live on different shards; commands issued
 * together are batched per shard by auto-pipelining. Beats are stamped with the writer's clock and
 * judged with the reader's, so the gateways' clocks must agree to within a few seconds — as token
 * expiry already requires.
 */
export class ClusterPresence {
  private readonly local = new Map<string, PresenceEntry>();
  /** Removals that could not be written (Redis down): replayed on resync. */
  private readonly pendingRemovals = new Map<string, string>();
  private heartbeat: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly bus: ClusterBus,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Marks the node alive now and every NODE_TTL_MS / 3. */
  async start(): Promise<void> {
    await this.beat();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.heartbeat = this.clock.setTimeout(
      () => void this.beatAndHeal().then(() => this.schedule()),
      Math.floor(NODE_TTL_MS / 3),
    );
    this.heartbeat.unref?.();
  }

  add(entry: PresenceEntry): void {
    this.local.set(entry.sessionId, entry);
    this.pendingRemovals.delete(entry.sessionId);
    this.bus.cmd.hset(this.key(entry.userId), entry.sessionId, JSON.stringify(entry)).catch(() => undefined);
  }

  remove(userId: string, sessionId: string): void {
    this.local.delete(sessionId);
    this.bus.cmd.hdel(this.key(userId), sessionId).catch(() => this.pendingRemovals.set(sessionId, userId));
  }

  /** Every live connection of the user on live nodes; this node's own when Redis is down. */
  async list(userId: string): Promise<PresenceEntry[]> {
    if (!this.bus.isUp()) return this.localOf(userId);
    try {
      const key = this.key(userId);
      const [all, beats] = await Promise.all([this.bus.cmd.hgetall(key), this.bus.cmd.hgetall(this.nodesKey)]);
      const now = this.clock.now();
      const alive = (node: string): boolean => now - Number(beats[node] ?? Number.NaN) < NODE_TTL_MS;
      const live: PresenceEntry[] = [];
      const dead: string[] = [];
      for (const [sessionId, text] of Object.entries(all)) {
        const entry = parseEntry(text);
        if (entry !== undefined && alive(entry.node)) live.push(entry);
        else dead.push(sessionId);
      }
      // A node that died never removed its own entries, nor its heartbeat.
      if (dead.length > 0) this.bus.cmd.hdel(key, ...dead).catch(() => undefined);
      const deadNodes = Object.keys(beats).filter((node) => !alive(node));
      if (deadNodes.length > 0) this.bus.cmd.hdel(this.nodesKey, ...deadNodes).catch(() => undefined);
      return live;
    } catch (err) {
      this.logger.warn(
        { component: 'cluster', err: (err as Error).message },
        'cluster presence unavailable: answering with this node only',
      );
      return this.localOf(userId);
    }
  }

  /** After an outage: the heartbeat, every local entry, and the removals that failed. */
  async resync(): Promise<void> {
    await this.beat();
    const writes = this.writeLocal();
    const removals = [...this.pendingRemovals].map(([sessionId, userId]) =>
      this.bus.cmd.hdel(this.key(userId), sessionId).then(() => {
        if (this.pendingRemovals.get(sessionId) === userId) this.pendingRemovals.delete(sessionId);
      }),
    );
    const failed = (await Promise.allSettled([...writes, ...removals])).filter((r) => r.status === 'rejected');
    if (failed.length > 0)
      throw new Error(`${failed.length} presence writes failed: ${(failed[0]?.reason as Error).message}`);
  }

  /** Removes this node's entries and heartbeat (graceful stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat !== undefined) this.clock.clearTimeout(this.heartbeat);
    this.heartbeat = undefined;
    if (!this.bus.isUp()) return;
    const byUser = new Map<string, string[]>();
    for (const entry of this.local.values())
      byUser.set(entry.userId, [...(byUser.get(entry.userId) ?? []), entry.sessionId]);
    await Promise.all([
      ...[...byUser].map(([userId, sessionIds]) => this.bus.cmd.hdel(this.key(userId), ...sessionIds)),
      this.bus.cmd.hdel(this.nodesKey, this.bus.nodeId),
    ]).catch(() => undefined);
  }

  private localOf(userId: string): PresenceEntry[] {
    return [...this.local.values()].filter((entry) => entry.userId === userId);
  }

  /**
   * Writes the heartbeat. Resolves true when its field was missing: the first beat, or readers saw
   * no beat for NODE_TTL_MS (this process stalled) and removed it together with this node's entries.
   */
  private async beat(): Promise<boolean> {
    try {
      return (await this.bus.cmd.hset(this.nodesKey, this.bus.nodeId, String(this.clock.now()))) === 1;
    } catch {
      return false; // Redis is down: the reconnect handler calls resync.
    }
  }

  /** A periodic beat; if this node had been judged dead, its entries are written again. */
  private async beatAndHeal(): Promise<void> {
    if (!(await this.beat()) || this.local.size === 0) return;
    this.logger.warn(
      { component: 'cluster', node: this.bus.nodeId, entries: this.local.size },
      'this node had been judged dead (no heartbeat within NODE_TTL_MS): writing its presence again',
    );
    await Promise.allSettled(this.writeLocal());
  }

  private writeLocal(): Promise<number>[] {
    return [...this.local.values()].map((entry) =>
      this.bus.cmd.hset(this.key(entry.userId), entry.sessionId, JSON.stringify(entry)),
    );
  }

  private key(userId: string): string {
    return this.bus.keys.presence(userId);
  }

  /** The heartbeats of every node: one small hash (a field per node), read with each presence list. */
  private get nodesKey(): string {
    return `${this.bus.keys.prefix}:nodes`;
  }
}

function parseEntry(text: string): PresenceEntry | undefined {
  try {
    const entry = JSON.parse(text) as Partial<PresenceEntry>;
    return typeof entry.node === 'string' ? (entry as PresenceEntry) : undefined;
  } catch {
    return undefined;
  }
}
