import { describe, expect, it } from 'vitest';
import { AUTH_MESSAGES, TetherError } from '@tether/protocol';
import { NBF_TOLERANCE_MS, plainPrincipal, principalFromClaims, principalWith, scopesOf } from './claims.js';

const NOW = 1_700_000_000_000;
const base = { sub: 'u1', iat: NOW / 1000 - 10, exp: NOW / 1000 + 60 };

function refusal(fn: () => unknown): TetherError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TetherError) return error;
    throw error;
  }
  throw new Error('expected a TetherError');
}

describe('principalFromClaims', () => {
  it('maps the standard and Tether claims onto a principal', () => {
    const claims = {
      ...base,
      iat_ms: base.iat * 1000 + 123,
      jti: 'j1',
      sid: 'fam1',
      role: 'agent',
      channels: ['project:42', 'project:42', 7],
      extra: 'kept',
    };
    const p = principalFromClaims(claims, true, NOW);
    expect(p).toMatchObject({
      userId: 'u1',
      isGuest: false,
      role: 'agent',
      channels: ['project:42'],
      expiresAt: base.exp * 1000,
      issuedAt: base.iat * 1000 + 123,
      tokenId: 'j1',
      sessionFamilyId: 'fam1',
    });
    expect(p.claims).toBe(claims);
  });

  it('expires exactly at exp, not a millisecond later', () => {
    expect(principalFromClaims(base, true, base.exp * 1000 - 1).userId).toBe('u1');
    const e = refusal(() => principalFromClaims(base, true, base.exp * 1000));
    expect(e.code).toBe('AUTH_EXPIRED');
    expect(e.message).toBe(AUTH_MESSAGES.expired);
  });

  it('accepts nbf up to 5 s in the future and refuses it beyond', () => {
    const nbf = NOW / 1000 + NBF_TOLERANCE_MS / 1000;
    expect(principalFromClaims({ ...base, nbf }, true, NOW).userId).toBe('u1');
    const e = refusal(() => principalFromClaims({ ...base, nbf: nbf + 1 }, true, NOW));
    expect([e.code, e.message]).toEqual(['AUTH_INVALID', AUTH_MESSAGES.invalid]);
  });

  it('refuses a token without exp, without sub, or with non-numeric time claims', () => {
    for (const claims of [
      { sub: 'u1' },
      { exp: base.exp },
      { ...base, sub: '' },
      { ...base, exp: String(base.exp) },
      { ...base, nbf: 'soon' },
    ]) {
      const e = refusal(() => principalFromClaims(claims, true, NOW));
      expect([e.code, e.message]).toEqual(['AUTH_INVALID', AUTH_MESSAGES.invalid]);
    }
  });

  it('honours guest only for tokens signed with our own key', () => {
    expect(principalFromClaims({ ...base, guest: true }, true, NOW).isGuest).toBe(true);
    expect(principalFromClaims({ ...base, guest: true }, false, NOW).isGuest).toBe(false);
    expect(principalFromClaims({ ...base, guest: 'true' }, true, NOW).isGuest).toBe(false);
  });

  it('takes iat_ms only when it agrees with iat, and treats a token without iat as issued at the epoch', () => {
    expect(principalFromClaims({ ...base, iat_ms: NOW + 60_000 }, true, NOW).issuedAt).toBe(base.iat * 1000);
    expect(principalFromClaims({ sub: 'u1', exp: base.exp }, true, NOW).issuedAt).toBe(0);
  });
});

describe('a principal read from its claims', () => {
  const claims = { ...base, iat_ms: base.iat * 1000 + 5, jti: 'j2', sid: 'fam2', role: 'admin', scopes: ['ke'] };
  const fields = {
    userId: 'u1',
    isGuest: false,
    role: 'admin',
    scopes: ['ke'],
    channels: [],
    expiresAt: base.exp * 1000,
    issuedAt: base.iat * 1000 + 5,
    tokenId: 'j2',
    sessionFamilyId: 'fam2',
    claims,
  };

  it('keeps only the claims and the grants, and shows every field when copied or serialized', () => {
    const p = principalFromClaims(claims, true, NOW);
    // What a connection keeps: the claims object and the normalized grants, no copies of the rest.
    expect(Object.keys(p).sort()).toEqual(['channels', 'claims', 'isGuest', 'scopes']);
    expect(plainPrincipal(p)).toEqual(fields);
    expect(JSON.parse(JSON.stringify(p))).toEqual(JSON.parse(JSON.stringify(fields)));
  });

  it('principalWith: the same principal for the same grants, else a copy that still reads its claims', () => {
    const p = principalFromClaims(claims, true, NOW);
    expect(principalWith(p, p.scopes)).toBe(p);
    const narrower = principalWith(p, ['ke/nairobi'], ['project:1']);
    expect(plainPrincipal(narrower)).toEqual({ ...fields, scopes: ['ke/nairobi'], channels: ['project:1'] });
    expect(p.scopes).toEqual(['ke']);
    // A plain principal (an app's own, or a test's) is copied as a plain object.
    const plain = plainPrincipal(p);
    expect(principalWith(plain, ['x'])).toEqual({ ...fields, scopes: ['x'] });
  });
});

describe('scopesOf', () => {
  it('normalizes arrays and space-separated strings and drops invalid paths', () => {
    expect(scopesOf(['/ke/muranga/', 'ke//x', 'ke/muranga', '*', 3])).toEqual(['ke/muranga', '*']);
    expect(scopesOf(' ke/nyeri  ke/muranga bad//path ')).toEqual(['ke/nyeri', 'ke/muranga']);
    expect(scopesOf(undefined)).toEqual([]);
    expect(scopesOf({ a: 1 })).toEqual([]);
  });

  it('returns a claim array that is already normalized and duplicate-free itself, and copies any other', () => {
    const normal = ['ke/muranga', '*'];
    expect(scopesOf(normal)).toBe(normal);
    const principal = principalFromClaims({ ...base, scopes: normal }, true, NOW);
    expect(principal.scopes).toBe(principal.claims.scopes);
    for (const raw of [['ke/muranga', 'ke/muranga'], ['/ke/muranga'], ['ke/muranga', 3]]) {
      const copy = scopesOf(raw);
      expect(copy).not.toBe(raw);
      expect(copy).toEqual(['ke/muranga']);
    }
    // Long lists are checked for repeats with a Set: the same answers.
    const long = Array.from({ length: 40 }, (_, i) => `ke/${i}`);
    expect(scopesOf(long)).toBe(long);
    const repeated = [...long, 'ke/7'];
    expect(scopesOf(repeated)).not.toBe(repeated);
    expect(scopesOf(repeated)).toEqual(long);
  });
});

describe('channels', () => {
  it('a token allowing no channel shares one frozen empty array; one with channels gets its own', () => {
    const none = principalFromClaims(base, true, NOW).channels;
    expect(none).toEqual([]);
    expect(Object.isFrozen(none)).toBe(true);
    expect(principalFromClaims({ ...base, channels: [] }, true, NOW).channels).toBe(none);
    expect(principalFromClaims({ ...base, channels: [3, ''] }, true, NOW).channels).toBe(none);
    const some = principalFromClaims({ ...base, channels: ['project:42'] }, true, NOW).channels;
    expect(some).toEqual(['project:42']);
    expect(Object.isFrozen(some)).toBe(false);
  });
});
