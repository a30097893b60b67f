import { createHmac, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createSigner as createAppSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_MESSAGES, TetherError } from '@tether/protocol';
import { createAuthenticator } from '../packages/server/src/auth/authenticator.js';
import { createSigner, createVerifier } from '../packages/server/src/auth/jwt.js';
import { jwks, loadKeys, type KeyMaterial, type PublicJwk } from '../packages/server/src/auth/keys.js';
import { createRevocationState } from '../packages/server/src/auth/revocations.js';
import type { Authenticator, TokenSigner } from '../packages/server/src/auth/types.js';
import { configFrom, type Config, type SettingName } from '../packages/server/src/config/index.js';
import { FakeClock } from '../packages/server/src/hub/testing.js';
import { systemClock, type Clock } from '../packages/server/src/util/clock.js';
import { createLogger } from '../packages/server/src/util/logger.js';

const SECRET = randomBytes(32).toString('base64url');
const dirs: string[] = [];
const servers: Server[] = [];

interface Setup {
  config: Config;
  keys: KeyMaterial;
  signer: TokenSigner | undefined;
  auth: Authenticator;
}

async function setup(
  env: Partial<Record<SettingName, string>>,
  clock: Clock = systemClock,
  logs?: string[],
): Promise<Setup> {
  const dataDir = env.DATA_DIR ?? mkdtempSync(join(tmpdir(), 'tether-jwt-'));
  if (env.DATA_DIR === undefined) dirs.push(dataDir);
  const config = configFrom({ DATA_DIR: dataDir, ...env });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs?.push(chunk.toString());
      done();
    },
  });
  const keys = await loadKeys(config, createLogger('info', sink));
  return {
    config,
    keys,
    signer: createSigner(keys, config, clock),
    auth: createAuthenticator(createVerifier(keys, config, clock), createRevocationState(clock)),
  };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'u1',
  iss: 'tether',
  aud: 'tether',
  iat: nowSeconds(),
  exp: nowSeconds() + 60,
  ...extra,
});

/** Builds a token by hand, as an attacker would: any header, any HMAC key. */
function handmade(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  hmacKey?: string | Buffer,
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = hmacKey === undefined ? '' : createHmac('sha256', hmacKey).update(input).digest('base64url');
  return `${input}.${signature}`;
}

function pem(key: KeyObject): string {
  return key.type === 'private'
    ? key.export({ type: 'pkcs8', format: 'pem' }).toString()
    : key.export({ type: 'spki', format: 'pem' }).toString();
}

async function refusal(promise: Promise<unknown>): Promise<TetherError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TetherError);
  return error as TetherError;
}

async function expectInvalid(promise: Promise<unknown>, message: string = AUTH_MESSAGES.invalid): Promise<void> {
  const e = await refusal(promise);
  expect({ code: e.code, message: e.message }).toEqual({ code: 'AUTH_INVALID', message });
}

