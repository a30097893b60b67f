import type { Clock } from './clock.js';
import { systemClock } from './clock.js';

/**
 * Exponential backoff after repeated failures of one key (e.g. one account from one address):
 * the first `freeFailures` failures cost nothing; the n-th failure from then on makes the key wait
 * `baseMs · 2^(n − freeFailures)`, at most `maxMs`. A key with no failure for `forgetAfterMs`
 * starts over (keep it above `maxMs`).
 */
export interface BackoffPolicy {
  freeFailures: number;
  baseMs: number;
  maxMs: number;
  forgetAfterMs: number;
}

/** A key's failures so far and how long it must still wait before its next attempt (0: now). */
export interface BackoffState {
  failures: number;
  waitMs: number;
}

/** The failure counters behind a backoff: in memory, or in Redis in cluster mode (shared by the nodes). */
export interface FailureBackoff {
  state(key: string): Promise<BackoffState>;
  /** Records a failure now; returns the new state. */
  fail(key: string): Promise<BackoffState>;
  /** Forgets the key (its owner succeeded). */
  clear(key: string): Promise<void>;
}

/** The one backoff rule: how long after its `failures`-th failure a key waits. */
export function backoffDelayMs(failures: number, policy: BackoffPolicy): number {
  if (failures < policy.freeFailures) return 0;
  // 2^40 ms is decades: stop doubling long before the number loses precision.
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - policy.freeFailures, 40));
}

/** The state of a key whose last failure (its `failures`-th) was at `lastFailureAt`, seen at `now`. */
export function backoffState(
  failures: number,
  lastFailureAt: number,
  now: number,
  policy: BackoffPolicy,
): BackoffState {
  if (failures <= 0 || now - lastFailureAt >= policy.forgetAfterMs) return { failures: 0, waitMs: 0 };
  return { failures, waitMs: Math.max(0, lastFailureAt + backoffDelayMs(failures, policy) - now) };
}

interface Entry {
  failures: number;
  lastFailureAt: number;
}

/**
 * `FailureBackoff` in this process's memory. Entries past `forgetAfterMs` are swept as new keys
 * arrive, and at most `maxKeys` are kept (the oldest go first), so a spray of addresses cannot grow
 * it without bound.
 */
export class LocalFailureBackoff implements FailureBackoff {
  private readonly entries = new Map<string, Entry>();
  private failsSinceSweep = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly clock: Clock = systemClock,
    private readonly maxKeys = 100_000,
  ) {}

  state(key: string): Promise<BackoffState> {
    return Promise.resolve(this.stateNow(key));
  }

  fail(key: string): Promise<BackoffState> {
    const now = this.clock.now();
    const failures = this.stateNow(key).failures + 1;
    // Re-inserted so the map's order stays "least recently failed first" for the eviction below.
    this.entries.delete(key);
    if (++this.failsSinceSweep > 1000 || this.entries.size >= this.maxKeys) this.sweep(now);
    this.entries.set(key, { failures, lastFailureAt: now });
    return Promise.resolve(backoffState(failures, now, now, this.policy));
  }

  clear(key: string): Promise<void> {
    this.entries.delete(key);
    return Promise.resolve();
  }

  get size(): number {
    return this.entries.size;
  }

  private stateNow(key: string): BackoffState {
    const entry = this.entries.get(key);
    if (entry === undefined) return { failures: 0, waitMs: 0 };
    return backoffState(entry.failures, entry.lastFailureAt, this.clock.now(), this.policy);
  }

  private sweep(now: number): void {
    this.failsSinceSweep = 0;
    for (const [key, entry] of this.entries) {
      if (now - entry.lastFailureAt < this.policy.forgetAfterMs && this.entries.size < this.maxKeys) break;
      this.entries.delete(key);
    }
  }
}
