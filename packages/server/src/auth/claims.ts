import { AUTH_MESSAGES, TetherError, normalizeScope } from '@tether/protocol';
import { withReason, type RefusalReason } from './refusal-reason.js';
import type { Principal } from './types.js';

/** How far in the future `nbf` may be: clocks of other issuers drift. `exp` gets no tolerance. */
export const NBF_TOLERANCE_MS = 5_000;

/**
 * Turns the claims of a token whose signature, algorithm, `iss` and `aud` were verified into a
 * `Principal`, enforcing the time claims against `now`:
 * - `exp` is required and exact: at `exp * 1000` the token has expired (AUTH_EXPIRED);
 * - `nbf`, when present, may be up to 5 s in the future;
 * - `sub` must be a non-empty string.
 * `guest: true` is honoured only when `ownKey` (the token was signed by Tether's own key): an app
 * backend's token claiming to be a guest is just a user with that `sub`.
 *
 * @example
 *   const principal = principalFromClaims(payload, true, clock.now());
 */
export function principalFromClaims(claims: Record<string, unknown>, ownKey: boolean, now: number): Principal {
  const { sub, exp, nbf } = claims;
  if (typeof sub !== 'string' || sub.length === 0) throw invalid({ check: 'claim', claim: 'sub', problem: 'invalid' });
  if (typeof exp !== 'number' || !Number.isFinite(exp))
    throw invalid({ check: 'claim', claim: 'exp', problem: 'invalid' });
  if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf)))
    throw invalid({ check: 'claim', claim: 'nbf', problem: 'invalid' });
  if (now >= exp * 1000)
    throw withReason(new TetherError('AUTH_EXPIRED', AUTH_MESSAGES.expired), {
      check: 'exp',
      expiredAt: exp * 1000,
      now,
    });
  if (typeof nbf === 'number' && now < nbf * 1000 - NBF_TOLERANCE_MS)
    throw invalid({ check: 'nbf', notBefore: nbf * 1000, now, toleranceMs: NBF_TOLERANCE_MS });

  return new TokenPrincipal(
    claims,
    ownKey && claims.guest === true,
    scopesOf(claims.scopes),
    channelsOf(claims.channels),
  );
}

/**
 * The principal of a verified token. What its claims hold as they are (`sub`, `exp`, `iat`, `jti`,
 * `sid`, `role`) is read from them when asked for, not copied: a live connection keeps its principal,
 * and six more fields with two boxed numbers (the times in ms are not small integers) were ~0.1 KB of
 * every connection. The grants are kept, normalized (`scopesOf`, `channelsOf`).
 *
 * Reads like the plain object `Principal` describes; a copy is made with `principalWith` (a spread
 * would lose the fields read from the claims), and `JSON.stringify` shows every field.
 */
class TokenPrincipal implements Principal {
  constructor(
    readonly claims: Readonly<Record<string, unknown>>,
    readonly isGuest: boolean,
    readonly scopes: string[],
    readonly channels: string[],
  ) {}

  /** `sub`: checked to be a non-empty string before this is made. */
  get userId(): string {
    return this.claims.sub as string;
  }

  get role(): string | undefined {
    const { role } = this.claims;
    return typeof role === 'string' ? role : undefined;
  }

  /** `exp` (checked to be a finite number) in ms. */
  get expiresAt(): number {
    return (this.claims.exp as number) * 1000;
  }

  get issuedAt(): number {
    return issuedAtOf(this.claims.iat, this.claims.iat_ms);
  }

  get tokenId(): string | undefined {
    const { jti } = this.claims;
    return typeof jti === 'string' ? jti : undefined;
  }

  get sessionFamilyId(): string | undefined {
    const { sid } = this.claims;
    return typeof sid === 'string' && sid.length > 0 ? sid : undefined;
  }

  toJSON(): Principal {
    return plainPrincipal(this);
  }
}

/** Every field of `principal` as an own property of a new object (what a spread would give of a plain one). */
export function plainPrincipal(principal: Principal): Principal {
  const { userId, isGuest, role, scopes, channels, expiresAt, issuedAt, tokenId, sessionFamilyId, claims } = principal;
  return { userId, isGuest, role, scopes, channels, expiresAt, issuedAt, tokenId, sessionFamilyId, claims };
}

/**
 * `principal` with other grants: itself when they are the same arrays, else a copy that keeps a
 * token principal's way of reading its claims.
 */
export function principalWith(principal: Principal, scopes: string[], channels = principal.channels): Principal {
  if (scopes === principal.scopes && channels === principal.channels) return principal;
  if (principal instanceof TokenPrincipal)
    return new TokenPrincipal(principal.claims, principal.isGuest, scopes, channels);
  return { ...principal, scopes, channels };
}

/**
 * `scopes` as an array of strings or one space-separated string; invalid paths are dropped. An
 * array already normalized and free of duplicates (the usual claim) is returned itself rather than
 * copied: the principal's grants and its `claims.scopes` are then one array, and the hub keeps it
 * (see `adoptGrants`), 64 bytes less per connection for two grants.
 */
export function scopesOf(value: unknown): string[] {
  if (Array.isArray(value) && isNormalizedScopes(value)) return value;
  const raw: unknown[] = typeof value === 'string' ? value.split(/\s+/) : Array.isArray(value) ? value : [];
  const out: string[] = [];
  for (const item of raw) {
    if (typeof item !== 'string') continue;
    const scope = normalizeScope(item);
    if (scope !== undefined && !out.includes(scope)) out.push(scope);
  }
  return out;
}

/** True when every entry is a scope path in normal form (`normalizeScope` keeps it) and none repeats. */
export function isNormalizedScopes(scopes: readonly unknown[]): scopes is string[] {
  // Repeats are looked for pairwise in short lists (most tokens carry a few scopes), with a Set in long ones.
  const seen = scopes.length > 16 ? new Set<unknown>() : undefined;
  for (let i = 0; i < scopes.length; i++) {
    const scope = scopes[i];
    if (typeof scope !== 'string' || normalizeScope(scope) !== scope) return false;
    if (seen === undefined ? scopes.indexOf(scope) !== i : seen.has(scope)) return false;
    seen?.add(scope);
  }
  return true;
}

/**
 * Shared by every principal whose token allows no channel (most of them): an empty array of its own
 * costs 32 bytes per connection. Frozen, so no holder can change another's.
 */
const NO_CHANNELS = Object.freeze([]) as readonly string[] as string[];

function channelsOf(value: unknown): string[] {
  if (!Array.isArray(value)) return NO_CHANNELS;
  const out: string[] = [];
  for (const item of value) {
    if (typeof item === 'string' && item.length > 0 && !out.includes(item)) out.push(item);
  }
  return out.length === 0 ? NO_CHANNELS : out;
}

/**
 * Issue time in ms. `iat_ms` (Tether's own tokens) is taken only when it agrees with `iat`, so a
 * stray claim cannot move a token past a revocation instant. Without `iat` the token is treated as
 * issued at the epoch: any "revoked before" instant then refuses it.
 */
function issuedAtOf(iat: unknown, iatMs: unknown): number {
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return 0;
  if (typeof iatMs === 'number' && Number.isFinite(iatMs) && Math.floor(iatMs / 1000) === iat) return iatMs;
  return iat * 1000;
}

function invalid(reason: RefusalReason): TetherError {
  return withReason(new TetherError('AUTH_INVALID', AUTH_MESSAGES.invalid), reason);
}
