import { createHmac, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_MESSAGES, ERRORS, type ErrorCode } from '@tether/protocol';
import type { AuthEvent } from '@tether/server';
import { startGateway, type Env } from './helpers/gateway.js';
import { SioClient, WsClient } from './helpers/realtime.js';

/**
 * Refused tokens are diagnosable: the log line and the auth-event feed name the check that failed
 * (with expected/got where there is one), the token never appears in the log, and the client still
 * gets only the contract's code and message.
 */

const SECRET = randomBytes(48).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token built by hand: any header, any claims, HMAC-signed with `key`. */
function hmacToken(header: Record<string, unknown>, payload: Record<string, unknown>, key: string | Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

function pem(key: KeyObject): string {
  return key.type === 'private'
    ? key.export({ type: 'pkcs8', format: 'pem' }).toString()
    : key.export({ type: 'spki', format: 'pem' }).toString();
}

/** An app backend's ES256 key pair and a signer that takes every claim from the payload. */
function appKey(kid: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signer = createSigner({ key: pem(privateKey), algorithm: 'ES256', kid });
  return {
    jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' },
    publicPem: pem(publicKey),
    sign: (claims: Record<string, unknown>) => signer(claims),
  };
}

const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'diag-user',
  iss: 'tether',
  aud: 'tether',
  iat: now(),
  exp: now() + 600,
  ...extra,
});

interface Expected {
  code: ErrorCode;
  message: string;
  reason: Record<string, unknown>;
}

const invalid = (reason: Record<string, unknown>): Expected => ({
  code: 'AUTH_INVALID',
  message: AUTH_MESSAGES.invalid,
  reason,
});

type LogLine = Record<string, unknown> & { msg: string };

/** A gateway whose log lines and auth events the test reads. */
async function diagnosableGateway(env: Env) {
  const gw = await startGateway(env);
  const events: AuthEvent[] = [];
  gw.gateway.onAuthEvent((event) => events.push(event));
  const lines = (): LogLine[] =>
    gw
      .logs()
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as LogLine);
  return { gw, events, lines };
}

type Diagnosable = Awaited<ReturnType<typeof diagnosableGateway>>;

/**
 * Presents `token` on `/ws` (Authorization header) and on Socket.IO (`auth.token`) and checks, for
 * each: the client's refusal is the contract's and nothing more; the "handshake refused" line and the
 * `handshake_failed` event carry `expected.reason`; no log line contains the token or its signature.
 */
async function expectRefusal(d: Diagnosable, token: string, expected: Expected): Promise<void> {
  const secrets = [token, token.slice(token.lastIndexOf('.') + 1)].filter((s) => s.length > 0);

  // /ws
  const linesBefore = d.lines().length;
  const eventsBefore = d.events.length;
  const ws = new WsClient(d.gw.url, { headers: { authorization: `Bearer ${token}` } });
  try {
    const frame = await ws.first('auth_error');
    expect(frame).toEqual({
      type: 'auth_error',
      code: expected.code,
      message: expected.message,
      timestamp: expect.any(Number),
    });
    await ws.closed();
  } finally {
    ws.close();
  }
  expectDiagnosed(d, linesBefore, eventsBefore, 'ws', expected);

  // Socket.IO
  const linesBeforeSio = d.lines().length;
  const eventsBeforeSio = d.events.length;
  const sio = new SioClient(d.gw.url, { auth: { token } });
  try {
    const refusal = await sio.refusal();
    expect(refusal.message).toBe(expected.code);
    expect(refusal.data).toEqual({ code: expected.code, message: expected.message, timestamp: expect.any(Number) });
  } finally {
    sio.close();
  }
  expectDiagnosed(d, linesBeforeSio, eventsBeforeSio, 'socket.io', expected);

  const logs = d.gw.logs();
  for (const secret of secrets) expect(logs).not.toContain(secret);
}

function expectDiagnosed(
  d: Diagnosable,
  linesBefore: number,
  eventsBefore: number,
  transport: string,
  expected: Expected,
): void {
  const refused = d
    .lines()
    .slice(linesBefore)
    .filter((l) => l.msg === 'handshake refused');
  expect(refused).toHaveLength(1);
  expect(refused[0]).toMatchObject({ level: 30, transport, code: expected.code, reason: expected.reason });
  const failed = d.events.slice(eventsBefore).filter((e) => e.type === 'handshake_failed');
  expect(failed).toHaveLength(1);
  expect(failed[0]).toMatchObject({ transport, code: expected.code, reason: 'handshake', failure: expected.reason });
}

const servers: Server[] = [];

/** The app backend's JWKS endpoint on 127.0.0.1, port 0. */
async function jwksEndpoint(keys: object[]): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
}

