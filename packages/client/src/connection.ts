import {
  ERRORS,
  TetherError,
  type ErrorBody,
  type ErrorCode,
  type ResumeRequest,
  type SessionCreatedPayload,
  type TokenExpiringPayload,
} from '@tether/protocol';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { tokenExpiry } from './jwt.js';
import type { Platform, TimerHandle } from './platform.js';
import { StateMachine } from './state-machine.js';
import type { TokenManager } from './token-manager.js';
import type { Transport, TransportFactory, TransportHandlers } from './transports/types.js';

export interface ConnectionOptions {
  url: string;
  tokens: TokenManager;
  platform: Platform;
  transport: TransportFactory;
  backoff: BackoffOptions;
  /** After this many failed attempts in a row, retry every `suspendedRetryMs` instead. */
  suspendAfterAttempts: number;
  suspendedRetryMs: number;
  /** Waiting for `session_created` gives up after this and retries. */
  sessionTimeoutMs: number;
  ackTimeoutMs: number;
  /** On AUTH_INVALID/AUTH_REQUIRED, continue as a guest instead of failing. */
  guestFallback: boolean;
  onSession(payload: SessionCreatedPayload, transport: Transport): void;
  onEvent(
    name: string,
    data: Record<string, unknown>,
    id: string | undefined,
    transport: Transport,
    position?: string,
  ): void;
  /** What to present for recovery on each attempt (last position, channels); read right before opening. */
  resume?(): Promise<ResumeRequest | undefined>;
  /** True while an in-place reauth is on the wire, false after (sends wait meanwhile). */
  onReauthing?(active: boolean): void;
  /** A reauth or an auth event worth showing to the app (diagnostics). */
  onAuthNotice(notice: AuthNotice): void;
}

export type AuthNotice =
  | { kind: 'reauth_ok'; expiresAt: number }
  | { kind: 'reauth_failed'; code: ErrorCode | 'TIMEOUT'; message: string }
  | { kind: 'auth_error'; code: ErrorCode; message: string };

/**
 * Drives one logical connection through the state table: fetch a fresh token, open a transport,
 * wait for `session_created`, keep the session authorized with in-place reauth, and retry with
 * backoff when anything breaks. Every attempt gets a generation number; a report from a transport
 * of an older generation is dropped, so a late `disconnect` can never undo a newer connection.
 *
 * ```
 *  token change / token_expiring ──▶ refresh ──▶ reauth(new token) ──ok──▶ stay connected
 *                                                      └──refused──▶ reconnect (fresh token)
 *  auth_error AUTH_EXPIRED ──▶ refresh ──▶ reconnect at once (then backoff if it repeats)
 *  auth_error AUTH_REVOKED ──▶ failed + signed out      AUTH_INVALID/REQUIRED ──▶ guest or failed
 * ```
 */
export class Connection {
  readonly machine = new StateMachine();
  private generation = 0;
  private transport: Transport | null = null;
  /** The token the live transport authenticated with (after the last successful reauth). */
  private presented: string | null = null;
  private attempts = 0;
  private expiredInARow = 0;
  private retryTimer: TimerHandle | undefined;
  private sessionTimer: TimerHandle | undefined;
  private reauthing = false;
  private readonly unsubscribe: Array<() => void>;

  constructor(private readonly o: ConnectionOptions) {
    this.unsubscribe = [
      o.tokens.on('change', ({ accessToken }) => {
        if (accessToken !== null) unawaited('reauth', this.reauth());
      }),
      o.tokens.on('signed_out', ({ code }) => {
        if (code === null) this.close('logged out');
        else this.fail(code);
      }),
      o.platform.hooks.onOnline(() => this.wake('online')),
      o.platform.hooks.onForeground(() => this.wake('foreground')),
    ];
  }

  get currentTransport(): Transport | null {
    return this.machine.state === 'connected' ? this.transport : null;
  }

  /** User request: connect (or retry now when waiting). */
  connect(): void {
    const state = this.machine.state;
    if (state === 'disconnected' || state === 'failed') unawaited('connect', this.start('connect()'));
    else if (this.machine.spec.retrying) this.wake('connect()');
  }

  /** User request: close and stay closed. */
  close(reason = 'close()'): void {
    this.teardown();
    this.machine.transition('disconnected', reason);
  }

  dispose(): void {
    this.close('disposed');
    for (const off of this.unsubscribe) off();
  }

