import type { Clock } from '../util/clock.js';
import { shown } from './refusal-reason.js';
import type { Principal, RevocationReason, RevocationState } from './types.js';

/** Expired family entries are swept at most this often (and lazily on lookup). */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * In-memory revocation state, consulted on every connect, reauth and resume:
 * - per user, a "revoked before" instant in ms (Infinity: the user is disabled). A token is refused
 *   when it was issued at or before that instant, so a user who was kicked can sign in again at once:
 *   the new token is issued strictly later. Instants only move forward, except `restoreUser`.
 * - per refresh family (`sid`), a "revoked until" instant: the family's access tokens are refused
 *   until then (their expiry), after which the entry is useless and is swept.
 *
 * Tokens without ms precision (`iat` only, from an app backend) count as issued at the start of their
 * second, so a revocation refuses every token of the same second: safe side.
 *
 * @example
 *   const revocations = createRevocationState(clock);
 *   revocations.revokeUser('u1', clock.now()); // every token issued so far stops working
 */
export function createRevocationState(clock: Clock): RevocationState {
  const usersRevokedBefore = new Map<string, number>();
  const familiesRevokedUntil = new Map<string, number>();
  let nextSweepAt = clock.now() + SWEEP_INTERVAL_MS;

  function sweep(now: number): void {
    nextSweepAt = now + SWEEP_INTERVAL_MS;
    for (const [familyId, until] of familiesRevokedUntil) if (until <= now) familiesRevokedUntil.delete(familyId);
  }

  function revocationOf(principal: Principal): RevocationReason | undefined {
    const before = usersRevokedBefore.get(principal.userId);
    if (before === Number.POSITIVE_INFINITY) return { check: 'subject_disabled', sub: shown(principal.userId) ?? '' };
    if (before !== undefined && principal.issuedAt <= before)
      return { check: 'revoked', by: 'user', revokedBefore: before, issuedAt: principal.issuedAt };
    const familyId = principal.sessionFamilyId;
    if (familyId === undefined) return undefined;
    const until = familiesRevokedUntil.get(familyId);
    if (until === undefined) return undefined;
    if (clock.now() < until) return { check: 'revoked', by: 'family' };
    familiesRevokedUntil.delete(familyId);
    return undefined;
  }

  return {
    revokeUser(userId, beforeMs) {
      const current = usersRevokedBefore.get(userId);
      if (current === undefined || beforeMs > current) usersRevokedBefore.set(userId, beforeMs);
    },

    restoreUser(userId, afterMs) {
      // Only a disabled user is re-enabled; a finite "kicked before" instant keeps refusing old tokens.
      if (usersRevokedBefore.get(userId) === Number.POSITIVE_INFINITY) usersRevokedBefore.set(userId, afterMs);
    },

    revokeFamily(familyId, untilMs) {
      const now = clock.now();
      if (now >= nextSweepAt) sweep(now);
      if (untilMs <= now) return;
      const current = familiesRevokedUntil.get(familyId);
      if (current === undefined || untilMs > current) familiesRevokedUntil.set(familyId, untilMs);
    },

    isRevoked: (principal) => revocationOf(principal) !== undefined,
    revocationOf,
  };
}
