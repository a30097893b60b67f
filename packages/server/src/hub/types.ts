import type {
  ErrorBody,
  ErrorCode,
  NarrowAck,
  PublishBatchItem,
  PublishRequest,
  PublishResult,
  ReauthAck,
  ResumeRequest,
  ServerShutdownPayload,
  SessionCreatedPayload,
  SubscribeAck,
  TokenExpiringPayload,
} from '@tether/protocol';
import type { RefusalReason } from '../auth/refusal-reason.js';
import type { Principal } from '../auth/types.js';
import { writeAscii } from '../history/streams.js';
import type { Cursor } from '../history/types.js';

export type TransportKind = 'socket.io' | 'ws';

/** An application event ready to write. Transports cache their encoding on it: one encode per publish. */
export interface OutboundEvent {
  readonly id: string;
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
  /** When the publish entered the hub (`performance.now()`), for the publish→send histogram. */
  readonly publishedAt: number;
  /** Per-transport encodings, filled lazily by the first connection of each transport (`/ws`: the finished frame without a position). */
  readonly encoded: { ws?: Buffer; sio?: unknown };
  /** The event's cursor in each stream of the log it went to; absent when no log is kept. */
  readonly cursors?: ReadonlyMap<string, Cursor>;
  /** The users it was addressed to by id (`to.users`), for the delivery record. */
  readonly users?: readonly string[];
  /** `users` as a set, made by the delivery record the first time a long list is asked. */
  userSet?: ReadonlySet<string>;
}

/** How an event reached a connection, in the delivery record. */
export type DeliveryPath = 'live' | 'recovery';

/**
 * The delivery record's view from the hub (`receipts/recorder.ts`): told of each event written to a
 * connection and of each receipt a connection sends. Both are called on the hot path: they only
 * buffer, and decide cheaply (by `event.users`) whether the event is recorded at all.
 */
export interface DeliveryTracker {
  sent(session: Session, event: OutboundEvent, path: DeliveryPath): void;
  receipt(session: Session, ids: readonly string[]): void;
}

/**
 * A validated publish, as it travels between nodes: plain JSON, so a cluster broker can ship it
 * and call `deliverLocal` with it on every node. Target lists are normalized (scopes) and present.
 */
export interface PublishEnvelope {
  id: string;
  event: string;
  data: Record<string, unknown>;
  to: { users: string[]; scopes: string[]; channels: string[] };
}

/** System messages the hub asks a transport to send. */
export type SystemMessage =
  | { kind: 'session_created'; payload: SessionCreatedPayload }
  | { kind: 'token_expiring'; payload: TokenExpiringPayload }
  | { kind: 'auth_error'; payload: ErrorBody }
  | { kind: 'server_shutdown'; payload: ServerShutdownPayload }
  | { kind: 'error'; payload: ErrorBody };

/**
 * A connection's position (docs/PROTOCOL.md "Streams, cursors and positions"), as a string or
 * written straight into a frame's bytes (one byte per character).
 */
export interface PositionSource {
  position(): string;
  /** The length of `position()`. */
  positionLength(): number;
  /** Writes `position()` into `into` at `at`; returns where it ends. */
  writePosition(into: Uint8Array, at: number): number;
}

/** A position already made (a queued event keeps the one it was sent with). */
export function fixedPosition(position: string): PositionSource {
  return {
    position: () => position,
    positionLength: () => position.length,
    writePosition: (into, at) => writeAscii(into, at, position),
  };
}

/**
 * What a transport gives the hub for one connection. The hub never sees Socket.IO or `ws` types.
 */
export interface ConnectionSink {
  readonly transport: TransportKind;
  /**
   * Writes an application event. `position` is this connection's position after it (each
   * recipient has its own: it covers the streams that connection reads); absent without a log. It
   * is read during the call only (the connection's cursors move on with its next event).
   */
  sendEvent(event: OutboundEvent, position?: PositionSource): void;
  sendSystem(message: SystemMessage): void;
  /**
   * Ends the connection. When `code` is an auth code, the transport has already been asked to
   * send `auth_error` via sendSystem; close just closes (ws: close code from the registry).
   */
  close(code: ErrorCode | null, reason: string): void;
}

export interface ConnectionInfo {
  ip: string;
  userAgent: string | undefined;
  /** Which token source the handshake used (for logs and presence). */
  tokenSource: TokenSource;
}

