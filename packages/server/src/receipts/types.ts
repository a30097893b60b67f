import type { PresenceEntry } from '../hub/types.js';

/** One connection an event was written to, and its receipt. */
export interface DeviceDelivery {
  /** The connection. */
  sessionId: string;
  /** The login session (refresh family) of its token, else the connection id: the same phone across reconnects. */
  device: string;
  transport: string;
  node: string;
  /** How the event reached it: live, or replayed by recovery on a reconnect. */
  path: 'live' | 'recovery';
  deliveredAt: number;
  /** When the SDK on it reported the event reached the app's code; null: not (yet) acknowledged. */
  acknowledgedAt: number | null;
}

export interface UserDeliveries {
  userId: string;
  /** Whether any device of the user acknowledged the event. */
  acknowledged: boolean;
  devices: DeviceDelivery[];
  /** Pushes sent for it: `offline` (no live connection) or `no_receipt` (none acknowledged in time). */
  pushes: { at: number; reason: string }[];
}

/** `GET /v1/events/{id}/deliveries`. */
export interface DeliveryReport {
  id: string;
  /** The event name, when it was addressed to users by id (only those are recorded by default). */
  event: string | null;
  /** When the publishing node recorded it as addressed; null when it was not addressed by user id. */
  publishedAt: number | null;
  users: UserDeliveries[];
  /** Device deliveries not acknowledged. */
  unacknowledged: number;
}

export interface TimelineEntry {
  id: number;
  at: number;
  kind: 'connect' | 'reauth' | 'reauth_failed' | 'warning' | 'expired' | 'revoked' | 'disconnect';
  sessionId: string;
  device: string;
  transport: string;
  node: string;
  code: string | null;
  reason: string | null;
  /** connect: `userAgent`, `tokenSource`; warning, reauth: `expiresAt`; revoked: `message` (why, as the client was told). */
  detail: Record<string, unknown> | null;
}

/** `GET /v1/users/{id}/timeline`. */
export interface TimelineReport {
  userId: string;
  /** Oldest first: the newest `limit` entries (before `before` when given). */
  entries: TimelineEntry[];
  /** Connects in the last hour beyond one per device: how often the user's devices came back. */
  reconnectsLastHour: number;
  /** The user's live connections now, on every node. */
  devices: PresenceEntry[];
}
