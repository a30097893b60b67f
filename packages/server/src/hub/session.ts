import { grantCovers, type ErrorCode, type SessionCreatedPayload } from '@tether/protocol';
import type { Principal } from '../auth/types.js';
import { StreamLayout, readScopes } from '../history/streams.js';
import { SessionCursors } from './cursors.js';
import type { TokenBucket } from '../util/rate-limit.js';
import type { Deadlines } from './scheduler.js';
import type { ConnectionInfo, ConnectionSink, OutboundEvent, PresenceEntry, Session, TransportKind } from './types.js';

const NO_CHANNELS: ReadonlySet<string> = new Set();
/** Where every session's reauth chain starts: one settled promise for all, not one per connection. */
const SETTLED: Promise<unknown> = Promise.resolve();

/**
 * The hub's own record of a connection. Transports hold it as a read-only `Session`; every
 * mutation goes through the hub so the indexes never disagree with it.
 */
export class HubSession implements Session, Deadlines<HubSession> {
  /** Its own handle in the lifecycle scheduler (see `Deadlines`): no handle object per connection. */
  generation = 0;
  pending = 0;
  /** Joined channels; undefined while none (most connections: an empty Set costs ~180 bytes each). */
  private joined: Set<string> | undefined;
  /** Made at the first reauth: most idle connections never need one. */
  private bucket: TokenBucket | undefined;
  closed = false;
  /** The code the hub closed the session with (null: closed by the transport or without a code). */
  closeCode: ErrorCode | null = null;
  /** Last publish this session was written for: de-duplication without a Set per publish. */
  stamp = 0;
  /** `expiresAt` of the token `token_expiring` was last sent for: once per token. */
  warnedFor = -1;
  /** Reauths run one after the other, in the order the client sent them. */
  reauthChain: Promise<unknown> = SETTLED;
  /** Live events held while the replay of a resume is read; undefined once live. */
  replayBuffer: OutboundEvent[] | undefined;
  /**
   * The last heartbeat round trip measured, in whole µs (0: none yet): a small integer, where a
   * fraction of a ms would be a boxed number on every connection.
   */
  private rttUs = 0;
  /** Where the connection stands in each stream it reads (with an event log). */
  readonly cursors: SessionCursors;
  /**
   * The scopes the connection narrowed to (each inside a grant when set), or undefined for all its
   * grants. A grant change drops what the new grants no longer cover; it never adds.
   */
  narrow: readonly string[] | undefined;
  /** The scopes indexed and read: the grants, or the narrowed set inside them, minus covered ones. */
  scopeReads: readonly string[] = [];

  constructor(
    readonly id: string,
    public principal: Principal,
    readonly sink: ConnectionSink,
    readonly info: ConnectionInfo,
    readonly connectedAt: number,
    /** Makes the connection's reauth rate bucket (one function shared by every session of a hub). */
    private readonly newReauthBucket: () => TokenBucket,
    /** How the event log lays out scope streams (which streams a scope read means). */
    readonly layout: StreamLayout = StreamLayout.SINGLE,
  ) {
    this.cursors = new SessionCursors(layout);
    this.scopeReads = readScopes(principal.scopes);
  }

  /** The last heartbeat round trip measured, in ms (0: none yet). */
  get rttMs(): number {
    return this.rttUs / 1000;
  }

  set rttMs(ms: number) {
    this.rttUs = Math.min(Math.max(Math.round(ms * 1000), 1), 2 ** 31 - 1) | 0;
  }

  /** As a scheduler handle, the session is its own target. */
  get target(): HubSession {
    return this;
  }

  /** Read from the sink rather than kept: a field costs 8 bytes per connection. */
  get transport(): TransportKind {
    return this.sink.transport;
  }

  get channels(): ReadonlySet<string> {
    return this.joined ?? NO_CHANNELS;
  }

  /** Only the indexes call these three (they keep `byChannel` in step). */
  joinChannel(channel: string): void {
    (this.joined ??= new Set()).add(channel);
  }

  leaveChannel(channel: string): void {
    this.joined?.delete(channel);
    if (this.joined?.size === 0) this.joined = undefined;
  }

  clearChannels(): void {
    this.joined = undefined;
  }

  get reauthBucket(): TokenBucket {
    return (this.bucket ??= this.newReauthBucket());
  }

  get userId(): string {
    return this.principal.userId;
  }

  get isGuest(): boolean {
    return this.principal.isGuest;
  }

  /**
   * Takes a principal granting exactly what the current one does (`SessionIndexes.renewPrincipal`
   * checks): the scopes read stay; when they were the grants array itself, they become the new
   * one's, so the connection does not hold both.
   */
  renew(principal: Principal): void {
    if (this.scopeReads === this.principal.scopes) this.scopeReads = principal.scopes;
    this.principal = principal;
  }

  /** Sets the narrowing (undefined: none), keeping only scopes some grant covers. */
  setNarrow(scopes: readonly string[] | undefined): void {
    this.narrow = scopes === undefined ? undefined : this.covered(scopes);
    this.scopeReads = readScopes(this.narrow ?? this.principal.scopes);
  }

  /** Recomputes `scopeReads` after the grants changed (the indexes call this). */
  refreshScopeReads(): void {
    this.setNarrow(this.narrow);
  }

  private covered(scopes: readonly string[]): string[] {
    const grants = this.principal.scopes;
    return scopes.filter((scope) => grants.some((grant) => grantCovers(grant, scope)));
  }

  /** The streams this connection reads: its user's, those of each scope read, one per joined channel. */
  streamNames(): string[] {
    return this.layout.streamsRead(this.userId, this.scopeReads, this.channels);
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
      ...(this.narrow === undefined ? {} : { narrow: [...this.narrow] }),
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
      ...(this.rttMs === 0 ? {} : { rttMs: this.rttMs }),
    };
  }
}