  private async start(reason: string, forceRefresh = false): Promise<void> {
    this.teardown();
    const generation = this.generation;
    if (!this.machine.transition('connecting', reason)) return;
    let token: string | null;
    try {
      // Checked on every attempt: after a sleep or an outage the stored token may be long expired.
      token = forceRefresh
        ? await this.o.tokens.refreshIfCurrent(this.presented)
        : await this.o.tokens.getAccessToken();
    } catch (error) {
      if (generation !== this.generation) return;
      if (error instanceof TetherError && !error.retryable) return this.onAuthRefused(error.code, error.message);
      return this.retry(`token unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (generation !== this.generation) return;
    if (token === null) return this.onAuthRefused('AUTH_REQUIRED', 'no session');
    let resume: ResumeRequest | undefined;
    try {
      resume = await this.o.resume?.();
    } catch {
      resume = undefined; // Storage failed: connect fresh (the server then says recovered: false).
    }
    if (generation !== this.generation) return;
    const transport = this.o.transport({
      url: this.o.url,
      platform: this.o.platform,
      ackTimeoutMs: this.o.ackTimeoutMs,
      handlers: this.handlers(generation),
    });
    this.transport = transport;
    this.presented = token;
    this.sessionTimer = this.o.platform.setTimeout(
      shielded('session timeout', () => {
        if (generation === this.generation) this.retry('session_created timeout');
      }),
      this.o.sessionTimeoutMs,
    );
    try {
      transport.open(token, resume);
    } catch (error) {
      this.retry(`open failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /**
   * Reports from the transport of `generation`; stale ones return early. They run inside socket
   * callbacks, so each is shielded: a throw there would be uncaught in the host app.
   */
  private handlers(generation: number): TransportHandlers {
    const live = <A extends unknown[]>(what: string, handler: (...args: A) => void) =>
      shielded(`${what} handler`, (...args: A) => {
        if (generation === this.generation) handler(...args);
      });
    return {
      open: live('open', () => {
        this.machine.transition('authenticating', 'transport open');
      }),
      session: live('session', (payload) => {
        if (!this.transport) return;
        this.clearSessionTimer();
        if (this.machine.state === 'connecting') this.machine.transition('authenticating', 'transport open');
        if (!this.machine.transition('connected', 'session_created')) return;
        this.attempts = 0;
        this.expiredInARow = 0;
        this.o.onSession(payload, this.transport);
        // A refresh may have landed while the handshake was in flight.
        unawaited('reauth', this.reauth());
      }),
      tokenExpiring: live('token_expiring', (payload) => this.onTokenExpiring(payload)),
      authError: live('auth_error', (body) => this.onAuthError(body)),
      event: live('event', (name, data, id, position) => {
        if (this.transport) this.o.onEvent(name, data, id, this.transport, position);
      }),
      shutdown: live('shutdown', (payload) => this.retry('server shutdown', payload.reconnectInMs)),
      closed: live('closed', (reason) => this.retry(reason)),
    };
  }

  private onTokenExpiring(payload: TokenExpiringPayload): void {
    const current = this.o.tokens.accessToken;
    const currentExp = current === null ? undefined : tokenExpiry(current);
    // A warning about a token we already replaced (it crossed our reauth on the wire).
    if (current !== this.presented && currentExp !== undefined && currentExp > payload.expiresAt) {
      unawaited('reauth', this.reauth());
      return;
    }
    // The refresh announces a new token; the `change` listener reauthenticates with it.
    this.o.tokens.refreshIfCurrent(this.presented).then(
      () => unawaited('reauth', this.reauth()),
      () => {
        // Transient failures: the server ends the session at `exp` and we reconnect then.
      },
    );
  }

  /** In-place reauth with the token manager's current token, if it differs from the one presented. */
  private async reauth(): Promise<void> {
    if (this.reauthing) return;
    this.reauthing = true;
    try {
      for (;;) {
        const token = this.o.tokens.accessToken;
        const transport = this.transport;
        if (this.machine.state !== 'connected' || !transport || token === null || token === this.presented) return;
        const generation = this.generation;
        let ack;
        try {
          this.o.onReauthing?.(true);
          ack = await transport.reauth(token);
        } catch (error) {
          if (generation !== this.generation) return;
          this.o.onAuthNotice({
            kind: 'reauth_failed',
            code: 'TIMEOUT',
            message: error instanceof Error ? error.message : '',
          });
          return this.retry('reauth unanswered', 0);
        }
        if (generation !== this.generation) return;
        if (ack.ok) {
          this.presented = token;
          this.o.onAuthNotice({ kind: 'reauth_ok', expiresAt: ack.expiresAt });
          continue; // Another refresh may have happened while this one was in flight.
        }
        this.o.onAuthNotice({ kind: 'reauth_failed', code: ack.code, message: ack.message });
        if (ack.code === 'AUTH_REVOKED') return this.revoked(ack.message);
        // Only a failed reauth costs a reconnect; the next attempt fetches a fresh token again.
        return this.retry(`reauth refused: ${ack.code}`, ack.code === 'RATE_LIMITED' ? undefined : 0);
      }
    } finally {
      this.reauthing = false;
      this.o.onReauthing?.(false);
    }
  }

  private onAuthError(body: ErrorBody): void {
    this.o.onAuthNotice({ kind: 'auth_error', code: body.code, message: body.message });
    switch (body.code) {
      case 'AUTH_EXPIRED':
        // Refresh, then reconnect at once; if it keeps happening (clock skew), back off instead.
        this.expiredInARow++;
        return this.retry('AUTH_EXPIRED', this.expiredInARow <= 1 ? 0 : undefined, true);
      case 'AUTH_REVOKED':
        return this.revoked(body.message);
      case 'AUTH_INVALID':
      case 'AUTH_REQUIRED':
        return this.onAuthRefused(body.code, body.message);
      default:
        // RATE_LIMITED, CONNECTION_LIMIT, AUTH_TIMEOUT… may pass; ORIGIN_FORBIDDEN, FORBIDDEN… never will.
        if (!ERRORS[body.code].retryable) return this.fail(body.code);
        return this.retry(body.code, body.retryAfterMs);
    }
  }

  /** AUTH_INVALID / AUTH_REQUIRED: become a guest when allowed, else fail. */
  private onAuthRefused(code: ErrorCode, message: string): void {
    if (code === 'AUTH_REVOKED' || code.startsWith('REFRESH_')) return this.revoked(message, code);
    if (!this.o.guestFallback || this.o.tokens.isGuest) return this.fail(code);
    const generation = ++this.generation;
    this.teardownTransport();
    unawaited(
      'guest login',
      this.o.tokens.loginAsGuest().then(
        () => {
          if (generation === this.generation) this.retry('continuing as guest', 0);
        },
        () => {
          if (generation === this.generation) this.retry('guest login failed');
        },
      ),
    );
  }

  private revoked(message: string, code: ErrorCode = 'AUTH_REVOKED'): void {
    this.fail(code);
    unawaited('sign-out', this.o.tokens.signOut(code, message));
  }

  private fail(reason: string): void {
    this.teardown();
    this.machine.transition('failed', reason);
  }

  /** Drops the current transport and schedules the next attempt (backoff unless `delayMs`). */
  private retry(reason: string, delayMs?: number, forceRefresh = false): void {
    this.teardown();
    const attempt = this.attempts++;
    const suspended = attempt >= this.o.suspendAfterAttempts;
    const delay =
      delayMs ??
      (suspended
        ? Math.round(this.o.suspendedRetryMs * (0.5 + this.o.platform.random() / 2))
        : backoffDelay(attempt, this.o.backoff, this.o.platform.random));
    if (!this.machine.transition(suspended ? 'suspended' : 'reconnecting', reason, delay)) return;
    this.retryTimer = this.o.platform.setTimeout(() => {
      this.retryTimer = undefined;
      unawaited('retry', this.start('retry', forceRefresh));
    }, delay);
  }

  /** Connectivity back or app in front: skip the rest of the backoff, but still check the token. */
  private wake(reason: string): void {
    if (!this.machine.spec.retrying) return;
    unawaited(reason, this.start(reason));
  }

  /** Ends the current attempt: its transport is closed and its late callbacks are ignored. */
  private teardown(): void {
    this.generation++;
    this.teardownTransport();
    if (this.retryTimer !== undefined) this.o.platform.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private teardownTransport(): void {
    this.clearSessionTimer();
    const transport = this.transport;
    this.transport = null;
    transport?.close();
  }

  private clearSessionTimer(): void {
    if (this.sessionTimer !== undefined) this.o.platform.clearTimeout(this.sessionTimer);
    this.sessionTimer = undefined;
  }
}

/*
 * The SDK runs inside someone else's app, and most of its work is called from places where a throw
 * has no catcher: socket callbacks, timers, host events, promises nobody awaits. In Node an
 * exception there is uncaught and ends the host process; in a browser it is a page error. A throw
 * there is an SDK bug or an app listener that was not contained, so it is reported, never rethrown.
 */

function report(what: string, error: unknown): void {
  console.error(`tether: ${what} threw`, error);
}

/** `fn`, reporting instead of throwing (for socket callbacks and timers). */
function shielded<A extends unknown[]>(what: string, fn: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      fn(...args);
    } catch (error) {
      report(what, error);
    }
  };
}

/** Async work nobody awaits: a rejection would be unhandled in the host, so it is reported here. */
function unawaited(what: string, task: Promise<unknown>): void {
  task.catch((error: unknown) => report(what, error));
}
