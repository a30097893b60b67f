/**
 * What the helpdesk's HTTP API answers and its realtime events carry. Shared (as types only) with
 * the web UI, so a renamed field breaks both builds.
 */

export interface AreaDto {
  path: string;
  name: string;
  level: 'region' | 'district' | 'ward';
  parent: string | null;
}

export interface TicketDto {
  id: string;
  ward: string;
  wardName: string;
  customerId: string;
  customerName: string;
  subject: string;
  status: 'open' | 'resolved';
  createdAt: number;
  updatedAt: number;
  resolvedAt: number | null;
  resolvedBy: string | null;
  lastMessageAt: number;
  messageCount: number;
  /** For the staff member asking: customer messages since they last opened the ticket. */
  unread: number;
}

export interface MessageDto {
  id: string;
  ticketId: string;
  authorKind: 'customer' | 'staff';
  authorId: string;
  authorName: string;
  body: string;
  createdAt: number;
}

export interface WhisperDto {
  id: string;
  ticketId: string;
  messageId: string;
  /** Which rule of the suggester produced it (shown, so staff know it is not a person). */
  rule: string;
  body: string;
  createdAt: number;
}

export interface DirectMessageDto {
  id: string;
  fromId: string;
  toId: string;
  body: string;
  createdAt: number;
  readAt: number | null;
}

export interface StaffDto {
  id: string;
  name: string;
  email: string;
  role: string;
  scopes: string[];
  /** The areas the grants cover, as people name them: `All regions`, `Kiharu district`. */
  area: string;
}

export interface MeDto extends StaffDto {
  /** Whether the user may open `/admin`. */
  isAdmin: boolean;
}

export interface TicketDetailDto {
  ticket: TicketDto;
  messages: MessageDto[];
  whispers: WhisperDto[];
}

/** Realtime events (Tether application events). `id` is added by Tether. */
export interface HelpdeskEvents {
  ticket_created: { ticket: TicketDto; message: MessageDto };
  message_received: { ticket: TicketDto; message: MessageDto };
  whisper: { whisper: WhisperDto };
  ticket_resolved: { ticket: TicketDto };
  ticket_reopened: { ticket: TicketDto };
  direct_message: { message: DirectMessageDto };
  message_read: { readerId: string; peerId: string; ids: string[]; readAt: number };
  admin_stats: AdminStatsDto;
  auth_event: AuthEventDto;
}

/**
 * Client events the staff page sends over its realtime connection (`client.send`), handled in the
 * helpdesk's process (`gateway.onClientEvent`): reads are small, frequent and fire-and-forget, so
 * they ride the socket that is already open, wait in the SDK's outbox while offline and are applied
 * once when retried.
 */
export interface HelpdeskSends {
  ticket_read: { ticketId: string };
  dm_read: { peerId: string };
}

export interface ConnectionDto {
  sessionId: string;
  userId: string;
  transport: string;
  connectedAt: number;
  expiresAt: number;
  ip: string;
  device: string;
  isGuest: boolean;
  node: string;
}

export interface AdminStatsDto {
  at: number;
  /** The first `MAX_LISTED_CONNECTIONS` live connections (a big gateway has thousands). */
  connections: ConnectionDto[];
  totalConnections: number;
  /** Application events published in the last second. */
  publishesPerSecond: number;
  /** Writes to connections in the last second. */
  deliveriesPerSecond: number;
  /** The newest events this helpdesk addressed to users by id (their deliveries are recorded), newest first. */
  recentEvents: PublishedEventDto[];
}

/** An event the helpdesk published to users by id: what an operator looks up in the delivery record. */
export interface PublishedEventDto {
  /** The Tether event id (`GET /api/admin/events/:id/deliveries`). */
  id: string;
  event: string;
  /** The user ids it was addressed to (`to.users`; scope-addressed readers are not recorded). */
  users: string[];
  at: number;
  /** Connections it was written to on publish. */
  delivered: number;
}

/** One connection an event was written to, and its delivery receipt (`gateway.deliveries`). */
export interface DeviceDeliveryDto {
  sessionId: string;
  /** The login session of the connection's token: the same phone across reconnects. */
  device: string;
  /** The device as people name it ("Chrome on Linux"), from its connect in the timeline; `unknown` when not found. */
  deviceName: string;
  transport: string;
  node: string;
  /** Live, or replayed by recovery on a reconnect. */
  path: 'live' | 'recovery';
  deliveredAt: number;
  /** When the SDK on it reported the event reached the app; null: not (yet) acknowledged. */
  acknowledgedAt: number | null;
}

export interface UserDeliveriesDto {
  userId: string;
  acknowledged: boolean;
  devices: DeviceDeliveryDto[];
  /** Pushes sent for it: `offline` (no live connection) or `no_receipt` (none acknowledged in time). */
  pushes: { at: number; reason: string }[];
}

/** `GET /api/admin/events/:id/deliveries`. */
export interface DeliveryReportDto {
  id: string;
  /** The event name; null when it was not addressed to users by id. */
  event: string | null;
  publishedAt: number | null;
  users: UserDeliveriesDto[];
  /** Device deliveries not acknowledged. */
  unacknowledged: number;
}

export type TimelineKind = 'connect' | 'reauth' | 'reauth_failed' | 'warning' | 'expired' | 'revoked' | 'disconnect';

export interface TimelineEntryDto {
  id: number;
  at: number;
  kind: TimelineKind;
  sessionId: string;
  device: string;
  /** The device as people name it, from the user agent of its connect; `unknown` when not found. */
  deviceName: string;
  transport: string;
  node: string;
  code: string | null;
  /** Why it closed (`heartbeat`, `client`, …) or the check a renewal failed. */
  reason: string | null;
  /** connect: `userAgent`, `tokenSource`; warning, reauth: `expiresAt`. */
  detail: Record<string, unknown> | null;
  /** A revocation this helpdesk's dashboard caused: the administrator's name. */
  revokedBy: string | null;
}

/** `GET /api/admin/users/:id/timeline`. */
export interface TimelineDto {
  userId: string;
  /** Oldest first. */
  entries: TimelineEntryDto[];
  /** Connects in the last hour beyond one per device. */
  reconnectsLastHour: number;
  /** The user's live connections now, with the last heartbeat round trip when measured. */
  devices: (ConnectionDto & { rttMs: number | null })[];
}

export interface AuthEventDto {
  type: string;
  userId: string | null;
  sessionId?: string;
  transport?: string;
  code?: string;
  reason?: string;
  /** Why a token was refused: the check that failed, with expected/got where there is one. */
  failure?: { check: string } & Record<string, unknown>;
  at: number;
}
