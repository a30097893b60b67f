/** Bounds of a full-jitter exponential backoff. */
export interface BackoffOptions {
  /** Smallest delay, and the base of the exponential ceiling. */
  minMs: number;
  /** Largest delay. */
  maxMs: number;
  /** Attempts beyond this number stop growing the ceiling (keeps `2 ** attempt` finite). */
  maxAttempt: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 500, maxMs: 20_000, maxAttempt: 16 };

/**
 * Full-jitter exponential backoff (the AWS "full jitter" scheme, as centrifuge-js does it): a
 * uniform delay between `minMs` and `min(maxMs, minMs + minMs·2^attempt)`. The jitter spreads a
 * fleet that lost its server at the same instant; the `minMs` floor keeps a failing client from
 * ever spinning. Pure: the caller passes the random source.
 *
 * @param attempt 0 for the first retry.
 * @param random uniform in [0, 1).
 * @example backoffDelay(3, DEFAULT_BACKOFF, Math.random) // somewhere in [500, 4500]
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const step = Math.max(0, Math.min(Math.floor(attempt), options.maxAttempt));
  const ceiling = Math.min(options.maxMs, options.minMs + options.minMs * 2 ** step);
  const delay = options.minMs + random() * (ceiling - options.minMs);
  return Math.round(Math.min(options.maxMs, Math.max(options.minMs, delay)));
}
