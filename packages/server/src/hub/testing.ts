/**
 * In-process doubles for the hub's unit tests (and anyone testing against `Hub`): a fake clock,
 * a `ConnectionSink` that records what it is asked to write, and an `Authenticator` over a table.
 * They are small real implementations of the interfaces, not mocks.
 */
import { AUTH_MESSAGES, TetherError, type ErrorCode } from '@tether/protocol';
import type { Authenticator, Principal, RevocationState } from '../auth/types.js';
import { configFrom, type SettingName } from '../config/index.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { EventLog } from '../history/types.js';
import { createLogger } from '../util/logger.js';
import { createHub } from './hub.js';
import { TurnBudget, type BudgetYield } from './turn-budget.js';
import type {
  ConnectionInfo,
  ConnectionSink,
  HubBroker,
  HubObserver,
  OutboundEvent,
  PositionSource,
  SystemMessage,
  TransportKind,
} from './types.js';

interface FakeTimer extends TimerHandle {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A `TurnBudget` on a hand-moved clock (`spend`) whose later slices wait in `slices` until a test
 * runs them (each one is the next turn's check phase). `yieldTo`: what it gives way to while busy.
 */
export function manualTurnBudget(budgetMs: number, yieldTo?: BudgetYield) {
  let now = 0;
  const slices: Array<() => void> = [];
  const budget = new TurnBudget({ budgetMs, now: () => now, schedule: (fn) => slices.push(fn), yieldTo });
  return { budget, slices, spend: (ms: number) => void (now += ms) };
}

/** A clock whose time moves only when told; timers fire in time order during `advance`. */
export class FakeClock implements Clock {
  private timers = new Set<FakeTimer>();
  private seq = 0;

  constructor(private current = 1_700_000_000_000) {}

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: FakeTimer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, unref: () => timer };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as FakeTimer);
  }

  /** Timers armed and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that comes due, each at its own instant. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.timers)
        if (t.at <= target && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq)))
          next = t;
      if (next === undefined) break;
      this.timers.delete(next);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = target;
  }

  /** Moves time to `at` (ms since the epoch). */
  advanceTo(at: number): void {
    this.advance(Math.max(0, at - this.current));
  }
}

/** A sink that records every write and close, like a transport that never fails. */
export class RecordingSink implements ConnectionSink {
  readonly events: OutboundEvent[] = [];
  /** The position each event was sent with (undefined without a log), by index. */
  readonly positions: (string | undefined)[] = [];
  readonly system: SystemMessage[] = [];
  closedWith: { code: ErrorCode | null; reason: string } | undefined;
  /** Called on close, e.g. to report the disconnect back to the hub as a transport would. */
  onClose: (() => void) | undefined;

  constructor(readonly transport: TransportKind = 'socket.io') {}

  sendEvent(event: OutboundEvent, position?: PositionSource): void {
    this.events.push(event);
    this.positions.push(position?.position());
  }

  sendSystem(message: SystemMessage): void {
    this.system.push(message);
  }

  close(code: ErrorCode | null, reason: string): void {
    this.closedWith = { code, reason };
    this.onClose?.();
  }

  /** System messages of one kind, in order. */
  systemOf<K extends SystemMessage['kind']>(kind: K): Extract<SystemMessage, { kind: K }>[] {
    return this.system.filter((m): m is Extract<SystemMessage, { kind: K }> => m.kind === kind);
  }

  get eventNames(): string[] {
    return this.events.map((e) => e.event);
  }
}

/** Builds a principal with sensible defaults. */
export function makePrincipal(overrides: Partial<Principal> & { userId: string; expiresAt: number }): Principal {
  return {
    isGuest: false,
    role: undefined,
    scopes: [],
    channels: [],
    issuedAt: overrides.expiresAt - 60_000,
    tokenId: undefined,
    sessionFamilyId: undefined,
    claims: {},
    ...overrides,
  };
}

/**
 * An authenticator over a table of token strings. Unknown tokens are AUTH_INVALID; tokens whose
 * principal has expired (by the given clock) are AUTH_EXPIRED; `delay` makes verification wait for
 * a promise the test controls.
 */
export class TableAuthenticator implements Authenticator {
  readonly tokens = new Map<string, Principal>();
  readonly revocations: RevocationState = {
    revokeUser: () => {},
    restoreUser: () => {},
    revokeFamily: () => {},
    isRevoked: () => false,
    revocationOf: () => undefined,
  };
  /** When set, every authenticate waits for it first. */
  delay: Promise<void> | undefined;
  /** Per-token waits, for tests that need one verification slower than another. */
  readonly delays = new Map<string, Promise<void>>();
  calls = 0;

  constructor(private readonly clock: Clock) {}

  add(token: string, principal: Principal): string {
    this.tokens.set(token, principal);
    return token;
  }

  async authenticate(token: string): Promise<Principal> {
    this.calls++;
    if (this.delay !== undefined) await this.delay;
    const own = this.delays.get(token);
    if (own !== undefined) await own;
    const principal = this.tokens.get(token);
    if (principal === undefined) throw new TetherError('AUTH_INVALID', AUTH_MESSAGES.invalid);
    if (principal.expiresAt <= this.clock.now()) throw new TetherError('AUTH_EXPIRED', AUTH_MESSAGES.expired);
    return principal;
  }
}

/** Settings the test hub uses unless overridden (env-style names, as `configFrom` takes them). */
export interface TestHubOptions {
  env?: Partial<Record<SettingName, string>>;
  observer?: HubObserver;
  random?: () => number;
  broker?: HubBroker;
  log?: EventLog;
}

/**
 * A hub on a fake clock with a table authenticator and captured log lines, plus `connect` to
 * register a recording sink whose close is reported back to the hub, as a transport does.
 */
export function createTestHub(options: TestHubOptions = {}) {
  const clock = new FakeClock();
  const config = configFrom({ TOKEN_EXPIRY_WARNING_SECONDS: '30', ...options.env });
  const authenticator = new TableAuthenticator(clock);
  const logLines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
  const hub = createHub({
    config,
    authenticator,
    clock,
    logger,
    observer: options.observer,
    nodeId: 'test-node',
    random: options.random,
    broker: options.broker,
    log: options.log,
  });
  const info: ConnectionInfo = { ip: '127.0.0.1', userAgent: 'vitest', tokenSource: 'auth' };

  function connect(principal: Partial<Principal> & { userId: string }, transport: TransportKind = 'socket.io') {
    const sink = new RecordingSink(transport);
    const session = hub.register(makePrincipal({ expiresAt: clock.now() + 600_000, ...principal }), sink, info);
    sink.onClose = () => hub.unregister(session, 'client');
    return { sink, session };
  }

  return { clock, config, authenticator, hub, logLines, connect };
}
