import { describe, expect, it } from 'vitest';
import { createRevocationState } from '../auth/revocations.js';
import type { Principal } from '../auth/types.js';
import { FakeClock } from '../hub/testing.js';
import { applyRevocation, clusterRevocations, type ControlMessage } from './control.js';

const principal = (userId: string, issuedAt: number, sessionFamilyId?: string): Principal => ({
  userId,
  isGuest: false,
  role: undefined,
  scopes: [],
  channels: [],
  expiresAt: issuedAt + 60_000,
  issuedAt,
  tokenId: undefined,
  sessionFamilyId,
  claims: {},
});

describe('cluster-wide revocation state', () => {
  it('applies every update locally and on every other node, a disabled user included', () => {
    const clock = new FakeClock(1_000_000);
    const here = createRevocationState(clock);
    const there = createRevocationState(clock);
    const sent: ControlMessage[] = [];
    const shared = clusterRevocations(here, 'n1', (message) => sent.push(message));

    shared.revokeUser('kicked', 1_000_000);
    shared.revokeUser('disabled', Number.POSITIVE_INFINITY);
    shared.revokeFamily('f1', 1_060_000);
    for (const message of JSON.parse(JSON.stringify(sent)) as ControlMessage[])
      expect(applyRevocation(there, message)).toBe(true);

    for (const state of [here, there]) {
      expect(state.isRevoked(principal('kicked', 999_000))).toBe(true);
      expect(state.isRevoked(principal('kicked', 1_000_001))).toBe(false);
      expect(state.isRevoked(principal('disabled', 5_000_000))).toBe(true);
      expect(state.isRevoked(principal('other', 1_000_000, 'f1'))).toBe(true);
    }
    shared.restoreUser('disabled', 1_000_500);
    expect(applyRevocation(there, sent.at(-1)!)).toBe(true);
    expect(there.isRevoked(principal('disabled', 1_001_000))).toBe(false);
    expect(applyRevocation(there, { t: 'disconnect', from: 'n2', userId: 'u', code: 'AUTH_REVOKED' })).toBe(false);
  });
});
