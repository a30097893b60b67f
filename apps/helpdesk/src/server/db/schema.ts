/**
 * The helpdesk's own tables, kept in the gateway's store beside Tether's. Portable on purpose
 * (as Tether's are): times are ms since the epoch (BIGINT), booleans and enums are text/integers,
 * so one set of queries serves SQLite and PostgreSQL.
 */
export interface AreasTable {
  /** Scope path: `ke/<region>`, `ke/<region>/<district>`, `ke/<region>/<district>/<ward>`. */
  path: string;
  name: string;
  level: 'region' | 'district' | 'ward';
  parent: string | null;
}

export interface TicketsTable {
  id: string;
  /** The ward's scope path: events about the ticket are published to it. */
  ward: string;
  customer_id: string;
  customer_name: string;
  subject: string;
  status: 'open' | 'resolved';
  created_at: number;
  updated_at: number;
  resolved_at: number | null;
  resolved_by: string | null;
  last_message_at: number;
  message_count: number;
}

export interface MessagesTable {
  id: string;
  ticket_id: string;
  author_kind: 'customer' | 'staff';
  author_id: string;
  author_name: string;
  body: string;
  created_at: number;
}

export interface WhispersTable {
  id: string;
  ticket_id: string;
  /** The customer message the suggestion answers. */
  message_id: string;
  rule: string;
  body: string;
  created_at: number;
}

/** How far each staff member has read each ticket (unread counts). */
export interface ReadsTable {
  ticket_id: string;
  user_id: string;
  last_read_at: number;
}

export interface DirectMessagesTable {
  id: string;
  from_id: string;
  to_id: string;
  body: string;
  created_at: number;
  read_at: number | null;
}

export interface HelpdeskDatabase {
  hd_areas: AreasTable;
  hd_tickets: TicketsTable;
  hd_messages: MessagesTable;
  hd_whispers: WhispersTable;
  hd_reads: ReadsTable;
  hd_direct_messages: DirectMessagesTable;
}
