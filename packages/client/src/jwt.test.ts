import { describe, expect, it } from 'vitest';
import { decodeJwtPayload, tokenExpiry } from './jwt.js';

function fakeJwt(payload: object): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64url');
  return `${b64('{"alg":"HS256"}')}.${b64(JSON.stringify(payload))}.sig`;
}

describe('jwt decoding', () => {
  it('reads exp in ms and unicode claims', () => {
    const token = fakeJwt({ sub: 'u1', exp: 1_700_000_000, name: 'Wanjirũ 🚀' });
    expect(tokenExpiry(token)).toBe(1_700_000_000_000);
    expect(decodeJwtPayload(token)?.['name']).toBe('Wanjirũ 🚀');
  });

  it('returns undefined for strings that are not JWTs', () => {
    expect(decodeJwtPayload('nope')).toBeUndefined();
    expect(decodeJwtPayload('a.b!.c')).toBeUndefined();
    expect(decodeJwtPayload(`x.${Buffer.from('[1]').toString('base64url')}.y`)).toBeUndefined();
    expect(tokenExpiry(fakeJwt({ sub: 'u' }))).toBeUndefined();
  });
});