/** A JWKS endpoint of an "app backend" on 127.0.0.1, port 0, whose key set the test can change. */
async function jwksServer(
  initial: PublicJwk[],
): Promise<{ url: string; keys: PublicJwk[]; fetches: () => number; close: () => Promise<void> }> {
  const state = { keys: initial, fetches: 0 };
  const server = createServer((_req, res) => {
    state.fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get keys() {
      return state.keys;
    },
    set keys(value) {
      state.keys = value;
    },
    fetches: () => state.fetches,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An app backend: an asymmetric key pair, its public JWK under `kid`, and a fast-jwt signer. */
function appBackend(type: 'ec' | 'ed25519', kid: string) {
  const { privateKey, publicKey } =
    type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const alg = type === 'ec' ? 'ES256' : 'EdDSA';
  const sign = createAppSigner({
    key: pem(privateKey),
    algorithm: alg,
    kid,
    iss: 'tether',
    aud: 'tether',
    expiresIn: 600_000,
  });
  return {
    jwk: { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), kid, alg, use: 'sig' },
    sign,
    publicPem: pem(publicKey),
    privatePem: pem(privateKey),
  };
}

afterAll(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('HS256 verification', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup({ JWT_SECRET: SECRET });
  });

  it('accepts a valid token signed with the configured secret', async () => {
    const { token } = s.signer!.sign({ sub: 'u1', scopes: ['ke/muranga'] }, 60);
    await expect(s.auth.authenticate(token)).resolves.toMatchObject({
      userId: 'u1',
      scopes: ['ke/muranga'],
      isGuest: false,
    });
  });

  it('an expired token gets AUTH_EXPIRED with the contract message', async () => {
    const past = new FakeClock(Date.now() - 120_000);
    const { token } = createSigner(s.keys, s.config, past)!.sign({ sub: 'u1' }, 60);
    const e = await refusal(s.auth.authenticate(token));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'AUTH_EXPIRED', message: AUTH_MESSAGES.expired });
  });

  it('a token signed with another secret is invalid', async () => {
    await expectInvalid(s.auth.authenticate(handmade({ alg: 'HS256', typ: 'JWT' }, claims(), randomBytes(32))));
  });

  it('a token with another algorithm is invalid, even with the right secret', async () => {
    const hs512 = createAppSigner({ key: SECRET, algorithm: 'HS512', iss: 'tether', aud: 'tether', expiresIn: 60_000 });
    await expectInvalid(s.auth.authenticate(hs512({ sub: 'u1' })));
    await expectInvalid(s.auth.authenticate(appBackend('ec', 'k').sign({ sub: 'u1' })));
  });

  it('an unsigned alg:none token is invalid', async () => {
    await expectInvalid(s.auth.authenticate(handmade({ alg: 'none', typ: 'JWT' }, claims())));
    await expectInvalid(s.auth.authenticate(handmade({ alg: 'NONE' }, claims())));
  });

  it('wrong iss, wrong aud, a missing iss, a missing exp and nbf in the future are invalid', async () => {
    for (const payload of [
      claims({ iss: 'someone-else' }),
      claims({ aud: 'other-app' }),
      claims({ iss: undefined }),
      claims({ exp: undefined }),
      claims({ nbf: nowSeconds() + 60 }),
    ]) {
      await expectInvalid(s.auth.authenticate(handmade({ alg: 'HS256', typ: 'JWT' }, payload, SECRET)));
    }
    // The same hand-built path with correct claims is accepted: the refusals above are the claims'.
    await expect(s.auth.authenticate(handmade({ alg: 'HS256', typ: 'JWT' }, claims(), SECRET))).resolves.toMatchObject({
      userId: 'u1',
    });
  });

  it('strings that are not JWTs get the malformed message, never another error', async () => {
    const garbage = [
      '',
      'abc',
      'a.b.c',
      'a.b',
      'a.b.c.d',
      randomBytes(48).toString('base64'),
      randomBytes(48).toString('base64url'),
      'Bearer x.y.z',
      `${b64({ alg: 'HS256' })}.not-json.sig`,
      '{}.{}.{}',
      'x'.repeat(20_000),
    ];
    for (const token of garbage) await expectInvalid(s.auth.authenticate(token), AUTH_MESSAGES.malformed);
  });
});

describe('asymmetric signing keys', () => {
  for (const type of ['ec', 'ed25519'] as const) {
    it(`${type === 'ec' ? 'ES256' : 'EdDSA'}: tokens round-trip, and a second gateway trusting the published JWKS accepts them`, async () => {
      const issuer = await setup({ JWT_PRIVATE_KEY: appBackend(type, 'unused').privatePem });
      const { token } = issuer.signer!.sign({ sub: 'u1', guest: false }, 60);
      await expect(issuer.auth.authenticate(token)).resolves.toMatchObject({ userId: 'u1' });

      const published = jwks(issuer.keys);
      expect(published?.keys[0]).toMatchObject({ alg: type === 'ec' ? 'ES256' : 'EdDSA', use: 'sig' });
      expect(published?.keys[0]).not.toHaveProperty('d');
      const endpoint = await jwksServer(published!.keys);
      const follower = await setup({ JWT_JWKS_URL: endpoint.url });
      expect(follower.signer).toBeUndefined();
      await expect(follower.auth.authenticate(token)).resolves.toMatchObject({ userId: 'u1' });
      await endpoint.close();
    });
  }

  it('HS256 signed with the ES256 public key as HMAC secret is refused (algorithm confusion)', async () => {
    const app = appBackend('ec', 'k1');
    const viaPublicKey = await setup({ JWT_PUBLIC_KEY: app.publicPem });
    await expect(viaPublicKey.auth.authenticate(app.sign({ sub: 'u1' }))).resolves.toMatchObject({ userId: 'u1' });
    await expectInvalid(
      viaPublicKey.auth.authenticate(handmade({ alg: 'HS256', typ: 'JWT' }, claims(), app.publicPem)),
    );

    const ownKey = await setup({ JWT_PRIVATE_KEY: app.privatePem });
    const ourPublicPem = ownKey.keys.signing?.kind === 'private' ? ownKey.keys.signing.publicKeyPem : '';
    await expectInvalid(ownKey.auth.authenticate(handmade({ alg: 'HS256', typ: 'JWT' }, claims(), ourPublicPem)));
  });

  it('an app token claiming guest is a user, not a guest', async () => {
    const app = appBackend('ec', 'k1');
    const s = await setup({ JWT_PUBLIC_KEY: app.publicPem });
    await expect(s.auth.authenticate(app.sign({ sub: 'guest:123', guest: true }))).resolves.toMatchObject({
      userId: 'guest:123',
      isGuest: false,
    });
  });
});

