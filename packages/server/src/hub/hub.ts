import {
  AUTH_MESSAGES,
  ERRORS,
  MAX_RECEIPT_IDS,
  TetherError,
  type ErrorCode,
  type NarrowAck,
  type PublishBatchItem,
  type PublishRequest,
  type PublishResult,
  type ResumeRequest,
  type SubscribeAck,
} from '@tether/protocol';
import { principalWith } from '../auth/claims.js';
import type { Authenticator, Principal } from '../auth/types.js';
import type { Config } from '../config/index.js';
import { StreamLayout } from '../history/streams.js';
import { startsEarlier, type Cursor, type EventLog } from '../history/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { TokenBucket } from '../util/rate-limit.js';
import { channelAllowed, isValidChannelName } from './channels.js';
import { PendingPublishes } from './backlog.js';
import { CopyDelivery } from './copies.js';
import { adoptGrants, SessionIndexes } from './indexes.js';
import { readNarrow } from './narrow.js';
import { TokenLifecycle } from './lifecycle.js';
import { guardObserver } from './observer.js';
import { generateId, MAX_PUBLISH_ID_LENGTH, route, validateBatch, validatePublish } from './publish.js';
import { outboundFor, recover, type RecoveryDeps } from './recovery.js';
import type { SchedulerStats } from './scheduler.js';
import { HubSession } from './session.js';
import type {
  CloseReason,
  ConnectionInfo,
  ConnectionSink,
  DeliveryTracker,
  Hub,
  HubAction,
  HubBroker,
  HubObserver,
  OutboundEvent,
  PublishEnvelope,
  Session,
  StreamFollower,
  SystemMessage,
} from './types.js';

/** A connection may join this many channels at most (memory bound per connection). */
export const MAX_CHANNELS_PER_SESSION = 1000;
/** Live events held for one connection while its replay is read; past this it is told to resume again. */
export const MAX_REPLAY_BUFFER = 10_000;

export interface HubDeps {
  config: Config;
  authenticator: Authenticator;
  clock: Clock;
  logger: Logger;
  observer?: HubObserver;
  /** This node's id in presence answers (default: a random id). */
  nodeId?: string;
  /** Randomness for shutdown jitter, in [0, 1) (default: Math.random). */
  random?: () => number;
  /**
   * The event log behind recovery. Every publish is appended before it is delivered and carries
   * its position; handshakes presenting a position get what they missed. Absent: no positions.
   */
  log?: EventLog;
  /** Told what each connection reads, whenever that changes (cluster mode: the node's subscriptions). */
  follower?: StreamFollower;
  /**
   * The other nodes (cluster mode): publishes go through it to every node, admissions count every
   * node's connections, and disconnects and grant changes reach every node. Absent: this node alone.
   */
  broker?: HubBroker;
  /** The delivery record: told of each event written and each receipt (absent: none kept). */
  deliveries?: DeliveryTracker;
}

/** The hub as this node sees it: the `Hub` interface plus what a cluster broker and metrics need. */
export interface LocalHub extends Hub {
  /**
   * Writes an already validated publish to this node's matching sessions; returns how many.
   * A cluster broker calls this on every node with the envelope `publish` produced, and the
   * event's cursors in the shared log's streams.
   */
  deliverLocal(envelope: PublishEnvelope, publishedAt?: number, cursors?: ReadonlyMap<string, Cursor>): number;
  /**
   * Writes one stream's copy of an event (Redis Cluster: each stream's shard publishes its own,
   * with that stream's cursor) to the local connections reading that stream; returns how many.
   */
  deliverCopy(envelope: PublishEnvelope, stream: string, cursor: Cursor, publishedAt?: number): number;
  /**
   * Closes, with STREAM_RESET, every local connection reading one of `streams`: events of theirs
   * may have been lost (a catch-up could not prove the node missed nothing). Each resumes from its
   * last position and is told what cannot be recovered. Returns how many were closed.
   */
  resetStreams(streams: readonly string[]): number;
  /**
   * Where this node's connections stand: for each stream one of them reads, the earliest known
   * cursor (in the epoch first met; a connection in another epoch is reset by the catch-up anyway).
   */
  readPoints(): Map<string, Cursor>;
  /** Applies another node's disconnect, family revocation or grant change here only; returns how many connections. */
  apply(action: HubAction): number;
  /** The lifecycle scheduler's size and timer state (one armed timer for all sessions). */
  schedulerStats(): SchedulerStats;
}

