import { TetherError, type SendAck } from '@tether/protocol';
import type { Platform, TimerHandle } from './platform.js';
import type { Transport } from './transports/types.js';

/** Pause before a send whose acknowledgement was lost goes again. */
const RETRY_DELAY_MS = 500;

export interface OutboxOptions {
  platform: Platform;
  /** Sends held at most; one more rejects. */
  bufferSize: number;
  /** A send not acknowledged this long after `send()` rejects. */
  ttlMs: number;
}

interface Outgoing {
  event: string;
  data: unknown;
  key: string;
  resolve(ack: SendAck): void;
  reject(error: TetherError): void;
  timer: TimerHandle;
  done: boolean;
}

/**
 * Client → server sends, in order, one on the wire at a time (so the app's handler sees them in
 * the order they were made). Each send gets an idempotency key once; every retry carries it, so a
 * send whose acknowledgement was lost is applied once however often it is retried.
 *
 *   send() ─► queue ─(open, not reauthenticating)─► transport.send{key} ─ack─► resolve, next
 *                                                    └─no ack / socket gone─► stays first, resent (same key)
 *   expired (ttlMs) or queue full ─► reject
 */
export class Outbox {
  private readonly queue: Outgoing[] = [];
  private transport: Transport | null = null;
  private paused = false;
  private busy = false;
  private retryTimer: TimerHandle | undefined;
  /** Set by `shut`: why every send now fails at once. */
  private shutReason: string | undefined;

  constructor(private readonly o: OutboxOptions) {}

  get size(): number {
    return this.queue.length;
  }

  send(event: string, data: unknown): Promise<SendAck> {
    if (this.shutReason !== undefined) {
      return Promise.reject(new TetherError('SEND_FAILED', `${this.shutReason}; "${event}" was not sent`));
    }
    if (this.queue.length >= this.o.bufferSize) {
      return Promise.reject(
        new TetherError(
          'SEND_FAILED',
          `Send buffer full (${this.o.bufferSize} sends waiting); "${event}" was not sent`,
        ),
      );
    }
    return new Promise<SendAck>((resolve, reject) => {
      const item: Outgoing = {
        event,
        data,
        key: newKey(this.o.platform),
        resolve,
        reject,
        timer: undefined as unknown as TimerHandle,
        done: false,
      };
      item.timer = this.o.platform.setTimeout(() => {
        this.settle(item, () =>
          reject(new TetherError('SEND_FAILED', `Send "${event}" expired: not acknowledged within ${this.o.ttlMs} ms`)),
        );
      }, this.o.ttlMs);
      this.queue.push(item);
      this.pump();
    });
  }

  /** The session is live on `transport` (null: gone). */
  setTransport(transport: Transport | null): void {
    this.transport = transport;
    this.pump();
  }

  /** Holds sends while an in-place reauth is on the wire. */
  setPaused(paused: boolean): void {
    this.paused = paused;
    this.pump();
  }

  /** Rejects every waiting send and every later one (dispose: the client is not usable afterwards). */
  shut(reason: string): void {
    this.shutReason = reason;
    this.clear(`${reason} before the send was acknowledged`);
  }

  /** Rejects every waiting send (logout, dispose). */
  clear(reason: string): void {
    if (this.retryTimer !== undefined) this.o.platform.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.busy = false;
    for (const item of this.queue.splice(0))
      this.settle(item, () => item.reject(new TetherError('SEND_FAILED', reason)));
  }

  private settle(item: Outgoing, finish: () => void): void {
    if (item.done) return;
    item.done = true;
    this.o.platform.clearTimeout(item.timer);
    const index = this.queue.indexOf(item);
    if (index >= 0) this.queue.splice(index, 1);
    finish();
    this.pump();
  }

  private pump(): void {
    if (this.busy || this.paused) return;
    const transport = this.transport;
    const item = this.queue[0];
    if (transport === null || item === undefined) return;
    this.busy = true;
    transport.send({ event: item.event, data: item.data, key: item.key }).then(
      (ack) => {
        this.busy = false;
        this.settle(item, () => item.resolve(ack));
      },
      () => {
        // Lost: no answer in time, or the socket went away. It stays first and goes again with
        // the same key, after a pause (a dead socket fails at once; no busy loop), on whichever
        // transport is live then — this one, or the next session's.
        this.retryTimer = this.o.platform.setTimeout(() => {
          this.retryTimer = undefined;
          this.busy = false;
          this.pump();
        }, RETRY_DELAY_MS);
      },
    );
  }
}

function newKey(platform: Platform): string {
  const uuid = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto?.randomUUID?.();
  if (uuid !== undefined) return uuid;
  let out = '';
  for (let i = 0; i < 32; i++) out += Math.floor(platform.random() * 16).toString(16);
  return out;
}
