import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configFrom, type SettingName } from '../config/index.js';
import { createLogger } from '../util/logger.js';
import { jwkThumbprint, jwks, loadKeys, type PublicJwk } from './keys.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const dirs: string[] = [];
const logger = createLogger('silent');

function env(overrides: Partial<Record<SettingName, string>>) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tether-keys-'));
  dirs.push(dataDir);
  return configFrom({ DATA_DIR: dataDir, ...overrides });
}

function pems(type: 'ec' | 'ed25519', namedCurve = 'P-256') {
  const { privateKey, publicKey } =
    type === 'ec' ? generateKeyPairSync('ec', { namedCurve }) : generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('loadKeys', () => {
  it('JWT_SECRET signs and verifies HS256 only, and publishes no JWKS', async () => {
    const keys = await loadKeys(env({ JWT_SECRET: SECRET }), logger);
    expect(keys.signing).toMatchObject({
      kind: 'secret',
      algorithm: 'HS256',
      verifyAlgorithms: ['HS256'],
      generated: false,
    });
    expect(keys.external).toBeUndefined();
    expect(jwks(keys)).toBeUndefined();
  });

  it('JWT_ALGORITHMS widens the HMAC allow-list and the first listed algorithm signs', async () => {
    const keys = await loadKeys(env({ JWT_SECRET: SECRET, JWT_ALGORITHMS: 'HS512,HS256' }), logger);
    expect(keys.signing).toMatchObject({ algorithm: 'HS256', verifyAlgorithms: ['HS256', 'HS512'] });
  });

  it('refuses a PEM key as JWT_SECRET', async () => {
    const e = await configError(loadKeys(env({ JWT_SECRET: pems('ec').publicPem }), logger));
    expect(e.setting).toBe('JWT_SECRET');
  });

  it('an EC P-256 private key signs ES256 with its RFC 7638 thumbprint as kid and publishes only public members', async () => {
    const keys = await loadKeys(env({ JWT_PRIVATE_KEY: pems('ec').privatePem }), logger);
    expect(keys.signing).toMatchObject({ kind: 'private', algorithm: 'ES256', verifyAlgorithms: ['ES256'] });
    const set = jwks(keys);
    expect(set?.keys).toHaveLength(1);
    const [jwk] = set?.keys ?? [];
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
    expect(jwk?.kid).toBe(keys.signing?.kind === 'private' ? keys.signing.kid : 'missing');
    expect(jwk?.kid).toBe(jwkThumbprint(jwk as PublicJwk));
  });

  it('an Ed25519 private key signs EdDSA', async () => {
    const keys = await loadKeys(env({ JWT_PRIVATE_KEY: pems('ed25519').privatePem }), logger);
    expect(keys.signing).toMatchObject({ kind: 'private', algorithm: 'EdDSA' });
    expect(jwks(keys)?.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
  });

  it('refuses an allow-list the key cannot honour (HS256 with an EC key is HS/RS confusion)', async () => {
    const e = await configError(
      loadKeys(env({ JWT_PRIVATE_KEY: pems('ec').privatePem, JWT_ALGORITHMS: 'ES256,HS256' }), logger),
    );
    expect(e.setting).toBe('JWT_ALGORITHMS');
    expect(e.message).toContain('HS256');
  });

  it('refuses unsupported curves and unparsable keys without quoting the key', async () => {
    const e1 = await configError(loadKeys(env({ JWT_PRIVATE_KEY: pems('ec', 'P-521').privatePem }), logger));
    expect(e1.setting).toBe('JWT_PRIVATE_KEY');
    const broken = '-----BEGIN PRIVATE KEY-----\nAAAAsecretmaterial\n-----END PRIVATE KEY-----';
    const e2 = await configError(loadKeys(env({ JWT_PRIVATE_KEY: broken }), logger));
    expect(e2.message).not.toContain('secretmaterial');
  });

  it('JWT_PUBLIC_KEY alone verifies only the algorithm the key implies and gives no signing key', async () => {
    const keys = await loadKeys(env({ JWT_PUBLIC_KEY: pems('ed25519').publicPem }), logger);
    expect(keys.signing).toBeUndefined();
    expect(keys.external).toMatchObject({ kind: 'public-key', algorithms: ['EdDSA'] });
  });

  it('JWT_JWKS_URL alone allows the asymmetric algorithms only, and refuses an HMAC-only allow-list', async () => {
    const keys = await loadKeys(env({ JWT_JWKS_URL: 'http://127.0.0.1:9/jwks.json' }), logger);
    expect(keys.signing).toBeUndefined();
    expect(keys.external).toMatchObject({ kind: 'jwks', algorithms: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'] });
    const e = await configError(
      loadKeys(env({ JWT_JWKS_URL: 'http://127.0.0.1:9/jwks.json', JWT_ALGORITHMS: 'HS256' }), logger),
    );
    expect(e.setting).toBe('JWT_ALGORITHMS');
  });

  it('refuses JWT_PUBLIC_KEY together with JWT_JWKS_URL', async () => {
    const e = await configError(
      loadKeys(env({ JWT_PUBLIC_KEY: pems('ec').publicPem, JWT_JWKS_URL: 'http://127.0.0.1:9/jwks.json' }), logger),
    );
    expect(e.setting).toBe('JWT_JWKS_URL');
  });

  it('a signing secret and an app public key can be combined: each with its own algorithms', async () => {
    const keys = await loadKeys(env({ JWT_SECRET: SECRET, JWT_PUBLIC_KEY: pems('ec').publicPem }), logger);
    expect(keys.signing).toMatchObject({ kind: 'secret', verifyAlgorithms: ['HS256'] });
    expect(keys.external).toMatchObject({ kind: 'public-key', algorithms: ['ES256'] });
  });
});

describe('development secret', () => {
  it('two gateways starting at once on a fresh DATA_DIR end up with the same secret', async () => {
    const config = env({});
    const [a, b] = await Promise.all([loadKeys(config, logger), loadKeys(config, logger)]);
    expect(
      a.signing?.kind === 'secret' && b.signing?.kind === 'secret' && a.signing.secret.equals(b.signing.secret),
    ).toBe(true);
  });

  it('tightens a copied file back to mode 0600 and refuses a truncated one by naming DATA_DIR', async () => {
    const config = env({});
    const file = join(config.dataDir, 'dev-jwt-secret');
    await loadKeys(config, logger);
    chmodSync(file, 0o644);
    await loadKeys(config, logger);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, 'short\n');
    const e = await configError(loadKeys(config, logger));
    expect(e.setting).toBe('DATA_DIR');
  });
});

describe('jwkThumbprint', () => {
  it('matches the RFC 7638 example', () => {
    const jwk = {
      kty: 'RSA',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
      alg: 'RS256',
      kid: '2011-04-29',
    };
    expect(jwkThumbprint(jwk)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });
});
