import { grantCovers } from '@tether/protocol';
import { formatPosition, offsetRank, parsePosition, type EventLog, type LoggedEvent } from '../history/types.js';
import type { Logger } from '../util/logger.js';
import type { HubSession } from './session.js';
import type { OutboundEvent, PublishEnvelope, SystemMessage } from './types.js';

/** What recovery needs from the hub. */
export interface RecoveryDeps {
  log: EventLog;
  /** Gap beyond which the client is told `recovered: false` (RECOVERY_MAX_EVENTS). */
  maxEvents: number;
  logger: Logger;
  now(): number;
  write(session: HubSession, message: SystemMessage): void;
  /** Called once the session is live (the hub arms its token lifecycle then). */
  live(session: HubSession): void;
}

/** An event for one position, with the seam fields parsed once. */
export function outboundFor(
  envelope: PublishEnvelope,
  publishedAt: number,
  position: string | undefined,
): OutboundEvent {
  const parsed = position === undefined ? undefined : parsePosition(position);
  return {
    id: envelope.id,
    event: envelope.event,
    data: envelope.data,
    publishedAt,
    encoded: {},
    ...(parsed === undefined ? {} : { position, epoch: parsed.epoch, rank: offsetRank(parsed.offset) }),
  };
}

/**
 * Whether the session may receive the envelope *now*: its current user (guests get no
 * user-addressed history), its current scope grants, the channels it has joined.
 */
export function entitled(session: HubSession, envelope: PublishEnvelope): boolean {
  if (!session.isGuest && envelope.to.users.includes(session.userId)) return true;
  const grants = session.principal.scopes;
  for (const scope of envelope.to.scopes) for (const grant of grants) if (grantCovers(grant, scope)) return true;
  for (const channel of envelope.to.channels) if (session.channels.has(channel)) return true;
  return false;
}

/**
 * Starts a session against the log. The session is already indexed: from here on its live events
 * are held in `replayBuffer` while the log is read, so every event is either in the replay or in
 * the buffer (or both — the floor drops the second copy):
 *
 *   register ─► index session, buffer live ─► readAfter(position) ─► session_created {recovered, position}
 *            ─► replay (entitled events, in order) ─► buffered events above the floor ─► live
 *
 * Not recoverable (another epoch, trimmed, gap > maxEvents, log unreadable): nothing is replayed,
 * `recovered: false`, and the stream starts at the head.
 */
export async function recover(deps: RecoveryDeps, session: HubSession, presented: string | undefined): Promise<void> {
  const { log, logger } = deps;
  session.replayBuffer = [];
  let replay: LoggedEvent[] = [];
  let start: { epoch: string; offset: string } | undefined;
  let recovered = false;
  try {
    const from = presented === undefined ? undefined : parsePosition(presented);
    if (from !== undefined) {
      const read = await log.readAfter(from.epoch, from.offset, deps.maxEvents);
      if (read.complete) {
        recovered = true;
        replay = read.events;
        start = from;
      }
    }
    start ??= log.knownHead?.() ?? (await log.head());
  } catch (err) {
    logger.warn(
      { event: 'recover', sessionId: session.id, err: (err as Error).message },
      'event log unreadable: session starts without recovery',
    );
  }
  if (session.closed) return;

  if (start !== undefined) {
    session.floorEpoch = start.epoch;
    session.floorRank = offsetRank(start.offset);
  }
  const position = start === undefined ? undefined : formatPosition(start.epoch, start.offset);
  deps.write(session, {
    kind: 'session_created',
    payload: session.createdPayload(deps.now(), { recovered, position }),
  });

  let replayed = 0;
  for (const logged of replay) {
    if (session.closed) return;
    session.floorRank = offsetRank(logged.offset);
    if (!entitled(session, logged.envelope)) continue;
    send(session, outboundFor(logged.envelope, performance.now(), formatPosition(logged.epoch, logged.offset)), logger);
    replayed++;
  }
  const buffered = session.replayBuffer;
  session.replayBuffer = undefined;
  let flushed = 0;
  for (const event of buffered) {
    if (session.closed) return;
    if (!session.isNew(event)) continue;
    send(session, event, logger);
    flushed++;
  }
  logger.info(
    {
      event: 'recover',
      sessionId: session.id,
      userId: session.userId,
      resumed: presented !== undefined,
      recovered,
      replayed,
      read: replay.length,
      flushed,
    },
    recovered ? 'session recovered' : 'session started at the head',
  );
  deps.live(session);
}

function send(session: HubSession, event: OutboundEvent, logger: Logger): void {
  try {
    session.sink.sendEvent(event);
  } catch (err) {
    logger.warn({ err, sessionId: session.id, eventId: event.id }, 'event could not be written');
  }
}
