import type { RefusalReason } from '../auth/refusal-reason.js';
import type { AuditEventType, AuditRepository } from '../store/types.js';
import type { HubObserver } from '../hub/types.js';

/**
 * A live feed of authentication events for dashboards: the token service's audit records
 * (login, refresh, reuse, logout, revoke) and the hub's connection lifecycle (handshake failures,
 * reauth, expiry, revocation closes). Never carries secret material.
 */
export interface AuthEvent {
  type:
    | AuditEventType
    | 'connected'
    | 'handshake_failed'
    | 'reauth_ok'
    | 'reauth_failed'
    | 'expiry_warning'
    | 'expired'
    | 'revoked'
    | 'disconnected';
  userId: string | null;
  sessionId?: string;
  transport?: string;
  code?: string;
  reason?: string;
  /**
   * `handshake_failed`, `reauth_failed`: the check that refused the token (`{check:'iss', expected,
   * got}`, `{check:'exp', expiredAt, now}`…), the same object the log line's `reason` holds. For
   * operators only: clients never see it.
   */
  failure?: RefusalReason;
  at: number;
}

export type AuthEventListener = (event: AuthEvent) => void;

export class AuthEventFeed {
  private readonly listeners = new Set<AuthEventListener>();

  /** Subscribes; returns the function that unsubscribes. */
  on(listener: AuthEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: AuthEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A dashboard's listener must not break authentication.
      }
    }
  }

  /** The audit repository, teeing every record into the feed. */
  wrapAudit(audit: AuditRepository, now: () => number): AuditRepository {
    return {
      record: async (event) => {
        await audit.record(event);
        this.emit({ type: event.type, userId: event.userId, at: event.at ?? now() });
      },
      list: (options) => audit.list(options),
      purge: (beforeMs) => audit.purge(beforeMs),
    };
  }

  /** A hub observer that feeds connection lifecycle events. */
  observer(now: () => number): HubObserver {
    return {
      onSessionOpened: (s) =>
        this.emit({ type: 'connected', userId: s.userId, sessionId: s.id, transport: s.transport, at: now() }),
      onSessionClosed: (s, reason, code) =>
        this.emit({
          type: reason === 'expired' ? 'expired' : reason === 'revoked' ? 'revoked' : 'disconnected',
          userId: s.userId,
          sessionId: s.id,
          transport: s.transport,
          reason,
          ...(code === null ? {} : { code }),
          at: now(),
        }),
      onAuthFailed: (code, info) =>
        this.emit({
          type: 'handshake_failed',
          userId: null,
          transport: info.transport,
          code,
          reason: info.phase,
          ...(info.reason === undefined ? {} : { failure: info.reason }),
          at: now(),
        }),
      onReauth: (s, ok, code, reason) =>
        this.emit({
          type: ok ? 'reauth_ok' : 'reauth_failed',
          userId: s.userId,
          sessionId: s.id,
          ...(code === undefined ? {} : { code }),
          ...(reason === undefined ? {} : { failure: reason }),
          at: now(),
        }),
      onExpiryWarning: (s) => this.emit({ type: 'expiry_warning', userId: s.userId, sessionId: s.id, at: now() }),
    };
  }
}
