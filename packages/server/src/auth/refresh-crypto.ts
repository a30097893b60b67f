import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Refresh-token material. A token is 32 random bytes (base64url, 43 characters); the store keeps
 * only its SHA-256. The pair issued when a token is rotated is kept encrypted under a key derived
 * from the *old token itself*: a concurrent refresh that presents the same token inside the grace
 * window can decrypt it (on any node), while the database alone holds nothing usable.
 */

const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const HKDF_SALT = Buffer.from('tether/refresh-grace/v1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

export function newRefreshToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Whether a string can be one of our refresh tokens (cheap check before touching the store). */
export function isRefreshTokenFormat(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

/** SHA-256 hex: the only form in which a refresh token is stored or compared. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function graceKey(token: string, tokenId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(token, 'utf8'), HKDF_SALT, Buffer.from(tokenId, 'utf8'), 32));
}

/**
 * Encrypts `payload` (AES-256-GCM) under a key only the holder of `token` can derive.
 * `tokenId` binds the ciphertext to its row (also authenticated as associated data).
 */
export function sealGracePair(token: string, tokenId: string, payload: unknown): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', graceKey(token, tokenId), iv);
  cipher.setAAD(Buffer.from(tokenId, 'utf8'));
  const body = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return [
    VERSION,
    iv.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
    body.toString('base64url'),
  ].join('.');
}

/** Decrypts what `sealGracePair` produced; undefined when the token or ciphertext does not match. */
export function openGracePair(token: string, tokenId: string, sealed: string): unknown {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== VERSION) return undefined;
  try {
    const iv = Buffer.from(parts[1]!, 'base64url');
    const tag = Buffer.from(parts[2]!, 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', graceKey(token, tokenId), iv);
    decipher.setAAD(Buffer.from(tokenId, 'utf8'));
    decipher.setAuthTag(tag);
    const text = Buffer.concat([decipher.update(Buffer.from(parts[3]!, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
