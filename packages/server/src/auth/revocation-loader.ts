import type { Config } from '../config/index.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../util/clock.js';
import type { RevocationState } from './types.js';

/**
 * Rebuilds the in-memory revocation state from the store: disabled users, users (built-in or an app
 * backend's) whose earlier tokens were revoked, and logged-out families whose access tokens may still be within their lifetime.
 */
export async function loadRevocations(
  store: Store,
  revocations: RevocationState,
  config: Pick<Config, 'accessTtlSeconds' | 'guestTokenTtlSeconds'>,
  clock: Clock,
): Promise<void> {
  for (const user of await store.users.listRevoked()) {
    if (!user.active) revocations.revokeUser(user.id, Number.POSITIVE_INFINITY);
    else if (user.tokensRevokedBefore !== null) revocations.revokeUser(user.id, user.tokensRevokedBefore);
  }
  for (const subject of await store.subjects.list()) revocations.revokeUser(subject.userId, subject.revokedBefore);
  // An access token outlives its family's revocation by at most one access (or guest) token lifetime.
  const ttlMs = Math.max(config.accessTtlSeconds, config.guestTokenTtlSeconds) * 1000;
  for (const family of await store.refresh.listRevokedFamiliesSince(clock.now() - ttlMs)) {
    revocations.revokeFamily(family.id, (family.revokedAt ?? clock.now()) + ttlMs);
  }
}