export type TokenSource = 'auth' | 'header' | 'cookie' | 'query' | 'subprotocol' | 'frame';

/** A live, authenticated connection. Read-only outside the hub. */
export interface Session {
  readonly id: string;
  readonly userId: string;
  readonly isGuest: boolean;
  readonly transport: TransportKind;
  readonly connectedAt: number;
  readonly info: ConnectionInfo;
  /** The current principal (replaced on reauth). */
  readonly principal: Principal;
  readonly channels: ReadonlySet<string>;
  /** The scopes it receives: its grants, or the narrowed set inside them, without covered ones. */
  readonly scopeReads: readonly string[];
  readonly closed: boolean;
  /** Its presence entry, as listed for `node`. */
  presence(node: string): PresenceEntry;
}

export interface PresenceEntry {
  sessionId: string;
  userId: string;
  transport: TransportKind;
  connectedAt: number;
  expiresAt: number;
  ip: string;
  userAgent: string | undefined;
  isGuest: boolean;
  node: string;
  /** The last heartbeat round trip measured on it, in ms (absent until one is). */
  rttMs?: number;
}

/** Why a session ended (logs, metrics, dashboard). */
export type CloseReason =
  | 'client'
  | 'expired'
  | 'revoked'
  | 'heartbeat'
  | 'rate_limited'
  | 'shutdown'
  | 'transport_error'
  | 'replaced'
  | 'replay_overflow'
  | 'stream_reset';

/** Lifecycle notifications (logs, metrics, admin dashboard). All optional. */
export interface HubObserver {
  onSessionOpened?(session: Session): void;
  /** `message`: what the client was told when the hub closed it (a revocation's why). */
  onSessionClosed?(session: Session, reason: CloseReason, code: ErrorCode | null, message?: string): void;
  /** `reason`: the check that failed (operators and dashboards only; never sent to the client). */
  onAuthFailed?(
    code: ErrorCode,
    info: { transport: TransportKind; ip: string; phase: 'handshake' | 'reauth'; reason?: RefusalReason },
  ): void;
  onReauth?(session: Session, ok: boolean, code?: ErrorCode, reason?: RefusalReason): void;
  onExpiryWarning?(session: Session): void;
  /** A heartbeat answer came back `ms` after its ping. */
  onHeartbeat?(session: Session, ms: number): void;
  onPublish?(result: PublishResult, event: string): void;
  /** Called once per publish with the count of local writes and the time spent routing+writing. */
  onDelivered?(count: number, publishToSendMs: number): void;
}

/**
 * Follows what each local connection reads (its user, scopes read, channels). The hub calls it
 * directly when a connection opens, changes what it reads (channels, grants, narrowing) or closes —
 * not through the observer, whose errors are logged and swallowed: cluster mode subscribes to those
 * streams, and delivery depends on it.
 */
export interface StreamFollower {
  follow(session: Session): void;
  unfollow(session: Session): void;
}

/** A change to live connections that every node must make for the user or family (cluster mode). */
export type HubAction =
  /** `message`: what the closed connections are told (default: the code's registry message). */
  | { t: 'disconnect'; userId: string; code: ErrorCode; message?: string }
  | { t: 'family'; familyId: string; message?: string }
  | { t: 'grants'; userId: string; scopes?: string[]; channels?: string[] };

/**
 * The other nodes, as a hub sees them (cluster mode: `broker/cluster-broker.ts`); absent on a single
 * node. The hub applies every change locally first, then hands it to the broker; the broker hands
 * what other nodes did back through `LocalHub.apply`, `deliverLocal` and `deliverCopy`.
 */
export interface HubBroker {
  /**
   * The cluster-wide half of admission, after the local checks: the per-user cap counts connections
   * on every live node, and the user's and grants' streams are subscribed before the handshake
   * completes, so no event published after `session_created` is missed.
   */
  admit(principal: Principal): Promise<void>;
  /**
   * Appends a validated event to the shared log and fans it out to every node, this one included
   * (each writes it to its own connections). Resolves with how many of this node's connections it
   * was written to. Throws TetherError(PUBLISH_FAILED) when it could not be appended.
   */
  publish(envelope: PublishEnvelope): Promise<number>;
  /** Has every other node apply `action` to its connections. */
  broadcast(action: HubAction): void;
  /** Resolves once events published to `channel` from now on reach this node. */
  channelReady(channel: string): Promise<void>;
}

