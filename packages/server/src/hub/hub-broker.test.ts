import { TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { createTestHub, makePrincipal } from './testing.js';
import type { HubAction, HubBroker, PublishEnvelope } from './types.js';

/** A broker that records what the hub hands it; `delivered` is what its publishes report. */
function recordingBroker(delivered = 7) {
  const published: PublishEnvelope[] = [];
  const broadcast: HubAction[] = [];
  const admitted: string[] = [];
  const broker: HubBroker = {
    admit: (principal) => {
      admitted.push(principal.userId);
      return principal.userId === 'over-cap' ? Promise.reject(new TetherError('CONNECTION_LIMIT')) : Promise.resolve();
    },
    publish: (envelope) => {
      published.push(envelope);
      return Promise.resolve(delivered);
    },
    broadcast: (action) => void broadcast.push(action),
    channelReady: () => Promise.resolve(),
  };
  return { broker, published, broadcast, admitted };
}

describe('the hub with a broker (cluster mode)', () => {
  it('a publish goes to the broker once, validated, and is not written locally by the hub itself', async () => {
    const { broker, published } = recordingBroker();
    const { hub, connect } = createTestHub({ broker });
    const { sink } = connect({ userId: 'a' });
    const result = await hub.publish({ event: 'e', data: { n: 1 }, to: { users: ['a'] } });
    expect(result.delivered).toBe(7);
    expect(published).toEqual([
      expect.objectContaining({ id: result.id, event: 'e', to: { users: ['a'], scopes: [], channels: [] } }),
    ]);
    // Delivery comes back from the broker (deliverLocal), in the order every node sees.
    expect(sink.events).toEqual([]);
    await expect(hub.publish({ event: '', to: { users: ['a'] } })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(published).toHaveLength(1);
  });

  it('disconnects, family revocations and grant changes apply here, then are broadcast once', () => {
    const { broker, broadcast } = recordingBroker();
    const { hub, connect } = createTestHub({ broker });
    const a = connect({ userId: 'a', sessionFamilyId: 'f' });
    connect({ userId: 'b', scopes: ['ke'] });

    expect(hub.revokeFamily('f')).toBe(1);
    expect(a.sink.closedWith?.code).toBe('AUTH_REVOKED');
    expect(hub.updateGrants('b', { scopes: ['ke/a'] })).toBe(1);
    expect(hub.disconnectUser('b', 'AUTH_REVOKED')).toBe(1);
    expect(broadcast).toEqual([
      { t: 'family', familyId: 'f' },
      { t: 'grants', userId: 'b', scopes: ['ke/a'], channels: undefined },
      { t: 'disconnect', userId: 'b', code: 'AUTH_REVOKED' },
    ]);
  });

  it("another node's action (apply) changes this node's connections and is not broadcast again", () => {
    const { broker, broadcast } = recordingBroker();
    const { hub, connect } = createTestHub({ broker });
    const a = connect({ userId: 'a' });
    expect(hub.apply({ t: 'disconnect', userId: 'a', code: 'AUTH_REVOKED' })).toBe(1);
    expect(a.sink.closedWith?.code).toBe('AUTH_REVOKED');
    expect(broadcast).toEqual([]);
  });

  it('admission asks the broker after the local checks, and a local refusal never reaches it', async () => {
    const { broker, admitted } = recordingBroker();
    const { hub, clock } = createTestHub({ broker });
    await hub.admit(makePrincipal({ userId: 'ok', expiresAt: clock.now() + 60_000 }));
    await expect(
      hub.admit(makePrincipal({ userId: 'over-cap', expiresAt: clock.now() + 60_000 })),
    ).rejects.toMatchObject({ code: 'CONNECTION_LIMIT' });
    expect(() => hub.admit(makePrincipal({ userId: 'late', expiresAt: clock.now() - 1 }))).toThrow(
      expect.objectContaining({ code: 'AUTH_EXPIRED' }) as Error,
    );
    expect(admitted).toEqual(['ok', 'over-cap']);
  });

  it('without a broker the hub logs and delivers itself, and has no channelReady', async () => {
    const { hub, connect } = createTestHub();
    const { sink } = connect({ userId: 'a' });
    expect((await hub.publish({ event: 'e', to: { users: ['a'] } })).delivered).toBe(1);
    expect(sink.events).toHaveLength(1);
    expect(hub.channelReady).toBeUndefined();
  });
});
