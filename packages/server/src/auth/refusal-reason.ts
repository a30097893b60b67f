/**
 * Why a token was refused, for the operator: the check that failed and, where it helps, what was
 * expected and what the token carried. It rides on the thrown `TetherError` without being a field
 * of it (a WeakMap), so nothing that serializes the error — `toBody()`, Socket.IO, JSON, pino's `err`
 * serializer — can ever send it to a client: clients keep seeing only the contract's code and message.
 *
 * Values copied from a token are header and routing claims (`alg`, `kid`, `iss`, `aud`, `sub`), never
 * the token or its signature, and are cut to `MAX_REASON_VALUE_LENGTH` characters.
 *
 * @example
 *   throw withReason(invalidToken(), { check: 'iss', expected: 'tether', got: 'go-api' });
 *   logger.info({ code: err.code, reason: reasonOf(err) }, 'handshake refused');
 */
export type RefusalReason =
  | { check: 'malformed' }
  | { check: 'signature'; problem?: 'missing' | 'key_mismatch' }
  | { check: 'alg'; got: string | null; allowed: readonly string[] }
  | { check: 'kid'; got: string | null; problem: 'missing' | 'too_long' | 'unknown' | 'unusable_key' }
  | { check: 'iss'; expected: string; got: string | null }
  | { check: 'aud'; expected: string; got: string | string[] | null }
  | { check: 'claim'; claim: string; problem: 'missing' | 'invalid' }
  | { check: 'exp'; expiredAt: number; now: number }
  | { check: 'nbf'; notBefore: number; now: number; toleranceMs: number }
  | { check: 'revoked'; by: 'user'; revokedBefore: number; issuedAt: number }
  | { check: 'revoked'; by: 'family' }
  | { check: 'subject_disabled'; sub: string }
  | { check: 'different_user'; expected: string; got: string }
  | { check: 'other'; error: string };

export type RefusalCheck = RefusalReason['check'];

/** Longest value copied from a token into a reason: enough to recognise it, never a token's worth. */
export const MAX_REASON_VALUE_LENGTH = 200;
/** An `aud` array is listed up to this many entries. */
const MAX_LISTED = 10;

const reasons = new WeakMap<Error, RefusalReason>();

/** Attaches `reason` to `error` (the first reason attached wins) and returns the error. */
export function withReason<E extends Error>(error: E, reason: RefusalReason): E {
  if (!reasons.has(error)) reasons.set(error, reason);
  return error;
}

/** The reason attached to `error`, if any. */
export function reasonOf(error: unknown): RefusalReason | undefined {
  return error instanceof Error ? reasons.get(error) : undefined;
}

/** A value taken from a token, made safe to log: strings cut to length, anything else as short JSON. */
export function shown(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  let text: string;
  if (typeof value === 'string') text = value;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = typeof value;
    }
  }
  return text.length > MAX_REASON_VALUE_LENGTH ? `${text.slice(0, MAX_REASON_VALUE_LENGTH)}…` : text;
}

function shownAudience(value: unknown): string | string[] | null {
  if (!Array.isArray(value)) return shown(value);
  const listed = value.slice(0, MAX_LISTED).map((v) => shown(v) ?? 'null');
  if (value.length > MAX_LISTED) listed.push(`…${value.length - MAX_LISTED} more`);
  return listed;
}

/** What `reasonForVerifierError` needs to say what was expected and what the token carried. */
export interface VerifierContext {
  /** The token's decoded header and payload (unverified; read only to describe the refusal). */
  header: Record<string, unknown>;
  payload: Record<string, unknown> | undefined;
  issuer: string;
  audience: string;
  /** The algorithms the key that judged the token accepts. */
  algorithms: readonly string[];
}

/**
 * The reason for a fast-jwt verification error (`FAST_JWT_*` codes). fast-jwt names the failing claim
 * only in its message ("The iss claim value is not allowed."), so the claim is read from there and
 * its value from the payload.
 */
export function reasonForVerifierError(error: unknown, context: VerifierContext): RefusalReason {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : '';
  const alg = shown(context.header.alg);
  const algAllowed = typeof context.header.alg === 'string' && context.algorithms.includes(context.header.alg);
  switch (code) {
    case 'FAST_JWT_INVALID_ALGORITHM':
      return { check: 'alg', got: alg, allowed: context.algorithms };
    case 'FAST_JWT_MISSING_SIGNATURE':
      // fast-jwt checks for a signature before the algorithm: `alg: none` lands here.
      return algAllowed
        ? { check: 'signature', problem: 'missing' }
        : { check: 'alg', got: alg, allowed: context.algorithms };
    case 'FAST_JWT_INVALID_SIGNATURE':
      return { check: 'signature' };
    case 'FAST_JWT_INVALID_KEY':
    case 'FAST_JWT_VERIFY_ERROR':
      return { check: 'signature', problem: 'key_mismatch' };
    case 'FAST_JWT_MALFORMED':
    case 'FAST_JWT_INVALID_TYPE':
    case 'FAST_JWT_INVALID_PAYLOAD':
      return { check: 'malformed' };
    case 'FAST_JWT_MISSING_REQUIRED_CLAIM':
    case 'FAST_JWT_INVALID_CLAIM_VALUE':
    case 'FAST_JWT_INVALID_CLAIM_TYPE': {
      const claim = /\b(?:The|of) (\w+) claim/.exec(message)?.[1] ?? 'unknown';
      const got = context.payload?.[claim];
      // fast-jwt checks `aud` before `iss`; a token from another backend usually has both wrong, and
      // the issuer is the more telling of the two, so it is named first.
      const iss = context.payload?.iss;
      if (claim === 'aud' && typeof iss === 'string' && iss !== context.issuer)
        return { check: 'iss', expected: context.issuer, got: shown(iss) };
      if (claim === 'iss') return { check: 'iss', expected: context.issuer, got: shown(got) };
      if (claim === 'aud') return { check: 'aud', expected: context.audience, got: shownAudience(got) };
      return { check: 'claim', claim, problem: code === 'FAST_JWT_MISSING_REQUIRED_CLAIM' ? 'missing' : 'invalid' };
    }
    default:
      // A `crit` header we do not support, or a fast-jwt code newer than this table.
      return { check: 'other', error: shown(code) ?? 'unknown' };
  }
}
