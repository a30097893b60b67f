import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../util/logger.js';
import type { ControlMessage } from './control.js';
import { ClusterKeys } from './keys.js';

/**
 * The two Redis connections of a node and what travels over them:
 * - `cmd` runs commands. It has no offline queue and one retry, so while Redis is down a publish
 *   fails at once with a clear error instead of waiting in a queue (nothing is dropped silently).
 * - `sub` holds the node's subscriptions. It keeps its queue and ioredis re-subscribes after a
 *   reconnect, so interest changes made during an outage are applied when Redis returns.
 *
 *   node ──cmd──► EVAL append+PUBLISH ──► Redis ──► sub of every interested node ──► deliverLocal
 *        ──cmd──► PUBLISH <prefix>:ctl ─────────► sub of every node ──► revocation, disconnect, grants
 */
export interface ClusterBus {
  readonly nodeId: string;
  readonly keys: ClusterKeys;
  readonly cmd: Redis;
  readonly sub: Redis;
  /** Whether commands can be sent now. */
  isUp(): boolean;
  /** Sends a control message to every node (this one ignores its own). Never throws: logs instead. */
  sendControl(message: ControlMessage): Promise<boolean>;
  onControl(handler: (message: ControlMessage) => void): void;
  /** Messages on interest channels (events), as raw JSON text. */
  onEvent(handler: (channel: string, text: string) => void): void;
  /** Called each time Redis is back after an outage (not on the first connect). */
  onReconnect(handler: () => void): void;
  close(): Promise<void>;
}

export interface BusOptions {
  url: string;
  prefix: string;
  nodeId: string;
  logger: Logger;
}

/** Connects both connections (throws when Redis cannot be reached at start) and subscribes to control. */
export async function connectBus(options: BusOptions): Promise<ClusterBus> {
  const { url, nodeId, logger } = options;
  const keys = new ClusterKeys(options.prefix);
  const common: RedisOptions = {
    lazyConnect: true,
    connectionName: `tether-${nodeId}`,
    // Reconnect forever, at most every 2 s: Redis coming back must bring the node back by itself.
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
  };
  const cmd = new Redis(url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 5000 });
  const sub = new Redis(url, { ...common, maxRetriesPerRequest: null });

  const controlHandlers: ((message: ControlMessage) => void)[] = [];
  const eventHandlers: ((channel: string, text: string) => void)[] = [];
  const reconnectHandlers: (() => void)[] = [];
  let down = false;
  let closing = false;

  for (const [name, conn] of [
    ['cmd', cmd],
    ['sub', sub],
  ] as const) {
    conn.on('error', (err: Error) => {
      if (!down && !closing)
        logger.warn({ component: 'cluster', connection: name, err: err.message }, 'redis connection error');
    });
  }
  // Either connection lost = an outage; it ends when both are back and the subscriber's
  // re-subscriptions are confirmed (a PING queued behind them answers after them).
  const lost = (): void => {
    if (closing || down) return;
    down = true;
    logger.error(
      { component: 'cluster', node: nodeId },
      'redis unavailable: serving local connections only, publishes fail until it returns',
    );
  };
  const back = (): void => {
    if (!down || closing || cmd.status !== 'ready' || sub.status !== 'ready') return;
    sub.ping().then(
      () => {
        if (!down || cmd.status !== 'ready') return;
        down = false;
        logger.info({ component: 'cluster', node: nodeId }, 'redis available again: resuming cluster mode');
        for (const handler of reconnectHandlers) runSafely(logger, 'reconnect handler', handler);
      },
      () => undefined, // lost again: the next 'ready' retries
    );
  };
  for (const conn of [cmd, sub]) {
    conn.on('close', lost);
    conn.on('ready', back);
  }

  sub.on('message', (channel: string, text: string) => {
    if (channel === keys.control) {
      const message = parseControl(text);
      if (message === undefined || message.from === nodeId) return;
      for (const handler of controlHandlers) runSafely(logger, 'control handler', () => handler(message));
      return;
    }
    for (const handler of eventHandlers) runSafely(logger, 'event handler', () => handler(channel, text));
  });

  await Promise.all([cmd.connect(), sub.connect()]);
  await sub.subscribe(keys.control);
  logger.info({ component: 'cluster', node: nodeId, prefix: options.prefix }, 'cluster bus connected');

  return {
    nodeId,
    keys,
    cmd,
    sub,
    isUp: () => cmd.status === 'ready',
    async sendControl(message) {
      try {
        await cmd.publish(keys.control, JSON.stringify(message));
        return true;
      } catch (err) {
        logger.warn(
          { component: 'cluster', type: message.t, err: (err as Error).message },
          'control message not sent (redis unavailable)',
        );
        return false;
      }
    },
    onControl: (handler) => void controlHandlers.push(handler),
    onEvent: (handler) => void eventHandlers.push(handler),
    onReconnect: (handler) => void reconnectHandlers.push(handler),
    async close() {
      closing = true;
      await Promise.allSettled([cmd.quit(), sub.quit()]);
      cmd.disconnect();
      sub.disconnect();
    },
  };
}

function parseControl(text: string): ControlMessage | undefined {
  try {
    const value = JSON.parse(text) as Partial<ControlMessage>;
    return typeof value.t === 'string' && typeof value.from === 'string' ? (value as ControlMessage) : undefined;
  } catch {
    return undefined;
  }
}

function runSafely(logger: Logger, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger.error({ component: 'cluster', err }, `${what} failed`);
  }
}
