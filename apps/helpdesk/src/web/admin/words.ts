import type { DeviceDeliveryDto, TimelineEntryDto } from '../../server/domain/dto.js';

/** Why a connection closed, as an operator says it (Tether's close reasons). */
const CLOSED: Record<string, string> = {
  client: 'closed by the app (page closed or signed out)',
  heartbeat: 'heartbeat missed (network lost or device asleep)',
  transport_error: 'the connection broke',
  shutdown: 'the server restarted',
  replaced: 'replaced by a newer connection',
  rate_limited: 'too many messages (rate limited)',
  replay_overflow: 'too far behind to catch up',
  stream_reset: 'the event stream was reset',
};

/** A timeline entry in plain words: "Connected", "Token renewed in place", "Expired (AUTH_EXPIRED)"… */
export function describeTimelineEntry(entry: Pick<TimelineEntryDto, 'kind' | 'code' | 'reason' | 'revokedBy'>): string {
  const code = entry.code === null ? '' : ` (${entry.code})`;
  switch (entry.kind) {
    case 'connect':
      return 'Connected';
    case 'reauth':
      return 'Token renewed in place';
    case 'reauth_failed':
      return `Token renewal refused${code}`;
    case 'warning':
      return 'Warned before expiry';
    case 'expired':
      return `Expired${code}`;
    case 'revoked':
      // Tether says a session was revoked; the helpdesk knows when its own dashboard did it.
      return entry.revokedBy === null ? `Signed out: session revoked${code}` : `Signed out by an administrator${code}`;
    case 'disconnect':
      return entry.reason === null ? 'Disconnected' : `Disconnected: ${CLOSED[entry.reason] ?? entry.reason}`;
  }
}

/** A delivery's path: written live, or replayed when the device reconnected. */
export function describePath(path: DeviceDeliveryDto['path']): string {
  return path === 'live' ? 'Live' : 'Recovered on reconnect';
}

/** Why a push was sent for an event. */
export function describePush(reason: string): string {
  if (reason === 'offline') return 'Push sent: no live connection';
  if (reason === 'no_receipt') return 'Push sent: no device acknowledged in time';
  return `Push sent: ${reason}`;
}

/** The helpdesk's event names as the dashboard shows them. */
const EVENTS: Record<string, string> = {
  ticket_created: 'New request',
  message_received: 'Message',
  ticket_resolved: 'Request resolved',
  ticket_reopened: 'Request reopened',
  direct_message: 'Direct message',
  message_read: 'Read receipt',
  whisper: 'Suggested reply',
};

export function describeEvent(event: string | null): string {
  if (event === null) return 'Event';
  return EVENTS[event] ?? event;
}

/** "85 ms", "1.2 s", "3 min": how long after delivery a receipt came. */
export function formatDelay(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
