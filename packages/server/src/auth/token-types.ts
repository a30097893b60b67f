import type { Config } from '../config/index.js';
import type { AuditEventType, RefreshFamilyRecord, Store, UserRecord } from '../store/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { SignedToken } from './types.js';
import type { PublicUser } from './user-admin.js';

/** Who is asking, for the audit log and the refresh family's record. */
export interface RequestMeta {
  ip?: string | null;
  userAgent?: string | null;
}

export interface RefreshMeta extends RequestMeta {
  /** Called with the family id once the token is recognised; throw or reject to refuse (per-family rate limit). */
  checkFamily?(familyId: string): void | Promise<void>;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  /** Seconds until the access token expires. */
  expires_in: number;
}

export interface LoginResult extends TokenPair {
  user: Pick<PublicUser, 'id' | 'email' | 'name' | 'role' | 'scopes'>;
  familyId: string;
  /** When the refresh family ends (ms): the refresh cookie's lifetime. */
  refreshExpiresAt: number;
}

export interface RefreshResult extends TokenPair {
  userId: string;
  familyId: string;
  refreshExpiresAt: number;
}

export interface GuestResult {
  access_token: string;
  /** The guest session's first refresh token; absent when guest sessions are off (`GUEST_SESSION_TTL_SECONDS=0`). */
  refresh_token?: string;
  token_type: 'bearer';
  expires_in: number;
  /** The guest's user id (`guest:<uuid>`), as `session_created.userId` will show it. */
  guest_id: string;
  /** The guest session's family and its end (ms), when there is one: the refresh cookie's lifetime. */
  familyId?: string;
  refreshExpiresAt?: number;
}

/** What the token service's parts share (built once in `createTokenService`). */
export interface TokenContext {
  config: Config;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Writes one audit row; never pass secret material. */
  audit(
    type: AuditEventType,
    fields: { userId?: string | null; familyId?: string | null; ip?: string | null; detail?: Record<string, unknown> },
  ): Promise<void>;
  /** Revokes a family in the store, in this node's revocation state and on live connections. */
  revokeFamily(family: RefreshFamilyRecord, reason: string): Promise<boolean>;
  /** An access token for one of the user's sessions. */
  signAccess(user: UserRecord, familyId: string): SignedToken;
  /** An access token for a guest session: the family's guest id, guest claims, never past the family's end. */
  signGuest(family: RefreshFamilyRecord): SignedToken;
}
