import { describe, expect, it } from 'vitest';
import {
  hashRefreshToken,
  isRefreshTokenFormat,
  newRefreshToken,
  openGracePair,
  sealGracePair,
} from './refresh-crypto.js';

describe('refresh token material', () => {
  it('makes 43-character base64url tokens, all different', () => {
    const tokens = new Set(Array.from({ length: 100 }, newRefreshToken));
    expect(tokens.size).toBe(100);
    for (const t of tokens) expect(isRefreshTokenFormat(t)).toBe(true);
    expect(isRefreshTokenFormat('short')).toBe(false);
    expect(isRefreshTokenFormat('a'.repeat(42) + '=')).toBe(false);
  });

  it('hashes to SHA-256 hex that does not contain the token', () => {
    const token = newRefreshToken();
    const hash = hashRefreshToken(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashRefreshToken(token)).toBe(hash);
    expect(hash).not.toContain(token);
  });

  it('seals a pair that only the same token and row id can open', () => {
    const token = newRefreshToken();
    const pair = { access_token: 'a.b.c', refresh_token: newRefreshToken(), accessExpiresAt: 123 };
    const sealed = sealGracePair(token, 'row-1', pair);
    expect(sealed).not.toContain(pair.refresh_token);
    expect(openGracePair(token, 'row-1', sealed)).toEqual(pair);
    expect(openGracePair(newRefreshToken(), 'row-1', sealed)).toBeUndefined();
    expect(openGracePair(token, 'row-2', sealed)).toBeUndefined();
    expect(openGracePair(hashRefreshToken(token), 'row-1', sealed)).toBeUndefined();
  });

  it('refuses tampered or malformed ciphertext', () => {
    const token = newRefreshToken();
    const sealed = sealGracePair(token, 'row', { x: 1 });
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0] = body[0]! ^ 1;
    expect(
      openGracePair(token, 'row', [parts[0], parts[1], parts[2], body.toString('base64url')].join('.')),
    ).toBeUndefined();
    expect(openGracePair(token, 'row', 'garbage')).toBeUndefined();
    expect(openGracePair(token, 'row', 'v1.a.b.c')).toBeUndefined();
  });
});
