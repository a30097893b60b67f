import type { IncomingMessage } from 'node:http';
import type { TetherError } from '@tether/protocol';
import { asTetherError, clientIp, type HandshakeGate } from './handshake.js';

/** Over-rate engine.io sessions one address may hold while they wait to be refused in-band. */
export const MAX_OVER_RATE_PENDING = 8;

/** What the engine.io handshake decided for the Socket.IO connect that follows it. */
interface Ticket {
  /** The handshake paid the connect token; the session's first namespace connect is covered. */
  paid: boolean;
  /** Over the rate: the namespace connect is refused with this (a coded `connect_error`). */
  refusal?: TetherError;
}

/**
 * The per-IP connect rate at engine.io's door. A Socket.IO session starts with an engine.io
 * handshake (a polling `GET` or a websocket upgrade, no `sid`) and only later sends its namespace
 * CONNECT, which the handshake middleware checks. Counting only CONNECTs let any number of engine.io
 * sessions open without ever being counted; so the handshake itself takes the connect token
 * (`allowRequest`, which engine.io calls for new sessions of every transport, never for their
 * later requests):
 *
 *   GET /socket.io/?EIO=4 (no sid) ──▶ allowRequest ── within the rate ─────────▶ session; its first CONNECT is paid
 *                                          ├── over, < MAX_OVER_RATE_PENDING ────▶ session; its CONNECT gets connect_error RATE_LIMITED
 *                                          └── over, more waiting already ───────▶ 403 {code:4, message:"RATE_LIMITED"} (400 on an upgrade)
 *
 * An honest client over the rate thus still reads a coded refusal with `retryAfterMs` (the
 * contract's `connect_error`), while a flood gets engine.io's own refusal, which its clients report
 * as a transport error and retry with backoff. Every session that has not connected is dropped
 * after the auth timeout (socket.io's `connectTimeout`), and a CONNECT repeated on one session
 * pays again, so neither lingering nor reusing a session gets around the rate.
 */
export class EngineAdmission {
  /** Keyed by the handshake request, which engine.io keeps as the session's `request`. */
  private readonly tickets = new WeakMap<IncomingMessage, Ticket>();
  private readonly overRatePending = new Map<string, number>();

  constructor(
    private readonly gate: HandshakeGate,
    private readonly trustProxy: boolean,
  ) {}

  /** engine.io's `allowRequest` option (it may answer later: the cluster's connect limiter asks Redis). */
  readonly allowRequest = (req: IncomingMessage, answer: (message: string | null, success: boolean) => void): void => {
    const ip = clientIp(req, this.trustProxy);
    this.gate.takeConnect(ip).then(
      () => this.decide(req, ip, undefined, answer),
      (err: unknown) => this.decide(req, ip, asTetherError(err), answer),
    );
  };

  private decide(
    req: IncomingMessage,
    ip: string,
    refusal: TetherError | undefined,
    answer: (message: string | null, success: boolean) => void,
  ): void {
    if (refusal === undefined) {
      this.tickets.set(req, { paid: true });
      answer(null, true);
    } else if ((this.overRatePending.get(ip) ?? 0) < MAX_OVER_RATE_PENDING) {
      this.tickets.set(req, { paid: false, refusal });
      answer(null, true);
    } else {
      answer(this.gate.refused(refusal, ip).code, false);
    }
  }

  /** engine.io's `connection` event: counts the over-rate sessions of an address until they end. */
  readonly onConnection = (conn: {
    request: IncomingMessage;
    once(event: 'close', listener: () => void): unknown;
  }): void => {
    if (this.tickets.get(conn.request)?.refusal === undefined) return;
    const ip = clientIp(conn.request, this.trustProxy);
    this.overRatePending.set(ip, (this.overRatePending.get(ip) ?? 0) + 1);
    conn.once('close', () => {
      const left = (this.overRatePending.get(ip) ?? 1) - 1;
      if (left > 0) this.overRatePending.set(ip, left);
      else this.overRatePending.delete(ip);
    });
  };

  /**
   * The rate check for a namespace CONNECT on the session opened by `req`: the handshake's answer
   * for the first one, a fresh token for any later one. Rejects with RATE_LIMITED.
   */
  async admitConnect(req: IncomingMessage, ip: string): Promise<void> {
    const ticket = this.tickets.get(req);
    if (ticket?.refusal !== undefined) throw ticket.refusal;
    if (ticket?.paid === true) {
      // Spent: forgetting it frees the entry, which would otherwise live as long as the session
      // (engine.io keeps `req`); a later CONNECT finds no ticket and pays, as an unpaid one would.
      this.tickets.delete(req);
      return;
    }
    await this.gate.takeConnect(ip);
  }
}
