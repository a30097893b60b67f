import type { RefusalReason } from './refusal-reason.js';

/**
 * Shared auth types. Implementations: `jwt.ts` (signing/verification), `authenticator.ts`
 * (verification + revocation), `token-service.ts` (login/refresh/logout/guest).
 */

/**
 * A verified access token, as the hub and transports see it. Read-only: a verified token's fields
 * are read from its claims (`auth/claims.ts`), so a copy is made with `principalWith` or
 * `plainPrincipal`, not a spread.
 */
export interface Principal {
  /** `sub`. Guests: `guest:<uuid>`. */
  readonly userId: string;
  readonly isGuest: boolean;
  readonly role: string | undefined;
  /** Normalized scope grants (`*` = everything). Invalid entries are dropped at verification. */
  readonly scopes: string[];
  /** Channel patterns the token allows (`project:42`, `support:*`). */
  readonly channels: string[];
  /** `exp` in ms since the epoch. */
  readonly expiresAt: number;
  /** Issue time in ms: our tokens carry ms precision (`iat_ms`), others `iat * 1000`. */
  readonly issuedAt: number;
  /** `jti`, when present. */
  readonly tokenId: string | undefined;
  /** `sid`: the refresh family (login session) the token belongs to, when issued by Tether. */
  readonly sessionFamilyId: string | undefined;
  /** Every claim as given (apps read their own). */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Claims Tether puts in the access tokens it issues. */
export interface AccessClaims {
  sub: string;
  sid?: string;
  role?: string;
  scopes?: string[];
  channels?: string[];
  name?: string;
  email?: string;
  guest?: boolean;
}

export interface SignedToken {
  token: string;
  /** ms since epoch */
  expiresAt: number;
  /** seconds, as `expires_in` in HTTP answers */
  expiresIn: number;
}

/** Signs access tokens. Absent when the gateway only verifies an app's own tokens. */
export interface TokenSigner {
  readonly algorithm: string;
  sign(claims: AccessClaims, ttlSeconds: number): SignedToken;
}

/**
 * Verifies signature, algorithm allow-list, `iss`, `aud`, `exp`, `nbf`. Throws `TetherError` with
 * `AUTH_INVALID` (messages: AUTH_MESSAGES.malformed for a token that is not a JWT, AUTH_MESSAGES.invalid
 * otherwise) or `AUTH_EXPIRED`. Does not look at revocation.
 */
export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
}

/** Revocation state every node keeps in memory (loaded from the store, updated by the broker). */
export interface RevocationState {
  /** Tokens of `userId` issued before `beforeMs` are refused (Infinity: user disabled). */
  revokeUser(userId: string, beforeMs: number): void;
  /** Re-enables a user (tokens issued after now are accepted again). */
  restoreUser(userId: string, afterMs: number): void;
  /** Access tokens carrying `sid = familyId` are refused until they expire. */
  revokeFamily(familyId: string, untilMs: number): void;
  isRevoked(principal: Principal): boolean;
  /** Why `principal` is refused (disabled subject, user or family revocation), or undefined when it is not. */
  revocationOf(principal: Principal): RevocationReason | undefined;
}

/** The refusal reasons revocation state gives. */
export type RevocationReason = Extract<RefusalReason, { check: 'revoked' | 'subject_disabled' }>;

/** Verification plus revocation: what connect, reauth and every resume path call. */
export interface Authenticator {
  /** Throws TetherError AUTH_INVALID / AUTH_EXPIRED / AUTH_REVOKED. */
  authenticate(token: string): Promise<Principal>;
  readonly revocations: RevocationState;
}
