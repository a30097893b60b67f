import { AUTH_MESSAGES, TetherError } from '@tether/protocol';

/** Longer than any sane access token; refused before any parsing. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** Three base64url segments; the signature may be empty (that is `alg: none`, refused later as invalid). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Throws AUTH_INVALID with the "format" message unless `token` has the shape of a compact JWS. */
export function assertJwtShape(token: unknown): asserts token is string {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) throw malformedToken();
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

/** Not a JWT at all (garbage, wrong segment count, bad base64/JSON). */
export function malformedToken(): TetherError {
  return new TetherError('AUTH_INVALID', AUTH_MESSAGES.malformed);
}

/** A JWT we refuse (signature, algorithm, issuer, audience, nbf, kid…). */
export function invalidToken(cause?: unknown): TetherError {
  return new TetherError('AUTH_INVALID', AUTH_MESSAGES.invalid, cause === undefined ? undefined : { cause });
}
