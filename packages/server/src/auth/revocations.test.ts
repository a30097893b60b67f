import { describe, expect, it } from 'vitest';
import { FakeClock } from '../hub/testing.js';
import type { Principal } from './types.js';
import { createRevocationState } from './revocations.js';

function principal(userId: string, issuedAt: number, sessionFamilyId?: string): Principal {
  return {
    userId,
    isGuest: false,
    role: undefined,
    scopes: [],
    channels: [],
    expiresAt: issuedAt + 900_000,
    issuedAt,
    tokenId: undefined,
    sessionFamilyId,
    claims: {},
  };
}

describe('revocation state', () => {
  it('refuses tokens issued at or before the revocation instant and accepts one issued a millisecond later', () => {
    const clock = new FakeClock();
    const state = createRevocationState(clock);
    const t = clock.now();
    state.revokeUser('u1', t);
    expect(state.isRevoked(principal('u1', t - 5_000))).toBe(true);
    expect(state.isRevoked(principal('u1', t))).toBe(true);
    expect(state.isRevoked(principal('u1', t + 1))).toBe(false);
    expect(state.isRevoked(principal('u2', t - 5_000))).toBe(false);
  });

  it('never moves a user revocation backwards', () => {
    const state = createRevocationState(new FakeClock());
    state.revokeUser('u1', 2_000);
    state.revokeUser('u1', 1_000);
    expect(state.isRevoked(principal('u1', 1_500))).toBe(true);
  });

  it('a disabled user is refused whatever the issue time, and accepted again after restore for new tokens only', () => {
    const clock = new FakeClock();
    const state = createRevocationState(clock);
    state.revokeUser('u1', Number.POSITIVE_INFINITY);
    expect(state.isRevoked(principal('u1', clock.now() + 60_000))).toBe(true);
    state.restoreUser('u1', clock.now());
    expect(state.isRevoked(principal('u1', clock.now() - 1))).toBe(true);
    expect(state.isRevoked(principal('u1', clock.now() + 1))).toBe(false);
  });

  it('restoring a user who was only kicked keeps refusing the kicked tokens', () => {
    const clock = new FakeClock();
    const state = createRevocationState(clock);
    state.revokeUser('u1', clock.now());
    state.restoreUser('u1', clock.now() + 10_000);
    expect(state.isRevoked(principal('u1', clock.now() - 1))).toBe(true);
    expect(state.isRevoked(principal('u1', clock.now() + 1))).toBe(false);
  });

  it('refuses a revoked family until its entry expires, then forgets it', () => {
    const clock = new FakeClock();
    const state = createRevocationState(clock);
    const now = clock.now();
    state.revokeFamily('fam1', now + 60_000);
    expect(state.isRevoked(principal('u1', now - 1_000, 'fam1'))).toBe(true);
    expect(state.isRevoked(principal('u1', now + 1_000, 'fam1'))).toBe(true);
    expect(state.isRevoked(principal('u1', now, 'fam2'))).toBe(false);
    expect(state.isRevoked(principal('u1', now))).toBe(false);
    clock.advance(60_000);
    expect(state.isRevoked(principal('u1', now, 'fam1'))).toBe(false);
  });

  it('a family revocation already in the past refuses nothing, and expired entries stop refusing after a sweep', () => {
    const clock = new FakeClock();
    const state = createRevocationState(clock);
    state.revokeFamily('old', clock.now() + 1_000);
    state.revokeFamily('past', clock.now() - 1);
    expect(state.isRevoked(principal('u1', 0, 'past'))).toBe(false);
    clock.advance(120_000);
    state.revokeFamily('new', clock.now() + 1_000);
    expect(state.isRevoked(principal('u1', 0, 'new'))).toBe(true);
    expect(state.isRevoked(principal('u1', 0, 'old'))).toBe(false);
  });
});
