import type { PublishEnvelope } from '../hub/types.js';
import type { LoggedEvent } from '../history/types.js';
import type { RedisEventLog } from '../history/redis-log.js';
import type { RedisMetrics } from '../observability/metrics.js';

/**
 * The log with each append timed (`tether_redis_roundtrip_seconds{op="append"}`): one script that
 * appends to the event's streams and PUBLISHes it, the round trip every publish waits for. Two clock
 * reads per publish; reads, head checks and deliveries are not touched.
 */
export function withTimedAppends(log: RedisEventLog, metrics: RedisMetrics): RedisEventLog {
  const appendAndPublish = async (envelope: PublishEnvelope, channels: readonly string[]): Promise<LoggedEvent> => {
    const started = performance.now();
    try {
      const logged = await log.appendAndPublish(envelope, channels);
      metrics.roundTrip('append', (performance.now() - started) / 1000, true);
      return logged;
    } catch (err) {
      metrics.roundTrip('append', 0, false);
      throw err;
    }
  };
  return { ...log, appendAndPublish, append: (envelope) => appendAndPublish(envelope, []) };
}
