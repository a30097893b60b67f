import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSigner } from 'fast-jwt';
import { afterEach, describe, expect, it } from 'vitest';
import { TetherError } from '@tether/protocol';
import { createJwksVerifier } from './jwks-verifier.js';
import type { PublicJwk } from './keys.js';

const servers: Server[] = [];

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

function ecKey(kid: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    jwk: { ...(publicKey.export({ format: 'jwk' }) as PublicJwk), kid },
    sign: createSigner({ key: pem, algorithm: 'ES256', kid, iss: 'tether', aud: 'tether', expiresIn: 60_000 }),
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TetherError);
  return (error as TetherError).code;
}

const verifierOptions = { allowedIss: 'tether', allowedAud: 'tether', cache: false };

describe('JWKS verifier', () => {
  it('answers INTERNAL when the JWKS endpoint does not answer in time', async () => {
    const url = await serve(() => undefined); // accepts, never responds
    const verify = createJwksVerifier({ url, algorithms: ['ES256'], verifierOptions, fetchTimeoutMs: 200 });
    expect(await codeOf(verify(ecKey('k1').sign({ sub: 'u1' })))).toBe('INTERNAL');
  });

  it('refuses a key published for encryption, or one whose type does not fit the algorithm', async () => {
    const enc = ecKey('enc');
    const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          keys: [
            { ...enc.jwk, use: 'enc' },
            { ...ed, kid: 'ed' },
          ],
        }),
      );
    });
    const verify = createJwksVerifier({ url, algorithms: ['ES256', 'EdDSA'], verifierOptions });
    expect(await codeOf(verify(enc.sign({ sub: 'u1' })))).toBe('AUTH_INVALID');
    const esClaimingEdKid = ecKey('ed').sign({ sub: 'u1' });
    expect(await codeOf(verify(esClaimingEdKid))).toBe('AUTH_INVALID');
  });

  it('verifies with the published key and looks it up only once while fresh', async () => {
    const k1 = ecKey('k1');
    let fetches = 0;
    const url = await serve((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [k1.jwk] }));
    });
    const verify = createJwksVerifier({ url, algorithms: ['ES256'], verifierOptions });
    await Promise.all([verify(k1.sign({ sub: 'u1' })), verify(k1.sign({ sub: 'u2' }))]);
    await expect(verify(k1.sign({ sub: 'u3' }))).resolves.toMatchObject({ sub: 'u3' });
    expect(fetches).toBe(1);
  });
});
