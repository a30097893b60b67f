// HS256 access tokens as Tether's built-in token service issues them (iss/aud 'tether').
import { createSigner } from 'fast-jwt';

/** Returns `sign(sub, scopes, ttlSeconds, nonce?)`. */
export function createTokenSigner(secret) {
  const signer = createSigner({ key: secret, algorithm: 'HS256' });
  return (sub, scopes, ttlSeconds = 3600, nonce = 0) =>
    signer({
      iss: 'tether',
      aud: 'tether',
      sub,
      scopes,
      // A distinct jti keeps every token distinct even when issued in the same second.
      jti: `${sub}.${nonce}`,
      exp: Math.floor(Date.now() / 1000) + ttlSeconds,
    });
}