afterAll(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

describe("refusals of the gateway's own tokens (JWT_SECRET) name the failed check", () => {
  let d: Diagnosable;
  const sign = (payload: Record<string, unknown>, key: string = SECRET) =>
    hmacToken({ alg: 'HS256', typ: 'JWT' }, payload, key);

  beforeAll(async () => {
    d = await diagnosableGateway({ JWT_SECRET: SECRET });
  });
  afterAll(async () => {
    await d.gw.close();
  });

  it('wrong iss: expected and got', async () => {
    await expectRefusal(
      d,
      sign(claims({ iss: 'go-api' })),
      invalid({ check: 'iss', expected: 'tether', got: 'go-api' }),
    );
  });

  it('wrong aud: expected and got', async () => {
    await expectRefusal(d, sign(claims({ aud: 'web' })), invalid({ check: 'aud', expected: 'tether', got: 'web' }));
  });

  it('wrong key: the signature check', async () => {
    await expectRefusal(d, sign(claims(), randomBytes(32).toString('hex')), invalid({ check: 'signature' }));
  });

  it('wrong alg: the algorithm got and the allow-list', async () => {
    const hs512 = createSigner({ key: SECRET, algorithm: 'HS512' })(claims());
    await expectRefusal(d, hs512, invalid({ check: 'alg', got: 'HS512', allowed: ['HS256'] }));
  });

  it('expired: AUTH_EXPIRED, with when it expired', async () => {
    const exp = now() - 30;
    await expectRefusal(d, sign(claims({ iat: exp - 60, exp })), {
      code: 'AUTH_EXPIRED',
      message: AUTH_MESSAGES.expired,
      reason: { check: 'exp', expiredAt: exp * 1000, now: expect.any(Number) },
    });
  });

  it('nbf in the future', async () => {
    const nbf = now() + 120;
    await expectRefusal(
      d,
      sign(claims({ nbf })),
      invalid({ check: 'nbf', notBefore: nbf * 1000, now: expect.any(Number), toleranceMs: 5000 }),
    );
  });

  it('revoked (user kicked): AUTH_REVOKED, with the revocation instant', async () => {
    const token = d.gw.sign({ sub: 'kicked-user' });
    const kicked = await d.gw.api('POST', '/v1/users/kicked-user/disconnect');
    expect(kicked.status).toBe(200);
    await expectRefusal(d, token, {
      code: 'AUTH_REVOKED',
      message: ERRORS.AUTH_REVOKED.message,
      reason: { check: 'revoked', by: 'user', revokedBefore: expect.any(Number), issuedAt: expect.any(Number) },
    });
  });

  it('subject disabled: AUTH_REVOKED, naming the subject', async () => {
    const created = await d.gw.api('POST', '/v1/users', {
      email: 'disabled@example.com',
      password: 'a long enough password',
      name: 'Disabled',
      role: 'officer',
      scopes: ['ke/nyeri'],
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const token = d.gw.sign({ sub: id });
    expect((await d.gw.api('PATCH', `/v1/users/${id}`, { active: false })).status).toBe(200);
    await expectRefusal(d, token, {
      code: 'AUTH_REVOKED',
      message: ERRORS.AUTH_REVOKED.message,
      reason: { check: 'subject_disabled', sub: id },
    });
  });

  it('a token that is not a JWT: malformed, with the format message', async () => {
    await expectRefusal(d, `${b64({ alg: 'HS256' })}.not-json.c2ln`, {
      code: 'AUTH_INVALID',
      message: AUTH_MESSAGES.malformed,
      reason: { check: 'malformed' },
    });
  });

  it('an over-long iss is cut to 200 characters in the reason', async () => {
    const long = 'x'.repeat(1000);
    await expectRefusal(
      d,
      sign(claims({ iss: long })),
      invalid({ check: 'iss', expected: 'tether', got: `${'x'.repeat(200)}…` }),
    );
  });

  it('a refused reauth logs and feeds the reason; the client gets the code and message only', async () => {
    const ws = new WsClient(d.gw.url, { headers: { authorization: `Bearer ${d.gw.sign({ sub: 'reauth-user' })}` } });
    const sio = new SioClient(d.gw.url, { auth: { token: d.gw.sign({ sub: 'reauth-user' }) } });
    try {
      await ws.first('session_created');
      await sio.session();
      const badIss = sign(claims({ sub: 'reauth-user', iss: 'go-api' }));
      const otherUser = d.gw.sign({ sub: 'someone-else' });

      const linesBefore = d.lines().length;
      const eventsBefore = d.events.length;
      ws.send({ type: 'reauth', token: badIss });
      expect(await ws.first('reauth_error')).toEqual({
        type: 'reauth_error',
        code: 'AUTH_INVALID',
        message: AUTH_MESSAGES.invalid,
      });
      const ack = await sio.request('reauth', { token: otherUser });
      expect(ack).toEqual({ ok: false, code: 'AUTH_INVALID', message: AUTH_MESSAGES.invalid });

      const refused = d
        .lines()
        .slice(linesBefore)
        .filter((l) => l.msg === 'reauth refused');
      expect(refused).toEqual([
        expect.objectContaining({ code: 'AUTH_INVALID', reason: { check: 'iss', expected: 'tether', got: 'go-api' } }),
        expect.objectContaining({
          code: 'AUTH_INVALID',
          reason: { check: 'different_user', expected: 'reauth-user', got: 'someone-else' },
        }),
      ]);
      const failed = d.events.slice(eventsBefore).filter((e) => e.type === 'reauth_failed');
      expect(failed.map((e) => e.failure?.check)).toEqual(['iss', 'different_user']);
      expect(d.gw.logs()).not.toContain(badIss);
      expect(d.gw.logs()).not.toContain(otherUser);
    } finally {
      ws.close();
      sio.close();
    }
  });
});

describe("refusals of an app backend's tokens (JWT_JWKS_URL) name the failed check", () => {
  let d: Diagnosable;
  const app = appKey('k1');

  beforeAll(async () => {
    d = await diagnosableGateway({ JWT_SECRET: '', JWT_JWKS_URL: await jwksEndpoint([app.jwk]) });
  });
  afterAll(async () => {
    await d.gw.close();
  });

  it('a valid app token is accepted (the refusals below are the checks)', async () => {
    const sio = new SioClient(d.gw.url, { auth: { token: app.sign(claims()) } });
    try {
      expect((await sio.session()).userId).toBe('diag-user');
    } finally {
      sio.close();
    }
  });

  it('a Go backend with iss=go-api and aud=web: the issuer, expected and got, is named first', async () => {
    await expectRefusal(
      d,
      app.sign(claims({ iss: 'go-api', aud: 'web' })),
      invalid({ check: 'iss', expected: 'tether', got: 'go-api' }),
    );
  });

  it('wrong iss: expected and got', async () => {
    await expectRefusal(
      d,
      app.sign(claims({ iss: 'go-api' })),
      invalid({ check: 'iss', expected: 'tether', got: 'go-api' }),
    );
  });

  it('wrong aud (an array): expected and got', async () => {
    await expectRefusal(
      d,
      app.sign(claims({ aud: ['web', 'mobile'] })),
      invalid({ check: 'aud', expected: 'tether', got: ['web', 'mobile'] }),
    );
  });

  it('wrong key under a known kid: the signature check', async () => {
    const forger = appKey('k1');
    await expectRefusal(d, forger.sign(claims()), invalid({ check: 'signature' }));
  });

  it('unknown kid: the kid got', async () => {
    const stranger = appKey('k9');
    await expectRefusal(d, stranger.sign(claims()), invalid({ check: 'kid', got: 'k9', problem: 'unknown' }));
  });

  it('wrong alg: HS256 against the asymmetric allow-list', async () => {
    const token = hmacToken({ alg: 'HS256', kid: 'k1' }, claims(), JSON.stringify(app.jwk));
    await expectRefusal(d, token, invalid({ check: 'alg', got: 'HS256', allowed: expect.arrayContaining(['ES256']) }));
  });

  it('expired: AUTH_EXPIRED with when it expired', async () => {
    const exp = now() - 5;
    await expectRefusal(d, app.sign(claims({ iat: exp - 60, exp })), {
      code: 'AUTH_EXPIRED',
      message: AUTH_MESSAGES.expired,
      reason: { check: 'exp', expiredAt: exp * 1000 },
    });
  });
});

describe("refusals of an app backend's tokens (JWT_PUBLIC_KEY) name the failed check", () => {
  let d: Diagnosable;
  const app = appKey('any');

  beforeAll(async () => {
    d = await diagnosableGateway({ JWT_SECRET: '', JWT_PUBLIC_KEY: app.publicPem });
  });
  afterAll(async () => {
    await d.gw.close();
  });

  it('wrong aud: expected and got', async () => {
    await expectRefusal(d, app.sign(claims({ aud: 'web' })), invalid({ check: 'aud', expected: 'tether', got: 'web' }));
  });

  it('wrong key: the signature check', async () => {
    await expectRefusal(d, appKey('any').sign(claims()), invalid({ check: 'signature' }));
  });

  it('wrong alg (HS256 signed with the public key): the algorithm got and the allow-list', async () => {
    const token = hmacToken({ alg: 'HS256', typ: 'JWT' }, claims(), app.publicPem);
    await expectRefusal(d, token, invalid({ check: 'alg', got: 'HS256', allowed: ['ES256'] }));
  });

  it('alg none: the algorithm', async () => {
    const token = `${b64({ alg: 'none' })}.${b64(claims())}.`;
    await expectRefusal(d, token, invalid({ check: 'alg', got: 'none', allowed: ['ES256'] }));
  });
});
