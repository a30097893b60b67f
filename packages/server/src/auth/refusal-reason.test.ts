import { createHmac } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import { describe, expect, it } from 'vitest';
import { AUTH_MESSAGES, TetherError } from '@tether/protocol';
import { invalidToken } from './jwt-format.js';
import {
  MAX_REASON_VALUE_LENGTH,
  reasonForVerifierError,
  reasonOf,
  shown,
  withReason,
  type VerifierContext,
} from './refusal-reason.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const verify = createVerifier({
  key: SECRET,
  algorithms: ['HS256'],
  allowedIss: 'tether',
  allowedAud: 'tether',
  requiredClaims: ['iss', 'aud', 'sub', 'exp'],
  ignoreExpiration: true,
  cache: false,
});
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const base = { sub: 'u1', iss: 'tether', aud: 'tether', exp: 2_000_000_000 };

/** The reason fast-jwt's refusal of a token with this header and payload maps to. */
function reasonFor(header: Record<string, unknown>, payload: Record<string, unknown>, key: string = SECRET) {
  const input = `${b64(header)}.${b64(payload)}`;
  const token = `${input}.${createHmac(header.alg === 'HS512' ? 'sha512' : 'sha256', key)
    .update(input)
    .digest('base64url')}`;
  let error: unknown;
  try {
    verify(token);
  } catch (e) {
    error = e;
  }
  expect(error).toBeDefined();
  const context: VerifierContext = { header, payload, issuer: 'tether', audience: 'tether', algorithms: ['HS256'] };
  return reasonForVerifierError(error, context);
}

describe('reasonForVerifierError maps fast-jwt refusals to the check that failed', () => {
  it('iss and aud with expected and got; a missing one as got null', () => {
    expect(reasonFor({ alg: 'HS256' }, { ...base, iss: 'go-api' })).toEqual({
      check: 'iss',
      expected: 'tether',
      got: 'go-api',
    });
    expect(reasonFor({ alg: 'HS256' }, { ...base, aud: ['web', 'app'] })).toEqual({
      check: 'aud',
      expected: 'tether',
      got: ['web', 'app'],
    });
    expect(reasonFor({ alg: 'HS256' }, { ...base, iss: undefined })).toEqual({
      check: 'iss',
      expected: 'tether',
      got: null,
    });
  });

  it('both wrong: the issuer is named (fast-jwt would report aud first)', () => {
    expect(reasonFor({ alg: 'HS256' }, { ...base, iss: 'go-api', aud: 'web' })).toMatchObject({ check: 'iss' });
  });

  it('signature, algorithm (with the allow-list), and other claims', () => {
    expect(reasonFor({ alg: 'HS256' }, base, 'another-secret-another-secret-another')).toEqual({ check: 'signature' });
    expect(reasonFor({ alg: 'HS512' }, base)).toEqual({ check: 'alg', got: 'HS512', allowed: ['HS256'] });
    expect(reasonFor({ alg: 'HS256' }, { ...base, sub: undefined })).toEqual({
      check: 'claim',
      claim: 'sub',
      problem: 'missing',
    });
  });

  it('alg none (no signature) is named as the algorithm', () => {
    const token = `${b64({ alg: 'none' })}.${b64(base)}.`;
    let error: unknown;
    try {
      verify(token);
    } catch (e) {
      error = e;
    }
    expect(
      reasonForVerifierError(error, {
        header: { alg: 'none' },
        payload: base,
        issuer: 'tether',
        audience: 'tether',
        algorithms: ['HS256'],
      }),
    ).toEqual({ check: 'alg', got: 'none', allowed: ['HS256'] });
  });

  it('a valid token verifies (the refusals above are the claims and keys)', () => {
    const sign = createSigner({ key: SECRET, algorithm: 'HS256' });
    expect(verify(sign(base))).toMatchObject({ sub: 'u1' });
  });
});

describe('the reason stays off the error the client sees', () => {
  it('is readable with reasonOf, but not a property: toBody, JSON and keys are unchanged', () => {
    const error = invalidToken({ check: 'iss', expected: 'tether', got: 'go-api' });
    expect(reasonOf(error)).toEqual({ check: 'iss', expected: 'tether', got: 'go-api' });
    expect(error.toBody(1)).toEqual({ code: 'AUTH_INVALID', message: AUTH_MESSAGES.invalid, timestamp: 1 });
    expect(JSON.stringify(error)).not.toContain('go-api');
    expect(Object.getOwnPropertyNames(error).join()).not.toContain('reason');
    expect(reasonOf(new TetherError('AUTH_INVALID'))).toBeUndefined();
  });

  it('the first reason attached wins', () => {
    const error = withReason(new TetherError('AUTH_REVOKED'), { check: 'revoked', by: 'family' });
    withReason(error, { check: 'malformed' });
    expect(reasonOf(error)).toEqual({ check: 'revoked', by: 'family' });
  });

  it('values from the token are cut to 200 characters; non-strings are shown as short JSON', () => {
    expect(shown('x'.repeat(1000))).toBe(`${'x'.repeat(MAX_REASON_VALUE_LENGTH)}…`);
    expect(shown(42)).toBe('42');
    expect(shown({ a: 1 })).toBe('{"a":1}');
    expect(shown(undefined)).toBeNull();
  });
});
