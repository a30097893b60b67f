import { generateKeyPairSync } from 'node:crypto';
import { createSigner as createAppSigner } from 'fast-jwt';
import { describe, expect, it } from 'vitest';
import { AUTH_MESSAGES, TetherError } from '@tether/protocol';
import { configFrom, type SettingName } from '../config/index.js';
import { FakeClock } from '../hub/testing.js';
import { createLogger } from '../util/logger.js';
import { createSigner, createVerifier } from './jwt.js';
import { loadKeys } from './keys.js';
import type { AccessClaims } from './types.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const logger = createLogger('silent');

async function setup(env: Partial<Record<SettingName, string>>) {
  const config = configFrom(env);
  const keys = await loadKeys(config, logger);
  const clock = new FakeClock(1_700_000_000_250);
  return { config, clock, signer: createSigner(keys, config, clock), verifier: createVerifier(keys, config, clock) };
}

function decode(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p ?? '', 'base64url').toString()),
  };
}

async function refusal(promise: Promise<unknown>): Promise<TetherError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TetherError);
  return error as TetherError;
}

describe('signer', () => {
  it('issues iss, aud, iat, ms-precision iat_ms, exp and a random jti, and verifies back to the same principal', async () => {
    const { signer, verifier, clock } = await setup({ JWT_SECRET: SECRET, JWT_ISSUER: 'iss-x', JWT_AUDIENCE: 'aud-y' });
    const signed = signer!.sign(
      { sub: 'u1', sid: 'fam1', role: 'agent', scopes: ['ke/muranga'], channels: ['project:42'] },
      60,
    );
    const { header, payload } = decode(signed.token);
    expect(header).toMatchObject({ alg: 'HS256', typ: 'JWT' });
    expect(header).not.toHaveProperty('kid');
    expect(payload).toMatchObject({
      sub: 'u1',
      iss: 'iss-x',
      aud: 'aud-y',
      iat: 1_700_000_000,
      iat_ms: 1_700_000_000_250,
      exp: 1_700_000_060,
    });
    expect(typeof payload.jti).toBe('string');
    expect(decode(signer!.sign({ sub: 'u1' }, 60).token).payload.jti).not.toBe(payload.jti);
    expect(signed).toMatchObject({ expiresAt: 1_700_000_060_000, expiresIn: 60 });

    const p = await verifier.verify(signed.token);
    expect(p).toMatchObject({
      userId: 'u1',
      sessionFamilyId: 'fam1',
      role: 'agent',
      scopes: ['ke/muranga'],
      channels: ['project:42'],
      issuedAt: clock.now(),
      expiresAt: signed.expiresAt,
    });
  });

  it('a caller cannot override the time claims, issuer or audience through the claims object', async () => {
    const { signer } = await setup({ JWT_SECRET: SECRET });
    const sneaky = { sub: 'u1', exp: 9_999_999_999, iat: 1, iss: 'evil', aud: 'evil' } as AccessClaims;
    const { payload } = decode(signer!.sign(sneaky, 60).token);
    expect(payload).toMatchObject({ exp: 1_700_000_060, iat: 1_700_000_000, iss: 'tether', aud: 'tether' });
  });

  it('puts the key thumbprint in the kid header of ES256 tokens', async () => {
    const privatePem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const config = configFrom({ JWT_PRIVATE_KEY: privatePem });
    const keys = await loadKeys(config, logger);
    const token = createSigner(keys, config)!.sign({ sub: 'u1' }, 60).token;
    expect(decode(token).header).toMatchObject({
      alg: 'ES256',
      kid: keys.signing?.kind === 'private' ? keys.signing.kid : 'missing',
    });
  });
});

describe('verifier timing', () => {
  it('accepts a token until the millisecond before exp and refuses it at exp with AUTH_EXPIRED', async () => {
    const { signer, verifier, clock } = await setup({ JWT_SECRET: SECRET });
    const { token, expiresAt } = signer!.sign({ sub: 'u1' }, 5);
    clock.advanceTo(expiresAt - 1);
    await expect(verifier.verify(token)).resolves.toMatchObject({ userId: 'u1' });
    clock.advanceTo(expiresAt);
    const e = await refusal(verifier.verify(token));
    expect([e.code, e.message]).toEqual(['AUTH_EXPIRED', AUTH_MESSAGES.expired]);
  });
});

describe('own key plus app key', () => {
  it('routes HS tokens to the own secret and others to the app key; guest is honoured only from our own tokens', async () => {
    const app = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { signer, verifier, clock } = await setup({
      JWT_SECRET: SECRET,
      JWT_PUBLIC_KEY: app.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    const ours = signer!.sign({ sub: 'guest:1', guest: true }, 60).token;
    await expect(verifier.verify(ours)).resolves.toMatchObject({ userId: 'guest:1', isGuest: true });

    const appSign = createAppSigner({
      key: app.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      algorithm: 'ES256',
      iss: 'tether',
      aud: 'tether',
      clockTimestamp: clock.now(),
    });
    await expect(verifier.verify(appSign({ sub: 'app-user', guest: true, exp: 1_700_000_060 }))).resolves.toMatchObject(
      { userId: 'app-user', isGuest: false },
    );

    const otherSecret = createAppSigner({
      key: 'another-secret-of-at-least-32-characters',
      algorithm: 'HS256',
      iss: 'tether',
      aud: 'tether',
      clockTimestamp: clock.now(),
    });
    const e = await refusal(verifier.verify(otherSecret({ sub: 'u1', exp: 1_700_000_060 })));
    expect([e.code, e.message]).toEqual(['AUTH_INVALID', AUTH_MESSAGES.invalid]);
  });
});
