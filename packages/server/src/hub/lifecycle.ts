import { AUTH_MESSAGES, ERRORS, TetherError, type ErrorCode, type ReauthAck } from '@tether/protocol';
import { reasonOf, shown, type RefusalReason } from '../auth/refusal-reason.js';
import type { Authenticator, Principal } from '../auth/types.js';
import type { Config } from '../config/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { SessionIndexes } from './indexes.js';
import type { GuardedObserver } from './observer.js';
import { DeadlineScheduler, type SchedulerStats } from './scheduler.js';
import type { HubSession } from './session.js';
import { TurnBudget, type BudgetYield } from './turn-budget.js';

type Deadline = 'warn' | 'expire';

export interface LifecycleDeps {
  config: Config;
  authenticator: Authenticator;
  clock: Clock;
  logger: Logger;
  observer: GuardedObserver;
  indexes: SessionIndexes;
  /** Ends a session whose token expired: `auth_error AUTH_EXPIRED`, then close. */
  expire(session: HubSession): void;
  /** A reauth replaced the session's grants (the streams it reads may have changed). */
  regranted(session: HubSession): void;
  /** Paces reauth verification per event-loop turn (default: REAUTH_BUDGET_MS per phase, see TurnBudget). */
  reauthBudget?: TurnBudget;
  /** Publishes pending in the hub: the default budget gives way to them (`REAUTH_BUDGET_BUSY_MS`). */
  backlog?: BudgetYield;
}

/**
 * The token lifecycle of live sessions: `token_expiring` at `exp - W`, expiry at `exp`, and
 * reauth in place. All deadlines of all sessions live in one scheduler with one armed timer.
 *
 *   connect ──► [warn at exp-W] ──► token_expiring ──► [expire at exp] ──► auth_error, close
 *                      ▲                                      │
 *                      └──── reauth ok: new token, re-armed ◄─┘ (before exp)
 */
export class TokenLifecycle {
  private readonly scheduler: DeadlineScheduler<HubSession, Deadline>;
  private readonly warningMs: number;
  private readonly budget: TurnBudget;

  constructor(private readonly deps: LifecycleDeps) {
    this.warningMs = deps.config.tokenExpiryWarningSeconds * 1000;
    this.budget = deps.reauthBudget ?? new TurnBudget({ yieldTo: deps.backlog });
    this.scheduler = new DeadlineScheduler<HubSession, Deadline>(deps.clock, (session, kind) =>
      this.onDue(session, kind),
    );
  }

  /**
   * Arms the warning and expiry of the session's current token; sends the warning now if already
   * inside the window. Only the next deadline is queued: the expiry follows when the warning fires,
   * in the place it would have had if queued now. One heap entry per session rather than two saves
   * ~90 bytes per idle connection (an entry and its boxed time).
   */
  arm(session: HubSession): void {
    this.scheduler.cancel(session);
    const { expiresAt } = session.principal;
    // W = 0 disables the warning: one sent at the instant of expiry would be no use.
    if (this.warningMs > 0 && session.warnedFor !== expiresAt) {
      const warnAt = expiresAt - this.warningMs;
      if (warnAt > this.deps.clock.now()) {
        this.scheduler.schedule(session, warnAt, 'warn');
        return;
      }
      this.warn(session);
    }
    this.scheduler.schedule(session, expiresAt, 'expire');
  }

  disarm(session: HubSession): void {
    this.scheduler.cancel(session);
  }

  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  stop(): void {
    this.scheduler.stop();
  }

  /**
   * Verifies `token` like a handshake and, when it names the same user, makes it the session's
   * token: grants, channel rights and deadlines change at once. Reauths of one session run in
   * the order they were sent, so an older request can never overwrite a newer token, and each
   * answer settles after the answers of the reauths sent before it (refusals included).
   *
   * Verification waits for room in the reauth budget of the current event-loop turn: a burst of
   * reauths runs a slice per turn and deliveries are written between slices.
   */
  reauth(session: HubSession, token: string): Promise<ReauthAck> {
    if (session.closed) return Promise.resolve(this.refuse(session, closedCode(session)));
    // Taken on arrival: the rate limit counts frames as they come, not as they are verified.
    const waitMs = session.reauthBucket.take();
    const result: Promise<ReauthAck> =
      waitMs > 0
        ? session.reauthChain.then(() => this.refuse(session, 'RATE_LIMITED', undefined, waitMs))
        : session.reauthChain.then(() =>
            this.budget.tryNow()
              ? this.verifyAndApply(session, token)
              : new Promise<ReauthAck>((resolve) =>
                  this.budget.run(() => resolve(this.verifyAndApply(session, token))),
                ),
          );
    session.reauthChain = result.catch(() => undefined);
    return result;
  }

