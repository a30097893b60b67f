/**
 * The realtime connection's states, as data. One table says, per state, where it may go and what
 * it means; one `transition()` moves between them and tells listeners. Nothing else in the SDK
 * keeps flags beside the state.
 *
 * ```
 *                 connect()
 *  disconnected ─────────────▶ connecting ──socket open──▶ authenticating ──session_created──▶ connected
 *       ▲                        │  ▲                           │                                  │
 *       │ close()/logout()       │  │ timer, online,            │ error, timeout                   │ socket lost,
 *       │ (from any state)       │  │ foreground                ▼                                  │ failed reauth
 *       │                        └──┼──────────────────▶ reconnecting ◀────────────────────────────┘
 *       │                           │                        │  many attempts
 *       │                           └────────────────── suspended (slow retries)
 *       │
 *     failed  ◀── AUTH_REVOKED, AUTH_INVALID without guest fallback, refresh refused (terminal)
 * ```
 */

export const ConnectionState = {
  disconnected: 'disconnected',
  connecting: 'connecting',
  authenticating: 'authenticating',
  connected: 'connected',
  reconnecting: 'reconnecting',
  suspended: 'suspended',
  failed: 'failed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

export interface StateSpec {
  /** States this one may move to. */
  readonly next: readonly ConnectionState[];
  /** No automatic way out: only the app (connect() after signing in again, close()) leaves it. */
  readonly terminal: boolean;
  /** A retry timer runs in this state. */
  readonly retrying: boolean;
  /** A transport exists (open or opening) in this state. */
  readonly hasTransport: boolean;
}

export const STATE_TABLE: { readonly [S in ConnectionState]: StateSpec } = {
  disconnected: { next: ['connecting'], terminal: false, retrying: false, hasTransport: false },
  connecting: {
    next: ['authenticating', 'reconnecting', 'suspended', 'failed', 'disconnected'],
    terminal: false,
    retrying: false,
    hasTransport: true,
  },
  authenticating: {
    next: ['connected', 'reconnecting', 'suspended', 'failed', 'disconnected'],
    terminal: false,
    retrying: false,
    hasTransport: true,
  },
  connected: { next: ['reconnecting', 'failed', 'disconnected'], terminal: false, retrying: false, hasTransport: true },
  reconnecting: {
    next: ['connecting', 'suspended', 'failed', 'disconnected'],
    terminal: false,
    retrying: true,
    hasTransport: false,
  },
  suspended: { next: ['connecting', 'failed', 'disconnected'], terminal: false, retrying: true, hasTransport: false },
  failed: { next: ['connecting', 'disconnected'], terminal: true, retrying: false, hasTransport: false },
};

/** What `transition()` tells listeners. */
export interface StateChange {
  previous: ConnectionState;
  current: ConnectionState;
  /** Why, in a few words or an error code (`AUTH_REVOKED`, `socket closed`, `connect()`). */
  reason: string;
  /** When the next attempt is scheduled (reconnecting, suspended); otherwise null. */
  retryInMs: number | null;
}

export type StateListener = (change: StateChange) => void;

/** Whether the table allows `from → to`. */
export function canTransition(from: ConnectionState, to: ConnectionState): boolean {
  return STATE_TABLE[from].next.includes(to);
}

/**
 * Holds the current state. `transition()` refuses (returns null, emits nothing) any move the
 * table does not list, so a late report from a transport can never revive a closed client.
 */
export class StateMachine {
  private currentState: ConnectionState = 'disconnected';
  private readonly listeners = new Set<StateListener>();

  get state(): ConnectionState {
    return this.currentState;
  }

  get spec(): StateSpec {
    return STATE_TABLE[this.currentState];
  }

  /** Moves to `to` when allowed and returns the change; returns null when refused. */
  transition(to: ConnectionState, reason: string, retryInMs: number | null = null): StateChange | null {
    const previous = this.currentState;
    if (!canTransition(previous, to)) return null;
    this.currentState = to;
    const change: StateChange = { previous, current: to, reason, retryInMs };
    for (const listener of [...this.listeners]) listener(change);
    return change;
  }

  /** Subscribes to every change; returns the unsubscribe function. */
  onChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