/**
 * Publishes accepted and not yet delivered on this node: events whose frames are about to be
 * written. Transports hold their writes while there are some (see `WriteCoalescer`), so the frames
 * of publishes that arrive together leave a socket together.
 */
export interface PublishBacklog {
  /** Whether some publish is between acceptance and delivery. */
  readonly busy: boolean;
  /**
   * Calls `listener` each time the last pending publish is delivered (or fails). `bursting`: the
   * last publishes came close together, so more are likely on their way.
   */
  onIdle(listener: (bursting: boolean) => void): void;
}

/** The transport-independent core. Implementation: `hub/hub.ts`. */
export interface Hub {
  readonly nodeId: string;
  /** Publishes on their way to this node's connections (see `PublishBacklog`). */
  readonly backlog: PublishBacklog;
  /**
   * Pre-check for a handshake, before the transport accepts the connection: throws
   * TetherError(CONNECTION_LIMIT | AUTH_EXPIRED | SERVER_SHUTDOWN) when `register` would refuse.
   * `register` checks again (another connection may have arrived in between).
   * In cluster mode it returns a promise (the cap counts connections on every node, and the
   * user's channels are subscribed before the handshake completes): transports await it.
   */
  admit(principal: Principal): void | Promise<void>;
  /**
   * Registers an authenticated connection; sends `session_created`. With an event log, `resume`
   * (the client's last position and channels) makes it replay what the client missed first.
   * Throws TetherError(CONNECTION_LIMIT | AUTH_EXPIRED | SERVER_SHUTDOWN) as `admit` does.
   */
  register(principal: Principal, sink: ConnectionSink, info: ConnectionInfo, resume?: ResumeRequest): Session;
  /** Verifies like a handshake, same subject required, rate-limited; replaces grants at once. */
  reauth(session: Session, token: string): Promise<ReauthAck>;
  subscribe(session: Session, channel: string): SubscribeAck;
  /**
   * Narrows the scopes the connection receives to `scopes` (each inside a grant; others are
   * dropped), or undoes it with null; live and in later recovery. Never widens past the grants.
   */
  narrow(session: Session, scopes: unknown): NarrowAck;
  /**
   * Cluster mode: resolves once events published to `channel` from now on reach this node (its
   * Redis subscription is confirmed). Transports await it before acknowledging a subscribe, so an
   * event published after the acknowledgement is never missed. Absent on a single node.
   */
  channelReady?(channel: string): Promise<void>;
  unsubscribe(session: Session, channel: string): SubscribeAck;
  /**
   * Delivery receipts from the connection: the ids of events that reached the app's code. Throws
   * TetherError(VALIDATION_FAILED) for anything but 1–MAX_RECEIPT_IDS ids of at most 128 characters.
   */
  receipt(session: Session, ids: unknown): void;
  /** The transport measured a heartbeat round trip (ms). */
  heartbeat(session: Session, ms: number): void;
  /** The transport reports the connection is gone (client closed, heartbeat, error). */
  unregister(session: Session, reason: CloseReason): void;
  /** Routes to local sessions (and, in cluster mode, via the broker). */
  publish(request: PublishRequest): Promise<PublishResult>;
  /**
   * Many events in order, each with its own answer. Throws VALIDATION_FAILED (naming the event's
   * index) before publishing any if one is invalid; a failure after that is that event's answer.
   */
  publishBatch(requests: readonly PublishRequest[]): Promise<PublishBatchItem[]>;
  /** Closes every live connection of the user with AUTH_REVOKED. Returns how many. */
  disconnectUser(userId: string, code?: ErrorCode, message?: string): number;
  /** Closes the connections whose token belongs to the refresh family. */
  revokeFamily(familyId: string, message?: string): number;
  /** New grants for a user's live connections (PATCH /v1/users). */
  updateGrants(userId: string, grants: { scopes?: string[]; channels?: string[] }): number;
  presence(userId: string): PresenceEntry[];
  /** Live connections on this node whose token belongs to the refresh family (one login's devices). */
  openInFamily(familyId: string): number;
  /** Every live connection on this node (admin dashboards). */
  listSessions(): PresenceEntry[];
  stats(): { sessions: number; users: number; byTransport: Record<TransportKind, number>; guests: number };
  /** Tells every client to reconnect (jittered within graceMs), then closes them. */
  shutdown(graceMs: number): Promise<void>;
}