/**
 * Creates the transport-independent core: sessions, indexes, routing, token lifecycle, revocation.
 *
 * @example
 *   const hub = createHub({ config, authenticator, clock: systemClock, logger });
 *   const session = hub.register(principal, sink, { ip, userAgent, tokenSource: 'auth' });
 *   await hub.publish({ event: 'ticket_created', data: { ticketId: 't1' }, to: { scopes: ['ke/muranga'] } });
 */
export function createHub(deps: HubDeps): LocalHub {
  const { config, clock, logger, broker, deliveries } = deps;
  const nodeId = deps.nodeId ?? generateId().slice(0, 8);
  const random = deps.random ?? Math.random;
  const observer = guardObserver(deps.observer, logger);
  const indexes = new SessionIndexes();
  const backlog = new PendingPublishes();
  const lifecycle = new TokenLifecycle({
    config,
    authenticator: deps.authenticator,
    clock,
    logger,
    observer,
    indexes,
    expire: (session) => end(session, 'AUTH_EXPIRED', 'expired', true, AUTH_MESSAGES.expired),
    regranted: (session) => restream(session),
    backlog,
  });
  const reauthPerSecond = config.reauthRatePerMinute / 60;
  const newReauthBucket = (): TokenBucket => new TokenBucket(config.reauthRatePerMinute, reauthPerSecond, clock);
  let publishStamp = 0;
  let shutdown: Promise<void> | undefined;
  let onEmpty: (() => void) | undefined;

  function internal(session: Session): HubSession {
    if (!(session instanceof HubSession)) throw new TetherError('INTERNAL', 'Not a session of this hub');
    return session;
  }

  function write(session: HubSession, message: SystemMessage): void {
    try {
      session.sink.sendSystem(message);
    } catch (err) {
      logger.warn({ err, sessionId: session.id, kind: message.kind }, 'system message could not be written');
    }
  }

  /** Removes the session from every index and the scheduler. Returns false when it was already gone. */
  function detach(session: HubSession, reason: CloseReason, code: ErrorCode | null, message?: string): boolean {
    if (session.closed) return false;
    session.closed = true;
    session.closeCode = code;
    indexes.remove(session);
    lifecycle.disarm(session);
    deps.follower?.unfollow(session);
    logger.info(
      {
        event: 'disconnect',
        sessionId: session.id,
        userId: session.userId,
        transport: session.transport,
        reason,
        code,
        durationMs: clock.now() - session.connectedAt,
      },
      'session closed',
    );
    observer.onSessionClosed(session, reason, code, message);
    if (indexes.byId.size === 0) onEmpty?.();
    return true;
  }

  /** Hub-initiated close: optional `auth_error` first, then the transport closes the connection. */
  function end(
    session: HubSession,
    code: ErrorCode,
    reason: CloseReason,
    authError: boolean,
    message = ERRORS[code].message,
  ): void {
    // Detach first: a transport that reports the close synchronously then finds nothing left to do.
    if (!detach(session, reason, code, message)) return;
    if (authError) write(session, { kind: 'auth_error', payload: { code, message, timestamp: clock.now() } });
    try {
      session.sink.close(code, message);
    } catch (err) {
      logger.warn({ err, sessionId: session.id }, 'connection could not be closed');
    }
  }

  /** This node's half of admission (the broker adds the cluster's). */
  function admitHere(principal: Principal): void {
    if (shutdown !== undefined) throw new TetherError('SERVER_SHUTDOWN');
    if (principal.expiresAt <= clock.now()) throw new TetherError('AUTH_EXPIRED', AUTH_MESSAGES.expired);
    if (indexes.byUser.count(principal.userId) >= config.maxConnectionsPerUser)
      throw new TetherError('CONNECTION_LIMIT');
  }

  const layout = deps.log?.layout ?? StreamLayout.SINGLE;
  const recovery: RecoveryDeps | undefined =
    deps.log === undefined
      ? undefined
      : {
          log: deps.log,
          maxEvents: config.recoveryMaxEvents,
          logger,
          now: () => clock.now(),
          write,
          live: (session) => lifecycle.arm(session),
          reset: streamReset,
          ...(deps.deliveries === undefined ? {} : { deliveries: deps.deliveries }),
        };

  function register(principal: Principal, sink: ConnectionSink, info: ConnectionInfo, resume?: ResumeRequest): Session {
    admitHere(principal);
    const now = clock.now();
    const session = new HubSession(
      generateId(),
      principalWith(principal, adoptGrants(principal.scopes)),
      sink,
      info,
      now,
      newReauthBucket,
      layout,
    );
    if (resume?.narrow !== undefined) session.setNarrow(resume.narrow);
    indexes.add(session);
    logger.info(
      {
        event: 'connect',
        sessionId: session.id,
        userId: session.userId,
        isGuest: session.isGuest,
        transport: session.transport,
        ip: info.ip,
        tokenSource: info.tokenSource,
        expiresAt: principal.expiresAt,
        narrowed: session.narrow === undefined ? undefined : session.scopeReads.length,
      },
      'session connected',
    );
    // Joined before the cluster layer hears of the session (it follows its channels) and before the replay.
    for (const channel of resume?.channels ?? []) {
      const ack = joinChannel(session, channel);
      if (!ack.ok)
        logger.debug(
          { event: 'resume_channel_refused', sessionId: session.id, channel, code: ack.code },
          'channel not resumed',
        );
    }
    deps.follower?.follow(session);
    observer.onSessionOpened(session);
    if (recovery !== undefined) {
      session.cursors.setStreams(session.streamNames());
      void recover(recovery, session, resume?.position);
      return session;
    }
    write(session, { kind: 'session_created', payload: session.createdPayload(now) });
    // After session_created: a token already inside the warning window is warned about right away.
    lifecycle.arm(session);
    return session;
  }

  /**
   * After the streams a session reads changed (channel, grants, narrowing): the follower hears of
   * it; dropped streams are forgotten and added ones start at their heads. An event of an added stream that arrives first sets its
   * cursor itself (a head read that returns later never moves a cursor back).
   */
  function restream(session: HubSession): void {
    if (session.closed) return;
    deps.follower?.follow(session);
    if (deps.log === undefined) return;
    const added = session.cursors.setStreams(session.streamNames());
    if (added.length === 0) return;
    deps.log.heads(added).then(
      (heads) => {
        for (const [stream, head] of heads) session.cursors.place(stream, head);
      },
      (err: unknown) => logger.warn({ sessionId: session.id, err: (err as Error).message }, 'stream heads unreadable'),
    );
  }

  function refuse(code: ErrorCode, message = ERRORS[code].message): SubscribeAck {
    return { ok: false, code, message };
  }

  function subscribe(handle: Session, channel: string): SubscribeAck {
    const session = internal(handle);
    const ack = joinChannel(session, channel);
    if (ack.ok) restream(session);
    return ack;
  }

  function joinChannel(session: HubSession, channel: string): SubscribeAck {
    if (!isValidChannelName(channel))
      return refuse('VALIDATION_FAILED', 'channel must be 1–200 characters of [A-Za-z0-9_.:/-]');
    if (session.closed) return refuse(session.closeCode ?? 'AUTH_REVOKED');
    if (session.channels.has(channel)) return { ok: true, channel };
    if (!channelAllowed(session.principal.channels, channel)) return refuse('CHANNEL_FORBIDDEN');
    if (session.channels.size >= MAX_CHANNELS_PER_SESSION) {
      return refuse('VALIDATION_FAILED', `a connection may join at most ${MAX_CHANNELS_PER_SESSION} channels`);
    }
    indexes.subscribe(session, channel);
    logger.debug({ event: 'subscribe', sessionId: session.id, channel }, 'channel joined');
    return { ok: true, channel };
  }

  function unsubscribe(handle: Session, channel: string): SubscribeAck {
    const session = internal(handle);
    if (!isValidChannelName(channel))
      return refuse('VALIDATION_FAILED', 'channel must be 1–200 characters of [A-Za-z0-9_.:/-]');
    if (session.channels.has(channel)) {
      indexes.unsubscribe(session, channel);
      restream(session);
      logger.debug({ event: 'unsubscribe', sessionId: session.id, channel }, 'channel left');
    }
    return { ok: true, channel };
  }

  function narrow(handle: Session, scopes: unknown): NarrowAck {
    const session = internal(handle);
    if (session.closed) return refuse(session.closeCode ?? 'AUTH_REVOKED');
    const requested = scopes === null ? null : readNarrow(scopes);
    if (requested === undefined)
      return refuse('VALIDATION_FAILED', 'scopes must be null or an array of at most 100 scope paths');
    indexes.narrow(session, requested ?? undefined);
    restream(session);
    logger.info(
      { event: 'narrow', sessionId: session.id, scopes: session.narrow === undefined ? null : session.narrow.length },
      'scopes narrowed',
    );
    return session.narrow === undefined ? { ok: true } : { ok: true, scopes: [...session.narrow] };
  }

  const copies = new CopyDelivery(indexes, layout);

  function deliverCopy(
    envelope: PublishEnvelope,
    stream: string,
    cursor: Cursor,
    publishedAt = performance.now(),
  ): number {
    let delivered = 0;
    copies.forEachReader(envelope, stream, cursor, publishedAt, (session, event) => {
      if (writeEvent(session, event)) delivered++;
    });
    observer.onDelivered(delivered, performance.now() - publishedAt);
    return delivered;
  }

  /**
   * Writes one event to one session: held while its replay is read; skipped when it moves no
   * cursor (a second copy: the node received it twice, or a catch-up re-read it).
   */
  function writeEvent(session: HubSession, event: OutboundEvent): boolean {
    if (session.replayBuffer !== undefined) {
      if (session.replayBuffer.length < MAX_REPLAY_BUFFER) session.replayBuffer.push(event);
      else overflow(session);
      return false;
    }
    if (event.cursors !== undefined && !session.cursors.advance(event.cursors)) return false;
    if (session.cursors.historyLost) {
      streamReset(session);
      return false;
    }
    try {
      session.sink.sendEvent(event, event.cursors === undefined ? undefined : session.cursors);
      deliveries?.sent(session, event, 'live');
      return true;
    } catch (err) {
      logger.warn({ err, sessionId: session.id, eventId: event.id }, 'event could not be written');
      return false;
    }
  }

  function deliverLocal(
    envelope: PublishEnvelope,
    publishedAt = performance.now(),
    cursors?: ReadonlyMap<string, Cursor>,
  ): number {
    // One OutboundEvent per publish: transports cache their encoding on it, so each encodes once.
    const outbound = outboundFor(envelope, publishedAt, cursors);
    const stamp = ++publishStamp;
    let delivered = 0;
    route(indexes, envelope, stamp, (session) => {
      if (writeEvent(session, outbound)) delivered++;
    });
    observer.onDelivered(delivered, performance.now() - publishedAt);
    return delivered;
  }

  /**
   * More live events arrived during a replay than a connection may hold: rather than grow without
   * bound or drop silently, it is closed with REPLAY_OVERFLOW, and its next resume (from the last
   * position it received) reads them from the log.
   */
  function overflow(session: HubSession): void {
    logger.warn({ event: 'replay_overflow', sessionId: session.id, held: MAX_REPLAY_BUFFER }, 'replay buffer full');
    session.replayBuffer = [];
    end(session, 'REPLAY_OVERFLOW', 'replay_overflow', true);
  }

  /**
   * A stream of this connection's lost part of its history (a new epoch arrived live, or a catch-up
   * came up short): what it missed cannot be sent, so it is closed and its resume says
   * `recovered: false` rather than continuing past a gap nobody would see.
   */
  function streamReset(session: HubSession): void {
    logger.warn({ event: 'stream_reset', sessionId: session.id }, 'stream history lost: connection must resume');
    end(session, 'STREAM_RESET', 'stream_reset', true);
  }

  function resetStreams(streams: readonly string[]): number {
    const lost = new Set(streams);
    let closed = 0;
    for (const session of [...indexes.byId.values()]) {
      for (const name of session.cursors.names()) {
        if (!lost.has(name)) continue;
        streamReset(session);
        closed++;
        break;
      }
    }
    return closed;
  }

  function readPoints(): Map<string, Cursor> {
    const earliest = new Map<string, Cursor>();
    for (const session of indexes.byId.values()) {
      for (const name of session.cursors.names()) {
        const cursor = session.cursors.get(name);
        if (cursor === undefined) continue;
        if (startsEarlier(cursor, earliest.get(name))) earliest.set(name, cursor);
      }
    }
    return earliest;
  }

  // Async so that a refusal is a rejected promise, never a throw at the call.
  async function publish(request: PublishRequest): Promise<PublishResult> {
    const publishedAt = performance.now();
    return publishEnvelope(validatePublish(request, deps.config.maxJsonDepth), publishedAt);
  }

  /**
   * A batch, validated whole (one bad event refuses it before any is published), then published in
   * order, each with its own answer.
   *
   * Every event is handed to the log (or the broker) in the same turn, in batch order, and never
   * waits for the one before: the store's log writes them in one group commit and resolves them in
   * order; a broker queues each one's append on its Redis connection before the next's, and one
   * connection runs them in order. Each stream thus gets the batch in order, and delivery follows
   * the appends, without a round trip per event. If the log fails part-way, each event's answer says
   * whether it was published; those after a failed one may have been (a retry with the same ids
   * publishes only what is missing, but then after them).
   */
  async function publishBatch(requests: readonly PublishRequest[]): Promise<PublishBatchItem[]> {
    const publishedAt = performance.now();
    const envelopes = validateBatch(requests, deps.config.maxJsonDepth);
    const settled = await Promise.allSettled(envelopes.map((envelope) => publishEnvelope(envelope, publishedAt)));
    return settled.map((outcome, i) =>
      outcome.status === 'fulfilled' ? outcome.value : batchFailure(envelopes[i]!.id, outcome.reason),
    );
  }

  function batchFailure(id: string, err: unknown): PublishBatchItem {
    const error =
      err instanceof TetherError
        ? err
        : new TetherError('PUBLISH_FAILED', 'The event was not published', { cause: err });
    if (!(err instanceof TetherError)) logger.error({ err, eventId: id }, 'batch publish failed');
    return { id, error: error.toBody(clock.now()) };
  }

  async function publishEnvelope(envelope: PublishEnvelope, publishedAt: number): Promise<PublishResult> {
    let delivered: number;
    backlog.enter();
    try {
      if (broker !== undefined) delivered = await broker.publish(envelope);
      else {
        // Logged before delivered: a client that misses it live finds it in the log.
        const logged = deps.log === undefined ? undefined : await deps.log.append(envelope);
        delivered = deliverLocal(envelope, publishedAt, logged?.cursors);
      }
    } finally {
      backlog.leave();
    }
    const result: PublishResult = { id: envelope.id, delivered };
    logger.debug({ event: 'publish', eventId: envelope.id, name: envelope.event, delivered }, 'event published');
    observer.onPublish(result, envelope.event);
    return result;
  }

  /** Revocation: `auth_error` with the code, then close, for each session. */
  function revoke(
    sessions: ReadonlySet<HubSession> | undefined,
    code: ErrorCode,
    subject: Record<string, string>,
    message?: string,
  ): number {
    if (sessions === undefined) return 0;
    const affected = [...sessions];
    for (const session of affected) end(session, code, 'revoked', true, message);
    logger.info({ event: 'revoke', ...subject, code, sessions: affected.length }, 'sessions revoked');
    return affected.length;
  }

  function updateGrants(userId: string, grants: { scopes?: string[]; channels?: string[] }): number {
    let updated = 0;
    for (const session of [...(indexes.byUser.get(userId) ?? [])]) {
      if (session.isGuest) continue;
      const { principal } = session;
      const dropped = indexes.replacePrincipal(
        session,
        principalWith(principal, grants.scopes ?? principal.scopes, grants.channels ?? principal.channels),
      );
      restream(session);
      logger.info(
        {
          event: 'grants_updated',
          sessionId: session.id,
          userId,
          droppedChannels: dropped.length > 0 ? dropped : undefined,
        },
        'grants updated',
      );
      updated++;
    }
    return updated;
  }

  function startShutdown(graceMs: number): Promise<void> {
    const timestamp = clock.now();
    logger.info({ event: 'shutdown', sessions: indexes.byId.size, graceMs }, 'hub shutting down');
    for (const session of [...indexes.byId.values()]) {
      write(session, {
        kind: 'server_shutdown',
        payload: { reconnectInMs: Math.floor(random() * graceMs), timestamp },
      });
    }
    // Event-driven drain: resolves when the last session leaves, or when the grace period ends.
    const drained =
      graceMs <= 0 || indexes.byId.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = clock.setTimeout(() => done(), graceMs);
            const done = (): void => {
              onEmpty = undefined;
              clock.clearTimeout(timer);
              resolve();
            };
            onEmpty = done;
          });
    return drained.then(() => {
      for (const session of [...indexes.byId.values()]) end(session, 'SERVER_SHUTDOWN', 'shutdown', false);
      lifecycle.stop();
    });
  }

  /** Applies an action to this node's connections (from this node's API, or from another node's). */
  function apply(action: HubAction): number {
    switch (action.t) {
      case 'disconnect':
        return revoke(indexes.byUser.get(action.userId), action.code, { userId: action.userId }, action.message);
      case 'family':
        return revoke(
          indexes.byFamily.get(action.familyId),
          'AUTH_REVOKED',
          { familyId: action.familyId },
          action.message,
        );
      case 'grants':
        return updateGrants(action.userId, action);
    }
  }

  /** Here first, then on every other node. */
  function everywhere(action: HubAction): number {
    const count = apply(action);
    broker?.broadcast(action);
    return count;
  }

  function receipt(handle: Session, ids: unknown): void {
    const session = internal(handle);
    if (
      !Array.isArray(ids) ||
      ids.length === 0 ||
      ids.length > MAX_RECEIPT_IDS ||
      !ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= MAX_PUBLISH_ID_LENGTH)
    )
      throw new TetherError(
        'VALIDATION_FAILED',
        `"ids" must be 1–${MAX_RECEIPT_IDS} event ids of at most ${MAX_PUBLISH_ID_LENGTH} characters`,
      );
    if (!session.closed) deliveries?.receipt(session, ids as string[]);
  }

  function heartbeat(handle: Session, ms: number): void {
    const session = internal(handle);
    session.rttMs = ms;
    observer.onHeartbeat(session, ms);
  }

  return {
    nodeId,
    backlog,
    receipt,
    heartbeat,
    admit: (principal) => {
      admitHere(principal);
      return broker?.admit(principal);
    },
    register,
    reauth: (session, token) => lifecycle.reauth(internal(session), token),
    subscribe,
    unsubscribe,
    narrow,
    unregister: (session, reason) => void detach(internal(session), reason, null),
    publish,
    publishBatch,
    deliverLocal,
    deliverCopy,
    resetStreams,
    readPoints,
    apply,
    disconnectUser: (userId, code = 'AUTH_REVOKED', message) =>
      everywhere({ t: 'disconnect', userId, code, ...(message === undefined ? {} : { message }) }),
    revokeFamily: (familyId, message) =>
      everywhere({ t: 'family', familyId, ...(message === undefined ? {} : { message }) }),
    updateGrants: (userId, { scopes, channels }) => everywhere({ t: 'grants', userId, scopes, channels }),
    ...(broker === undefined ? {} : { channelReady: (channel: string) => broker.channelReady(channel) }),
    presence: (userId) => [...(indexes.byUser.get(userId) ?? [])].map((session) => session.presence(nodeId)),
    openInFamily: (familyId) => indexes.byFamily.count(familyId),
    listSessions: () => [...indexes.byId.values()].map((session) => session.presence(nodeId)),
    stats: () => indexes.stats(),
    schedulerStats: () => lifecycle.stats(),
    shutdown: (graceMs) => (shutdown ??= startShutdown(graceMs)),
  };
}
