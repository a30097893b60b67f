import type { IncomingMessage } from 'node:http';
import { TetherError, type ErrorCode } from '@tether/protocol';
import { reasonOf } from '../auth/refusal-reason.js';
import type { Principal } from '../auth/types.js';
import type { CloseReason, Session, TransportKind } from '../hub/types.js';
import { LocalRateLimiter, type RateLimiter } from '../util/rate-limit.js';
import { checkOrigin, type OriginVerdict } from './origin.js';
import type { FoundToken } from './token-extract.js';
import type { TransportDeps } from './types.js';

/**
 * The checks every handshake goes through, whatever the transport: per-IP connect rate, Origin
 * policy, token verification. Failures are `TetherError`s the transport turns into its coded
 * refusal; each one is logged once at info (code and the failed check's `RefusalReason`, never the
 * token) and reported to the observer with the same reason. One line per refused attempt, bounded
 * by the per-IP connect rate taken before it, so a flood of bad tokens is capped like any flood.
 */
export class HandshakeGate {
  private readonly limiter: RateLimiter;

  constructor(
    private readonly deps: TransportDeps,
    private readonly transport: TransportKind,
  ) {
    const rate = deps.config.connectRatePerIp;
    this.limiter = deps.connectLimiter ?? new LocalRateLimiter({ capacity: rate, perSecond: rate }, deps.clock);
  }

  /**
   * Takes one of `ip`'s connect tokens (`CONNECT_RATE_PER_IP`, shared by both transports): the only
   * place the connect limiter is called. Rejects with RATE_LIMITED and the wait. Asynchronous (the
   * cluster's limiter asks Redis), so each transport takes it before it reads anything from the client.
   */
  async takeConnect(ip: string): Promise<void> {
    const wait = await this.limiter.take(ip);
    if (wait > 0) throw new TetherError('RATE_LIMITED', undefined, { retryAfterMs: wait });
  }

  /** The Origin policy alone. Throws ORIGIN_FORBIDDEN. */
  checkOrigin(req: IncomingMessage): OriginVerdict {
    const { allowedOrigins, publicHosts } = this.deps.config;
    return checkOrigin(req.headers, { allowed: allowedOrigins, publicHosts });
  }

  /**
   * Verifies the token found (AUTH_REQUIRED when none) and admits the principal. Throws the
   * authenticator's TetherError, or CONNECTION_LIMIT / SERVER_SHUTDOWN from the hub.
   */
  async verify(found: FoundToken | undefined, ip: string): Promise<Principal> {
    if (found === undefined) throw new TetherError('AUTH_REQUIRED');
    if (found.source === 'query') {
      // Query strings end up in proxy and access logs; allowed only by configuration, and flagged.
      this.deps.logger.warn(
        { transport: this.transport, ip },
        'access token passed in the URL query (ALLOW_QUERY_TOKEN)',
      );
    }
    const principal = await this.deps.authenticator.authenticate(found.token);
    // Admission before the transport accepts: the per-user cap (cluster-wide in cluster mode, where
    // the user's channels are also subscribed before session_created) and shutdown.
    await this.deps.hub.admit(principal);
    return principal;
  }

  /** Logs and reports a refused handshake. Returns the error as a TetherError. */
  refused(err: unknown, ip: string): TetherError {
    const error = asTetherError(err);
    if (error.code === 'INTERNAL')
      this.deps.logger.error({ transport: this.transport, ip, err }, 'handshake failed unexpectedly');
    // The check that failed, for the operator (never the token); the client gets only code and message.
    const reason = reasonOf(error);
    this.deps.logger.info({ transport: this.transport, ip, code: error.code, reason }, 'handshake refused');
    this.deps.observer?.onAuthFailed?.(error.code, { transport: this.transport, ip, phase: 'handshake', reason });
    return error;
  }

  connected(session: Session): void {
    this.deps.logger.info(
      {
        transport: this.transport,
        tokenSource: session.info.tokenSource,
        userId: session.userId,
        sessionId: session.id,
        ip: session.info.ip,
      },
      'connection opened',
    );
  }

  disconnected(session: Session, reason: CloseReason | ErrorCode): void {
    this.deps.logger.info(
      {
        transport: this.transport,
        userId: session.userId,
        sessionId: session.id,
        reason,
        durationMs: this.deps.clock.now() - session.connectedAt,
      },
      'connection closed',
    );
  }
}

/** The client's address; the first `X-Forwarded-For` hop only when the proxy is trusted. */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * Lets go of Node's cache of a socket's peer address (`_peername`, an object of 56 bytes kept for
 * the socket's life once `remoteAddress` was read), for a long-lived socket whose connection keeps
 * the address it needs. Node reads the address again if anything asks for it while the socket is
 * open; once it is closed, `remoteAddress` is undefined.
 */
export function forgetPeerAddress(socket: unknown): void {
  const cached = socket as { _peername?: unknown };
  if (cached._peername != null) cached._peername = undefined;
}

/** The close reason to log when the hub ends a connection with `code`. */
export function closeReasonForCode(code: ErrorCode | null, fallback: CloseReason): CloseReason {
  switch (code) {
    case 'AUTH_EXPIRED':
      return 'expired';
    case 'AUTH_REVOKED':
      return 'revoked';
    case 'SERVER_SHUTDOWN':
      return 'shutdown';
    case 'RATE_LIMITED':
      return 'rate_limited';
    default:
      return fallback;
  }
}

/** Anything thrown on a handshake path becomes a coded error; unknown failures are INTERNAL. */
export function asTetherError(err: unknown): TetherError {
  return err instanceof TetherError ? err : new TetherError('INTERNAL', undefined, { cause: err });
}
