import type { ErrorCode, SessionCreatedPayload } from '@tether/protocol';
import type { Principal } from '../auth/types.js';
import type { TokenBucket } from '../util/rate-limit.js';
import { DeadlineHandle } from './scheduler.js';
import type { ConnectionInfo, ConnectionSink, OutboundEvent, PresenceEntry, Session, TransportKind } from './types.js';

/**
 * The hub's own record of a connection. Transports hold it as a read-only `Session`; every
 * mutation goes through the hub so the indexes never disagree with it.
 */
export class HubSession implements Session {
  readonly transport: TransportKind;
  readonly channels = new Set<string>();
  readonly lifecycle: DeadlineHandle<HubSession>;
  closed = false;
  /** The code the hub closed the session with (null: closed by the transport or without a code). */
  closeCode: ErrorCode | null = null;
  /** Last publish this session was written for: de-duplication without a Set per publish. */
  stamp = 0;
  /** `expiresAt` of the token `token_expiring` was last sent for: once per token. */
  warnedFor = -1;
  /** Reauths run one after the other, in the order the client sent them. */
  reauthChain: Promise<unknown> = Promise.resolve();
  /** Live events held while the replay of a resume is read; undefined once live. */
  replayBuffer: OutboundEvent[] | undefined;
  /** Events of `floorEpoch` at or below `floorRank` were sent already (or predate the session). */
  floorEpoch: string | undefined;
  floorRank = -1;

  constructor(
    readonly id: string,
    public principal: Principal,
    readonly sink: ConnectionSink,
    readonly info: ConnectionInfo,
    readonly connectedAt: number,
    readonly reauthBucket: TokenBucket,
  ) {
    this.transport = sink.transport;
    this.lifecycle = new DeadlineHandle<HubSession>(this);
  }

  get userId(): string {
    return this.principal.userId;
  }

  get isGuest(): boolean {
    return this.principal.isGuest;
  }

  /** False when the event is at or below the floor: the replay sent it, or it predates the session. */
  isNew(event: OutboundEvent): boolean {
    return (
      event.epoch === undefined || event.epoch !== this.floorEpoch || !((event.rank ?? Number.NaN) <= this.floorRank)
    );
  }

  createdPayload(
    timestamp: number,
    recovery?: { recovered: boolean; position: string | undefined },
  ): SessionCreatedPayload {
    return {
      ...recovery,
      sessionId: this.id,
      userId: this.userId,
      isGuest: this.isGuest,
      expiresAt: this.principal.expiresAt,
      timestamp,
      scopes: [...this.principal.scopes],
      channels: [...this.principal.channels],
    };
  }

  presence(node: string): PresenceEntry {
    return {
      sessionId: this.id,
      userId: this.userId,
      transport: this.transport,
      connectedAt: this.connectedAt,
      expiresAt: this.principal.expiresAt,
      ip: this.info.ip,
      userAgent: this.info.userAgent,
      isGuest: this.isGuest,
      node,
    };
  }
}
