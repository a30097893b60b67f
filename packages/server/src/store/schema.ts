import type { ColumnType, Generated } from 'kysely';

/**
 * Table shapes as Kysely sees them. Portable on purpose: booleans are 0/1 integers, lists are
 * JSON text and times are ms since the epoch (BIGINT in PostgreSQL, parsed back into JS numbers
 * by the pool's type parser), so one repository implementation serves SQLite and PostgreSQL.
 */
export interface UsersTable {
  id: string;
  email: string;
  /** `email` lowercased: the unique key, so emails compare case-insensitively on both back ends. */
  email_lower: string;
  name: string;
  role: string;
  /** JSON array of scope paths. */
  scopes: string;
  /** JSON array of channel patterns. */
  channels: string;
  /** 1 = active, 0 = disabled. */
  active: number;
  password_hash: string;
  tokens_revoked_before: number | null;
  created_at: number;
  updated_at: number;
}

/** A family's owner is a user (`user_id`, a foreign key) or a guest (`guest_id`); exactly one is set. */
export interface RefreshFamiliesTable {
  id: string;
  user_id: string | null;
  guest_id: string | null;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoke_reason: string | null;
  user_agent: string | null;
  ip: string | null;
}

export interface RefreshTokensTable {
  id: string;
  family_id: string;
  user_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  replaced_by_id: string | null;
  grace_ciphertext: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  type: string;
  user_id: string | null;
  family_id: string | null;
  ip: string | null;
  /** JSON object or null. */
  detail: string | null;
  at: ColumnType<number, number, never>;
}

/** Revocations of subjects the user store does not hold (users of an app's own token issuer). */
export interface SubjectRevocationsTable {
  user_id: string;
  /** Tokens issued at or before this instant (ms) are refused. */
  revoked_before: number;
}

/** The core tables. Apps add their own through `runMigrations` with their own table names. */
export interface Database {
  users: UsersTable;
  refresh_families: RefreshFamiliesTable;
  refresh_tokens: RefreshTokensTable;
  audit_log: AuditLogTable;
  subject_revocations: SubjectRevocationsTable;
}

export type StoreDialect = 'sqlite' | 'postgres';
