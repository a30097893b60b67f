// Small helpers the bench sections share.
import { Redis } from 'ioredis';

/** `v` rounded to `digits` decimals; null for NaN or infinity (a figure that could not be taken). */
export const round = (v, digits = 0) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : null);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` (sync or async) every `everyMs` until it holds; throws after `ms`. */
export async function until(what, check, ms = 60_000, everyMs = 50) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Deletes every key containing `prefix` on the Redis at `url` (a bench run's own keys). */
export async function dropRedisKeys(url, prefix) {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
