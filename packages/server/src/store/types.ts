/**
 * The repository layer's contract. One implementation over Kysely serves both back ends
 * (SQLite via better-sqlite3, PostgreSQL via pg). Times are ms since the epoch (numbers).
 */

export interface UserRecord {
  id: string;
  email: string;
  name: string;
  role: string;
  scopes: string[];
  channels: string[];
  active: boolean;
  passwordHash: string;
  /** Tokens issued before this instant are refused (set by disconnect/disable); null = none. */
  tokensRevokedBefore: number | null;
  createdAt: number;
  updatedAt: number;
}

export type NewUser = Pick<UserRecord, 'email' | 'name' | 'role' | 'scopes' | 'channels' | 'passwordHash'> & {
  id?: string;
  active?: boolean;
};

export type UserPatch = Partial<
  Pick<UserRecord, 'name' | 'role' | 'scopes' | 'channels' | 'active' | 'passwordHash' | 'tokensRevokedBefore'>
>;

export interface UserRepository {
  /** Throws TetherError(CONFLICT) when the email is taken (emails compare case-insensitively). */
  create(user: NewUser): Promise<UserRecord>;
  findById(id: string): Promise<UserRecord | undefined>;
  findByEmail(email: string): Promise<UserRecord | undefined>;
  update(id: string, patch: UserPatch): Promise<UserRecord | undefined>;
  list(options?: { limit?: number; offset?: number }): Promise<UserRecord[]>;
  /** Users with tokensRevokedBefore set or active=false, to load the revocation state at start. */
  listRevoked(): Promise<Pick<UserRecord, 'id' | 'active' | 'tokensRevokedBefore'>[]>;
}

export interface RefreshFamilyRecord {
  id: string;
  /** The owner: a user id, or a guest id (`guest:<uuid>`) when `guest` is true. */
  userId: string;
  /** A guest session: its access tokens carry guest claims, and the owner is no row of `users`. */
  guest: boolean;
  createdAt: number;
  /** The family's absolute end (login time + refresh lifetime); rotation never extends it past this. */
  expiresAt: number;
  revokedAt: number | null;
  revokeReason: string | null;
  userAgent: string | null;
  ip: string | null;
}

export interface RefreshTokenRecord {
  id: string;
  familyId: string;
  userId: string;
  /** SHA-256 of the token, hex. The token itself is never stored. */
  tokenHash: string;
  createdAt: number;
  expiresAt: number;
  /** When it was exchanged for a new pair; null while it is the family's current token. */
  usedAt: number | null;
  replacedById: string | null;
  /**
   * The pair issued when this token was used, encrypted with a key derived from this token
   * itself, so a concurrent refresh within the grace window can return the same pair (on any node)
   * while the store alone holds nothing usable.
   */
  graceCiphertext: string | null;
}

export type NewRefreshFamily = Omit<RefreshFamilyRecord, 'revokedAt' | 'revokeReason' | 'guest'> & { guest?: boolean };

export interface RefreshRepository {
  /** `guest` defaults to false (a user's family). */
  createFamily(family: NewRefreshFamily): Promise<RefreshFamilyRecord>;
  getFamily(id: string): Promise<RefreshFamilyRecord | undefined>;
  insertToken(token: Omit<RefreshTokenRecord, 'usedAt' | 'replacedById' | 'graceCiphertext'>): Promise<void>;
  findByHash(tokenHash: string): Promise<RefreshTokenRecord | undefined>;
  /**
   * Atomically marks `id` used, only if it is still unused. Returns false when another request
   * used it first (the caller then checks the grace window).
   */
  markUsed(id: string, usedAt: number, replacedById: string, graceCiphertext: string): Promise<boolean>;
  /**
   * `markUsed(usedId, …)` and `insertToken(next)` in one transaction: the successor is stored
   * exactly when this call wins the compare-and-set. Returns false (and stores nothing) when
   * another request used `usedId` first.
   */
  rotate(
    usedId: string,
    usedAt: number,
    next: Omit<RefreshTokenRecord, 'usedAt' | 'replacedById' | 'graceCiphertext'>,
    graceCiphertext: string,
  ): Promise<boolean>;
  /** Revokes one family; returns false if it was already revoked. */
  revokeFamily(id: string, reason: string, at: number): Promise<boolean>;
  /** Revokes every live family of a user, or of a guest (by its guest id); returns their ids. */
  revokeUserFamilies(userId: string, reason: string, at: number): Promise<string[]>;
  /** Families revoked at or after `sinceMs` (to rebuild the in-memory revocation state at start). */
  listRevokedFamiliesSince(sinceMs: number): Promise<Pick<RefreshFamilyRecord, 'id' | 'revokedAt'>[]>;
  /** Deletes tokens and families that ended before `beforeMs`. Returns rows removed. */
  purgeExpired(beforeMs: number): Promise<number>;
}

export type AuditEventType =
  | 'login_ok'
  | 'login_failed'
  | 'refresh'
  | 'refresh_failed'
  | 'refresh_reuse_detected'
  | 'logout'
  | 'revoke_user'
  | 'user_disabled'
  | 'guest_issued';

export interface AuditEvent {
  id: number;
  type: AuditEventType;
  userId: string | null;
  familyId: string | null;
  ip: string | null;
  /** Free-form, never secret material. */
  detail: Record<string, unknown> | null;
  at: number;
}

export interface AuditRepository {
  record(event: Omit<AuditEvent, 'id' | 'at'> & { at?: number }): Promise<void>;
  list(options?: { limit?: number; userId?: string; type?: AuditEventType }): Promise<AuditEvent[]>;
  /** Deletes events recorded before `beforeMs`; returns how many. */
  purge(beforeMs: number): Promise<number>;
}

/**
 * "Tokens of this subject issued before T are refused" for subjects the user store does not hold
 * (apps whose own backend issues tokens); built-in users keep it on their user row.
 */
export interface SubjectRevocationRepository {
  /** Records the revocation; a later instant replaces an earlier one, never the reverse. */
  revoke(userId: string, beforeMs: number): Promise<void>;
  list(): Promise<{ userId: string; revokedBefore: number }[]>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly users: UserRepository;
  readonly subjects: SubjectRevocationRepository;
  readonly refresh: RefreshRepository;
  readonly audit: AuditRepository;
  close(): Promise<void>;
}