  private async verifyAndApply(session: HubSession, token: string): Promise<ReauthAck> {
    if (session.closed) return this.refuse(session, closedCode(session));
    let principal: Principal;
    try {
      principal = await this.deps.authenticator.authenticate(token);
    } catch (err) {
      if (err instanceof TetherError) return this.refuse(session, err.code, err.message, undefined, reasonOf(err));
      this.deps.logger.error({ err, sessionId: session.id }, 'reauth verification failed unexpectedly');
      return this.refuse(session, 'INTERNAL');
    }
    // The session may have expired or been revoked while the verification was awaited.
    if (session.closed) return this.refuse(session, closedCode(session));
    if (principal.userId !== session.userId)
      return this.refuse(session, 'AUTH_INVALID', AUTH_MESSAGES.invalid, undefined, {
        check: 'different_user',
        expected: shown(session.userId) ?? '',
        got: shown(principal.userId) ?? '',
      });

    const previousExpiry = session.principal.expiresAt;
    // The same grants (a token refreshed, the usual reauth) leave indexes and streams untouched.
    let dropped: string[] = [];
    if (!this.deps.indexes.renewPrincipal(session, principal)) {
      dropped = this.deps.indexes.replacePrincipal(session, principal);
      this.deps.regranted(session);
    }
    this.arm(session);
    this.deps.logger.info(
      {
        event: 'reauth',
        sessionId: session.id,
        userId: session.userId,
        ok: true,
        previousExpiresAt: previousExpiry,
        expiresAt: principal.expiresAt,
        scopes: session.principal.scopes.length,
        droppedChannels: dropped.length > 0 ? dropped : undefined,
      },
      'session reauthenticated',
    );
    this.deps.observer.onReauth(session, true);
    return { ok: true, expiresAt: principal.expiresAt };
  }

  private refuse(
    session: HubSession,
    code: ErrorCode,
    message?: string,
    retryAfterMs?: number,
    reason?: RefusalReason,
  ): ReauthAck {
    // Like a refused handshake: the failed check is logged and fed to the dashboard, never sent.
    this.deps.logger.info(
      { event: 'reauth', sessionId: session.id, userId: session.userId, ok: false, code, reason, retryAfterMs },
      'reauth refused',
    );
    this.deps.observer.onReauth(session, false, code, reason);
    this.deps.observer.onAuthFailed(code, {
      transport: session.transport,
      ip: session.info.ip,
      phase: 'reauth',
      reason,
    });
    return { ok: false, code, message: message ?? ERRORS[code].message };
  }

  private onDue(session: HubSession, kind: Deadline): void {
    if (session.closed) return;
    try {
      if (kind === 'warn') this.warn(session);
      else this.deps.expire(session);
    } catch (err) {
      this.deps.logger.error({ err, sessionId: session.id, kind }, 'lifecycle deadline failed');
    }
    // Queued whatever the warning did; not if writing it closed the session (the handle was cancelled).
    if (kind === 'warn') this.scheduler.follow(session, session.principal.expiresAt, 'expire');
  }

  private warn(session: HubSession): void {
    const { expiresAt } = session.principal;
    if (session.warnedFor === expiresAt) return;
    session.warnedFor = expiresAt;
    const secondsLeft = Math.max(0, Math.ceil((expiresAt - this.deps.clock.now()) / 1000));
    try {
      session.sink.sendSystem({ kind: 'token_expiring', payload: { expiresAt, secondsLeft } });
    } catch (err) {
      this.deps.logger.warn({ err, sessionId: session.id }, 'token_expiring could not be written');
    }
    this.deps.logger.info(
      { event: 'expiry_warning', sessionId: session.id, userId: session.userId, expiresAt, secondsLeft },
      'token expiring',
    );
    this.deps.observer.onExpiryWarning(session);
  }
}

/** What a reauth on a closed session answers: the code it was closed with. */
function closedCode(session: HubSession): ErrorCode {
  return session.closeCode ?? 'AUTH_REVOKED';
}
