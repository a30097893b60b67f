import { describe, expect, it } from 'vitest';
import { ConnectionState, STATE_TABLE, StateMachine, canTransition, type StateChange } from './state-machine.js';

const states = Object.values(ConnectionState);

/** The table, written out once more by hand: a change to one must be mirrored in the other. */
const allowed: Record<ConnectionState, ConnectionState[]> = {
  disconnected: ['connecting'],
  connecting: ['authenticating', 'reconnecting', 'suspended', 'failed', 'disconnected'],
  authenticating: ['connected', 'reconnecting', 'suspended', 'failed', 'disconnected'],
  connected: ['reconnecting', 'failed', 'disconnected'],
  reconnecting: ['connecting', 'suspended', 'failed', 'disconnected'],
  suspended: ['connecting', 'failed', 'disconnected'],
  failed: ['connecting', 'disconnected'],
};

/** A path of allowed moves from `disconnected` to each state. */
const pathTo: Record<ConnectionState, ConnectionState[]> = {
  disconnected: [],
  connecting: ['connecting'],
  authenticating: ['connecting', 'authenticating'],
  connected: ['connecting', 'authenticating', 'connected'],
  reconnecting: ['connecting', 'reconnecting'],
  suspended: ['connecting', 'suspended'],
  failed: ['connecting', 'failed'],
};

function machineIn(state: ConnectionState): StateMachine {
  const m = new StateMachine();
  for (const s of pathTo[state]) expect(m.transition(s, 'setup')).not.toBeNull();
  expect(m.state).toBe(state);
  return m;
}

const pairs = states.flatMap((from) => states.map((to) => [from, to, allowed[from].includes(to)] as const));

describe('state machine', () => {
  it('starts disconnected', () => {
    expect(new StateMachine().state).toBe('disconnected');
  });

  it.each(pairs)('%s → %s allowed=%s', (from, to, ok) => {
    expect(canTransition(from, to)).toBe(ok);
    const m = machineIn(from);
    const seen: StateChange[] = [];
    m.onChange((c) => seen.push(c));
    const change = m.transition(to, 'test', to === 'reconnecting' ? 250 : null);
    if (ok) {
      expect(change).toEqual({
        previous: from,
        current: to,
        reason: 'test',
        retryInMs: to === 'reconnecting' ? 250 : null,
      });
      expect(seen).toEqual([change]);
      expect(m.state).toBe(to);
    } else {
      expect(change).toBeNull();
      expect(seen).toEqual([]);
      expect(m.state).toBe(from);
    }
  });

  it('never allows a state to move to itself', () => {
    for (const s of states) expect(canTransition(s, s)).toBe(false);
  });

  it('marks only failed as terminal and only reconnecting and suspended as retrying', () => {
    expect(states.filter((s) => STATE_TABLE[s].terminal)).toEqual(['failed']);
    expect(states.filter((s) => STATE_TABLE[s].retrying)).toEqual(['reconnecting', 'suspended']);
  });

  it('stops notifying a listener once unsubscribed', () => {
    const m = new StateMachine();
    const seen: string[] = [];
    const off = m.onChange((c) => seen.push(c.current));
    m.transition('connecting', 'a');
    off();
    m.transition('authenticating', 'b');
    expect(seen).toEqual(['connecting']);
  });
});
