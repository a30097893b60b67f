import type { PresenceEntry } from '../hub/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { ClusterBus } from './redis-bus.js';

/** A node's liveness key lives this long; it is refreshed three times per period. */
export const NODE_TTL_MS = 15_000;

// KEYS: the user's presence hash. ARGV: node key prefix. Returns the entries of live nodes and
// deletes those of dead ones (a node that died never removed its own).
const LIVE_ENTRIES_SCRIPT = `
local all = redis.call('HGETALL', KEYS[1])
local live, alive = {}, {}
for i = 1, #all, 2 do
  local ok, entry = pcall(cjson.decode, all[i + 1])
  local node = ok and entry.node or nil
  if node ~= nil and alive[node] == nil then alive[node] = redis.call('EXISTS', ARGV[1] .. node) == 1 end
  if node ~= nil and alive[node] then table.insert(live, all[i + 1]) else redis.call('HDEL', KEYS[1], all[i]) end
end
return live
`;

/**
 * Cluster-wide presence: one Redis hash per user (sessionId → entry) written by the node holding
 * the connection, and a liveness key per node with a TTL, so a dead node's entries stop counting
 * within NODE_TTL_MS and are removed by the next read. Writes that fail while Redis is down are
 * replayed by `resync` when it returns.
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
      () => void this.beat().then(() => this.schedule()),
      Math.floor(NODE_TTL_MS / 3),
    );
    this.heartbeat.unref?.();
  }

  add(entry: PresenceEntry): void {
    this.local.set(entry.sessionId, entry);
    this.pendingRemovals.delete(entry.sessionId);
    this.bus.cmd
      .hset(this.bus.keys.presence(entry.userId), entry.sessionId, JSON.stringify(entry))
      .catch(() => undefined);
  }

  remove(userId: string, sessionId: string): void {
    this.local.delete(sessionId);
    this.bus.cmd
      .hdel(this.bus.keys.presence(userId), sessionId)
      .catch(() => this.pendingRemovals.set(sessionId, userId));
  }

  /** Every live connection of the user on live nodes; this node's own when Redis is down. */
  async list(userId: string): Promise<PresenceEntry[]> {
    if (!this.bus.isUp()) return this.localOf(userId);
    try {
      const raw = (await this.bus.cmd.eval(
        LIVE_ENTRIES_SCRIPT,
        1,
        this.bus.keys.presence(userId),
        this.bus.keys.node(''),
      )) as string[];
      return raw.map((text) => JSON.parse(text) as PresenceEntry);
    } catch (err) {
      this.logger.warn(
        { component: 'cluster', err: (err as Error).message },
        'cluster presence unavailable: answering with this node only',
      );
      return this.localOf(userId);
    }
  }

  /** After an outage: the node key, every local entry, and the removals that failed. */
  async resync(): Promise<void> {
    await this.beat();
    const pipeline = this.bus.cmd.pipeline();
    for (const entry of this.local.values())
      pipeline.hset(this.bus.keys.presence(entry.userId), entry.sessionId, JSON.stringify(entry));
    for (const [sessionId, userId] of this.pendingRemovals) pipeline.hdel(this.bus.keys.presence(userId), sessionId);
    this.pendingRemovals.clear();
    await pipeline.exec();
  }

  /** Removes this node's entries and liveness key (graceful stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat !== undefined) this.clock.clearTimeout(this.heartbeat);
    this.heartbeat = undefined;
    if (!this.bus.isUp()) return;
    const pipeline = this.bus.cmd.pipeline();
    for (const entry of this.local.values()) pipeline.hdel(this.bus.keys.presence(entry.userId), entry.sessionId);
    pipeline.del(this.bus.keys.node(this.bus.nodeId));
    await pipeline.exec().catch(() => undefined);
  }

  private localOf(userId: string): PresenceEntry[] {
    return [...this.local.values()].filter((entry) => entry.userId === userId);
  }

  private async beat(): Promise<void> {
    try {
      await this.bus.cmd.set(this.bus.keys.node(this.bus.nodeId), String(this.clock.now()), 'PX', NODE_TTL_MS);
    } catch {
      // Redis is down: the reconnect handler calls resync.
    }
  }
}
