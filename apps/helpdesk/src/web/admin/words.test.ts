import { describe, expect, it } from 'vitest';
import type { TimelineKind } from '../../server/domain/dto.js';
import { describeTimelineEntry, formatDelay } from './words.js';

const entry = (kind: TimelineKind, code: string | null = null) => ({
  kind,
  code,
  reason: null as string | null,
  revokedBy: null as string | null,
});

describe('timeline entries in plain words', () => {
  it('says what happened to a connection', () => {
    expect(describeTimelineEntry(entry('connect'))).toBe('Connected');
    expect(describeTimelineEntry(entry('reauth'))).toBe('Token renewed in place');
    expect(describeTimelineEntry(entry('warning'))).toBe('Warned before expiry');
    expect(describeTimelineEntry(entry('expired', 'AUTH_EXPIRED'))).toBe('Expired (AUTH_EXPIRED)');
    expect(describeTimelineEntry(entry('reauth_failed', 'AUTH_INVALID'))).toBe('Token renewal refused (AUTH_INVALID)');
  });
  it('names an administrator only when the dashboard did it', () => {
    expect(describeTimelineEntry({ ...entry('revoked', 'AUTH_REVOKED'), revokedBy: 'Amina Admin' })).toBe(
      'Signed out by an administrator (AUTH_REVOKED)',
    );
    expect(describeTimelineEntry(entry('revoked', 'AUTH_REVOKED'))).toBe('Signed out: session revoked (AUTH_REVOKED)');
  });
  it('says why a connection closed', () => {
    expect(describeTimelineEntry({ ...entry('disconnect'), reason: 'heartbeat' })).toBe(
      'Disconnected: heartbeat missed (network lost or device asleep)',
    );
    expect(describeTimelineEntry({ ...entry('disconnect'), reason: 'something_new' })).toBe(
      'Disconnected: something_new',
    );
  });
  it('formats a receipt delay', () => {
    expect(formatDelay(85)).toBe('85 ms');
    expect(formatDelay(1234)).toBe('1.2 s');
    expect(formatDelay(180_000)).toBe('3 min');
  });
});