describe('JWKS of an app backend', () => {
  it('accepts the app backend token, refuses an unknown kid, and picks up a rotated key', async () => {
    const k1 = appBackend('ec', 'k1');
    const endpoint = await jwksServer([k1.jwk]);
    const s = await setup({ JWT_JWKS_URL: endpoint.url });

    await expect(
      s.auth.authenticate(k1.sign({ sub: 'app-user', scopes: 'ke/nyeri ke/muranga', channels: ['project:1'] })),
    ).resolves.toMatchObject({
      userId: 'app-user',
      scopes: ['ke/nyeri', 'ke/muranga'],
      channels: ['project:1'],
    });
    const fetchesAfterFirst = endpoint.fetches();
    await s.auth.authenticate(k1.sign({ sub: 'app-user' }));
    expect(endpoint.fetches()).toBe(fetchesAfterFirst); // cached by kid

    const stranger = appBackend('ec', 'k-unknown');
    await expectInvalid(s.auth.authenticate(stranger.sign({ sub: 'app-user' })));

    const k2 = appBackend('ed25519', 'k2');
    endpoint.keys = [k1.jwk, k2.jwk];
    await expect(s.auth.authenticate(k2.sign({ sub: 'rotated' }))).resolves.toMatchObject({ userId: 'rotated' });
    await endpoint.close();
  });

  it('refuses HS256 and alg:none before fetching anything, and a token without kid', async () => {
    const k1 = appBackend('ec', 'k1');
    const endpoint = await jwksServer([k1.jwk]);
    const s = await setup({ JWT_JWKS_URL: endpoint.url });
    await expectInvalid(s.auth.authenticate(handmade({ alg: 'HS256', kid: 'k1' }, claims(), JSON.stringify(k1.jwk))));
    await expectInvalid(s.auth.authenticate(handmade({ alg: 'none', kid: 'k1' }, claims())));
    expect(endpoint.fetches()).toBe(0);
    const noKid = createAppSigner({
      key: k1.privatePem,
      algorithm: 'ES256',
      iss: 'tether',
      aud: 'tether',
      expiresIn: 60_000,
    });
    await expectInvalid(s.auth.authenticate(noKid({ sub: 'u1' })));
    await endpoint.close();
  });

  it('a flood of made-up kids costs at most 10 JWKS fetches a minute, and a real new kid is picked up after the minute', async () => {
    const k1 = appBackend('ec', 'k1');
    const endpoint = await jwksServer([k1.jwk]);
    const clock = new FakeClock(Date.now());
    const s = await setup({ JWT_JWKS_URL: endpoint.url }, clock);
    await expect(s.auth.authenticate(k1.sign({ sub: 'u1' }))).resolves.toMatchObject({ userId: 'u1' });
    const forger = appBackend('ec', 'x');
    const sign = createAppSigner({
      key: forger.privatePem,
      algorithm: 'ES256',
      iss: 'tether',
      aud: 'tether',
      expiresIn: 60_000,
    });
    for (let i = 0; i < 25; i++)
      await expectInvalid(
        s.auth.authenticate(sign({ sub: 'u1' }).replace(/^[^.]+/, b64({ alg: 'ES256', kid: `made-up-${i}` }))),
      );
    expect(endpoint.fetches()).toBe(1 + 9);
    // The key already in use keeps working meanwhile (it is cached).
    await expect(s.auth.authenticate(k1.sign({ sub: 'u1' }))).resolves.toMatchObject({ userId: 'u1' });

    const k2 = appBackend('ec', 'k2');
    endpoint.keys = [k1.jwk, k2.jwk];
    await expectInvalid(s.auth.authenticate(k2.sign({ sub: 'u2' })));
    clock.advance(60_000);
    await expect(s.auth.authenticate(k2.sign({ sub: 'u2' }))).resolves.toMatchObject({ userId: 'u2' });
    await endpoint.close();
  });

  it('an unreachable JWKS endpoint is a retryable INTERNAL error, not an invalid token', async () => {
    const k1 = appBackend('ec', 'k1');
    const endpoint = await jwksServer([k1.jwk]);
    const s = await setup({ JWT_JWKS_URL: endpoint.url });
    await endpoint.close();
    const e = await refusal(s.auth.authenticate(k1.sign({ sub: 'u1' })));
    expect(e.code).toBe('INTERNAL');
    expect(e.retryable).toBe(true);
  });
});

