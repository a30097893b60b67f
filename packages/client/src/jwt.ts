/**
 * Reads a JWT's claims without verifying it: the client only needs `exp` to plan refreshes; the
 * server verifies. Self-contained base64url decoding, because `atob`/`Buffer` are not everywhere.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const LOOKUP: Record<string, number> = Object.fromEntries([...ALPHABET].map((c, i) => [c, i]));

function base64UrlToUtf8(input: string): string | undefined {
  const clean = input.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  let bits = 0;
  let value = 0;
  let encoded = '';
  for (const char of clean) {
    const v = LOOKUP[char];
    if (v === undefined) return undefined;
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      encoded += '%' + ((value >> bits) & 0xff).toString(16).padStart(2, '0');
    }
  }
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

/** The payload of a JWT, or undefined when the string is not a JWT with a JSON object payload. */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  const json = base64UrlToUtf8(parts[1]);
  if (json === undefined) return undefined;
  try {
    const payload: unknown = JSON.parse(json);
    return payload !== null && typeof payload === 'object' && !Array.isArray(payload)
      ? (payload as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** `exp` in ms since the epoch, or undefined when the token carries none. */
export function tokenExpiry(token: string): number | undefined {
  const exp = decodeJwtPayload(token)?.['exp'];
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
}
