/**
 * Token verification throughput on one core: raw fast-jwt (HS256, ES256, EdDSA; no cache, iss/aud
 * checked as Tether does) against Tether's full `authenticate()` path (shape check, fast-jwt, claims →
 * Principal, revocation lookup), including a JWKS-backed verifier with the key already cached.
 * jose is not installed, so it is not compared.
 *
 * Run ad hoc (no build needed):
 *   npx esbuild bench/jwt-verify.ts --bundle --platform=node --format=esm --conditions=source \
 *     --outfile=/tmp/jwt-verify.mjs --banner:js="import{createRequire}from'module';const require=createRequire(import.meta.url);" \
 *     && node /tmp/jwt-verify.mjs
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { createSigner as createFastSigner, createVerifier as createFastVerifier, type Algorithm } from 'fast-jwt';
import { createAuthenticator } from '../packages/server/src/auth/authenticator.js';
import { createSigner, createVerifier } from '../packages/server/src/auth/jwt.js';
import { jwks, loadKeys } from '../packages/server/src/auth/keys.js';
import { createRevocationState } from '../packages/server/src/auth/revocations.js';
import type { Authenticator } from '../packages/server/src/auth/types.js';
import { configFrom } from '../packages/server/src/config/index.js';
import { systemClock } from '../packages/server/src/util/clock.js';
import { createLogger } from '../packages/server/src/util/logger.js';

const CLAIMS = { sub: 'u1', scopes: ['bench/all', 'bench/g/1'], channels: ['project:1'] };
const logger = createLogger('silent');

function rateSync(fn: () => unknown, ms: number): number {
  for (let i = 0; i < 2000; i++) fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) for (let i = 0; i < 256; i++, n++) fn();
  return Math.round(n / ((performance.now() - t0) / 1000));
}

async function rateAsync(fn: () => Promise<unknown>, ms: number): Promise<number> {
  for (let i = 0; i < 2000; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) for (let i = 0; i < 64; i++, n++) await fn();
  return Math.round(n / ((performance.now() - t0) / 1000));
}

function pems(type: 'ec' | 'ed25519'): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } =
    type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function rawFastJwt(algorithm: Algorithm, signKey: string, verifyKey: string, ms: number): number {
  const token = createFastSigner({ key: signKey, algorithm, iss: 'tether', aud: 'tether', expiresIn: 3_600_000 })(
    CLAIMS,
  );
  const verify = createFastVerifier({
    key: verifyKey,
    algorithms: [algorithm],
    allowedIss: 'tether',
    allowedAud: 'tether',
    cache: false,
  });
  return rateSync(() => verify(token), ms);
}

async function tether(
  env: Record<string, string>,
): Promise<{ auth: Authenticator; token: string; keys: Awaited<ReturnType<typeof loadKeys>> }> {
  const config = configFrom({ DATA_DIR: tmpdir(), ...env });
  const keys = await loadKeys(config, logger);
  const auth = createAuthenticator(createVerifier(keys, config), createRevocationState(systemClock));
  // A populated revocation table, so the lookup is not against an empty map.
  for (let i = 0; i < 10_000; i++) auth.revocations.revokeUser(`other-${i}`, Date.now());
  const token = createSigner(keys, config)?.sign(CLAIMS, 3600).token ?? '';
  return { auth, token, keys };
}

/** Verifications per second for each path; printed as a table when run directly. */
export async function main(ms = 1000): Promise<Record<string, number>> {
  const secret = randomBytes(32).toString('base64url');
  const ec = pems('ec');
  const ed = pems('ed25519');
  const out: Record<string, number> = {};

  out['fast-jwt HS256 (raw)'] = rawFastJwt('HS256', secret, secret, ms);
  out['fast-jwt ES256 (raw)'] = rawFastJwt('ES256', ec.privatePem, ec.publicPem, ms);
  out['fast-jwt EdDSA (raw)'] = rawFastJwt('EdDSA', ed.privatePem, ed.publicPem, ms);

  const hs = await tether({ JWT_SECRET: secret });
  out['tether authenticate() HS256'] = await rateAsync(() => hs.auth.authenticate(hs.token), ms);
  const es = await tether({ JWT_PRIVATE_KEY: ec.privatePem });
  out['tether authenticate() ES256'] = await rateAsync(() => es.auth.authenticate(es.token), ms);
  const eddsa = await tether({ JWT_PRIVATE_KEY: ed.privatePem });
  out['tether authenticate() EdDSA'] = await rateAsync(() => eddsa.auth.authenticate(eddsa.token), ms);

  // JWKS: the ES256 gateway's published key served on loopback, fetched once, then cached.
  const body = JSON.stringify(jwks(es.keys));
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const viaJwks = await tether({ JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json` });
  out['tether authenticate() ES256 via JWKS (cached key)'] = await rateAsync(
    () => viaJwks.auth.authenticate(es.token),
    ms,
  );
  server.closeAllConnections();
  server.close();

  console.table(
    Object.entries(out).map(([path, perSecond]) => ({
      path,
      'verifies/s': perSecond,
      'µs each': Math.round(1e7 / perSecond) / 10,
    })),
  );
  return out;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main(Number(process.env.BENCH_MS ?? 1000));
}
