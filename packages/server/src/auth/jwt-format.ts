import { AUTH_MESSAGES, TetherError } from '@tether/protocol';
import { withReason, type RefusalReason } from './refusal-reason.js';

/** Longer than any sane access token; refused before any parsing. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** Three base64url segments; the signature may be empty (that is `alg: none`, refused later as invalid). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * The one token-shape rule. Every path that takes a token (handshake auth object, header, cookie,
 * query, subprotocol, `/ws` authenticate and reauth frames, Socket.IO reauth, HTTP Bearer) reaches
 * it through the verifier, so a malformed token gets the same AUTH_INVALID everywhere; no path
 * checks a token's length or characters on its own with another answer.
 * Throws AUTH_INVALID with the "format" message unless `token` has the shape of a compact JWS.
 */
export function assertJwtShape(token: unknown): asserts token is string {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) throw malformedToken();
}

/**
 * A token as a client put it in a JSON field (handshake `auth.token`, frame or reauth `token`):
 * undefined when none was presented (absent, null or ""), the string when it is one — its shape is
 * `assertJwtShape`'s to judge, at verification — and AUTH_INVALID ("format") for anything else,
 * since a number or an object is a token presented in a malformed way, not a missing one.
 */
export function presentedToken(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw malformedToken();
  return value;
}

/** The decoded (unverified) header of a token that passed `assertJwtShape`. */
export function decodeHeader(token: string): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'));
  } catch {
    throw malformedToken();
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw malformedToken();
  return header as Record<string, unknown>;
}

/**
 * The decoded (unverified) payload of a token that passed `assertJwtShape`, or undefined when it is
 * not a JSON object. Read only to describe why a token was refused, never to trust it.
 */
export function decodePayloadForDiagnostics(token: string): Record<string, unknown> | undefined {
  const start = token.indexOf('.') + 1;
  try {
    const payload: unknown = JSON.parse(
      Buffer.from(token.slice(start, token.indexOf('.', start)), 'base64url').toString('utf8'),
    );
    return payload !== null && typeof payload === 'object' && !Array.isArray(payload)
      ? (payload as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Not a JWT at all (garbage, wrong segment count, bad base64/JSON). */
export function malformedToken(): TetherError {
  return withReason(new TetherError('AUTH_INVALID', AUTH_MESSAGES.malformed), { check: 'malformed' });
}

/** A JWT we refuse (signature, algorithm, issuer, audience, nbf, kid…), with the check that failed. */
export function invalidToken(reason: RefusalReason, cause?: unknown): TetherError {
  return withReason(
    new TetherError('AUTH_INVALID', AUTH_MESSAGES.invalid, cause === undefined ? undefined : { cause }),
    reason,
  );
}