describe('development key', () => {
  it('is generated once into DATA_DIR (mode 0600), re-used on the next start, and never logged', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'tether-dev-')), 'nested', 'data');
    dirs.push(dataDir);
    const logs: string[] = [];
    const first = await setup({ DATA_DIR: dataDir }, systemClock, logs);
    const second = await setup({ DATA_DIR: dataDir }, systemClock, logs);

    const file = join(dataDir, 'dev-jwt-secret');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.keys.signing).toMatchObject({ kind: 'secret', algorithm: 'HS256', generated: true });
    const secret = first.keys.signing?.kind === 'secret' ? first.keys.signing.secret : Buffer.alloc(0);
    expect(secret.length).toBe(64);

    // A token from the first start verifies after the "restart".
    const { token } = first.signer!.sign({ sub: 'u1' }, 60);
    await expect(second.auth.authenticate(token)).resolves.toMatchObject({ userId: 'u1' });

    const text = logs.join('');
    const warnings = logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]?.msg).toContain('development key');
    expect(text).not.toContain(readFileSync(file, 'utf8').trim());
    expect(text).not.toContain(secret.toString('hex'));
    expect(text).not.toContain(secret.toString('base64'));
  });
});

describe('revocation', () => {
  it('a user revoked before now is refused; a token issued a millisecond later is accepted', async () => {
    const clock = new FakeClock(Date.now());
    const s = await setup({ JWT_SECRET: SECRET }, clock);
    const before = s.signer!.sign({ sub: 'u1' }, 60).token;
    const otherUser = s.signer!.sign({ sub: 'u2' }, 60).token;
    s.auth.revocations.revokeUser('u1', clock.now());

    const e = await refusal(s.auth.authenticate(before));
    expect(e.code).toBe('AUTH_REVOKED');
    await expect(s.auth.authenticate(otherUser)).resolves.toMatchObject({ userId: 'u2' });

    clock.advance(1);
    const after = s.signer!.sign({ sub: 'u1' }, 60).token;
    await expect(s.auth.authenticate(after)).resolves.toMatchObject({ userId: 'u1' });
  });

  it('a revoked family refuses its access tokens while other sessions of the user continue', async () => {
    const clock = new FakeClock(Date.now());
    const s = await setup({ JWT_SECRET: SECRET }, clock);
    const revoked = s.signer!.sign({ sub: 'u1', sid: 'fam-a' }, 60);
    const other = s.signer!.sign({ sub: 'u1', sid: 'fam-b' }, 60).token;
    s.auth.revocations.revokeFamily('fam-a', revoked.expiresAt);

    expect((await refusal(s.auth.authenticate(revoked.token))).code).toBe('AUTH_REVOKED');
    await expect(s.auth.authenticate(other)).resolves.toMatchObject({ sessionFamilyId: 'fam-b' });
  });

  it('a disabled user is refused for every token until restored', async () => {
    const clock = new FakeClock(Date.now());
    const s = await setup({ JWT_SECRET: SECRET }, clock);
    s.auth.revocations.revokeUser('u1', Number.POSITIVE_INFINITY);
    clock.advance(1_000);
    expect((await refusal(s.auth.authenticate(s.signer!.sign({ sub: 'u1' }, 60).token))).code).toBe('AUTH_REVOKED');
    s.auth.revocations.restoreUser('u1', clock.now());
    clock.advance(1);
    await expect(s.auth.authenticate(s.signer!.sign({ sub: 'u1' }, 60).token)).resolves.toMatchObject({ userId: 'u1' });
  });
});
