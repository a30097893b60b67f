import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Algorithm } from 'fast-jwt';
import { ConfigError, type Config } from '../config/index.js';
import type { Logger } from '../util/logger.js';

/**
 * Key material for signing and verifying access tokens, derived once at start from
 * `JWT_SECRET` / `JWT_PRIVATE_KEY` / `JWT_PUBLIC_KEY` / `JWT_JWKS_URL` (or a generated dev secret).
 * Every algorithm list here is already the intersection of `JWT_ALGORITHMS` with what the key can
 * do, so a verifier never pairs an HS algorithm with a public key (HS/RS confusion).
 */
export interface KeyMaterial {
  /** The key Tether signs its own tokens with (and verifies them with). Absent: verify-only. */
  readonly signing: SigningKey | undefined;
  /** The key that verifies tokens issued by the application's own backend. */
  readonly external: ExternalKey | undefined;
}

export type SigningKey =
  | {
      readonly kind: 'secret';
      /** Algorithm new tokens are signed with. */
      readonly algorithm: Algorithm;
      /** Algorithms accepted when verifying tokens signed with this key. */
      readonly verifyAlgorithms: readonly Algorithm[];
      readonly secret: Buffer;
      /** A development secret generated into DATA_DIR. */
      readonly generated: boolean;
    }
  | {
      readonly kind: 'private';
      readonly algorithm: Algorithm;
      readonly verifyAlgorithms: readonly Algorithm[];
      readonly privateKeyPem: string;
      readonly publicKeyPem: string;
      /** RFC 7638 thumbprint of the public key: the `kid` header and JWKS entry. */
      readonly kid: string;
      readonly jwk: PublicJwk;
    };

export type ExternalKey =
  | { readonly kind: 'public-key'; readonly algorithms: readonly Algorithm[]; readonly publicKeyPem: string }
  | { readonly kind: 'jwks'; readonly algorithms: readonly Algorithm[]; readonly url: string };

/** A public JWK as published at `/.well-known/jwks.json`. */
export interface PublicJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  kid?: string;
  alg?: string;
  use?: string;
}

export const HS_ALGORITHMS: readonly Algorithm[] = ['HS256', 'HS384', 'HS512'];
/** Asymmetric algorithms `JWT_ALGORITHMS` accepts; the default allow-list for a JWKS URL. */
export const ASYMMETRIC_ALGORITHMS: readonly Algorithm[] = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];

const DEV_SECRET_FILE = 'dev-jwt-secret';
const DEV_SECRET_BYTES = 64;

/**
 * Derives the key material from the configuration. Throws `ConfigError` (one line naming the
 * setting) for an unusable key or an allow-list the keys cannot honour.
 *
 * @example
 *   const keys = await loadKeys(config, logger);
 *   const signer = createSigner(keys, config); // undefined when verify-only
 */
export async function loadKeys(config: Pick<Config, 'jwt' | 'dataDir'>, logger: Logger): Promise<KeyMaterial> {
  const { secret, privateKey, publicKey, jwksUrl, algorithms } = config.jwt;
  if (publicKey !== undefined && jwksUrl !== undefined) {
    throw new ConfigError('JWT_JWKS_URL', 'must not be set together with JWT_PUBLIC_KEY (choose one verification key)');
  }
  const externalOnly =
    secret === undefined && privateKey === undefined && (publicKey !== undefined || jwksUrl !== undefined);

  let signing: SigningKey | undefined;
  if (secret !== undefined) {
    if (secret.includes('-----BEGIN')) {
      // A PEM used as an HMAC secret is the HS/RS confusion attack done to ourselves.
      throw new ConfigError(
        'JWT_SECRET',
        'must be a random secret, not a PEM key (use JWT_PRIVATE_KEY or JWT_PUBLIC_KEY)',
      );
    }
    signing = secretKey(Buffer.from(secret, 'utf8'), algorithms, false);
  } else if (privateKey !== undefined) {
    signing = privateSigningKey(privateKey, algorithms);
  } else if (!externalOnly) {
    signing = secretKey(await loadDevSecret(config.dataDir, logger), algorithms, true);
  }

  let external: ExternalKey | undefined;
  if (publicKey !== undefined) {
    const key = parseKey(() => createPublicKey(publicKey), 'JWT_PUBLIC_KEY', 'a valid PEM public key');
    external = {
      kind: 'public-key',
      algorithms: allowList(keyAlgorithms(key, 'JWT_PUBLIC_KEY'), algorithms, 'JWT_PUBLIC_KEY'),
      publicKeyPem: key.export({ type: 'spki', format: 'pem' }).toString(),
    };
  } else if (jwksUrl !== undefined) {
    const allowed =
      algorithms === undefined
        ? ASYMMETRIC_ALGORITHMS
        : algorithms.filter((a) => ASYMMETRIC_ALGORITHMS.includes(a as Algorithm));
    if (allowed.length === 0)
      throw new ConfigError('JWT_ALGORITHMS', 'must include an asymmetric algorithm when JWT_JWKS_URL is set');
    external = { kind: 'jwks', algorithms: allowed as Algorithm[], url: jwksUrl };
  }

  if (algorithms !== undefined) {
    const usable = new Set<string>([...(signing?.verifyAlgorithms ?? []), ...(external?.algorithms ?? [])]);
    const unusable = algorithms.filter((a) => !usable.has(a));
    if (unusable.length > 0) {
      throw new ConfigError(
        'JWT_ALGORITHMS',
        `must only list algorithms a configured key supports (${unusable.join(', ')} cannot be used)`,
      );
    }
  }

  logger.info(
    {
      signing: signing?.algorithm,
      kid: signing?.kind === 'private' ? signing.kid : undefined,
      verify: [...(signing?.verifyAlgorithms ?? []), ...(external?.algorithms ?? [])],
      external: external?.kind,
      jwksUrl: external?.kind === 'jwks' ? redactUrl(external.url) : undefined,
    },
    'jwt keys loaded',
  );
  return { signing, external };
}

/** The JWKS Tether publishes for its own asymmetric signing key; undefined with an HMAC secret or none. */
export function jwks(keys: KeyMaterial): { keys: PublicJwk[] } | undefined {
  const s = keys.signing;
  if (s?.kind !== 'private') return undefined;
  return { keys: [{ ...s.jwk, kid: s.kid, alg: s.algorithm, use: 'sig' }] };
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members in lexicographic order. */
export function jwkThumbprint(jwk: PublicJwk): string {
  let members: Record<string, string | undefined>;
  if (jwk.kty === 'EC') members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  else if (jwk.kty === 'OKP') members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  else if (jwk.kty === 'RSA') members = { e: jwk.e, kty: jwk.kty, n: jwk.n };
  else throw new ConfigError('JWT_PRIVATE_KEY', `must be an EC, Ed25519 or RSA key (got ${jwk.kty})`);
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/**
 * Algorithms a key can verify, preferred first. Only what `JWT_ALGORITHMS` can name: P-256, P-384,
 * Ed25519 and RSA (≥ 2048 bits). Returns the list for a node:crypto key object (public or private).
 */
export function keyAlgorithms(key: KeyObject, setting: string): Algorithm[] {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  if (type === 'ec' && details?.namedCurve === 'prime256v1') return ['ES256'];
  if (type === 'ec' && details?.namedCurve === 'secp384r1') return ['ES384'];
  if (type === 'ed25519') return ['EdDSA'];
  if (type === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return ['RS256', 'PS256'];
  throw new ConfigError(
    setting,
    'must be an EC P-256 (ES256), EC P-384 (ES384), Ed25519 (EdDSA) or RSA ≥ 2048-bit (RS256/PS256) key',
  );
}

function secretKey(secret: Buffer, configured: readonly string[] | undefined, generated: boolean): SigningKey {
  const verifyAlgorithms = allowList(
    HS_ALGORITHMS,
    configured,
    generated ? 'the generated development secret' : 'JWT_SECRET',
  );
  return { kind: 'secret', algorithm: verifyAlgorithms[0] as Algorithm, verifyAlgorithms, secret, generated };
}

function privateSigningKey(pem: string, configured: readonly string[] | undefined): SigningKey {
  const key = parseKey(() => createPrivateKey(pem), 'JWT_PRIVATE_KEY', 'a valid unencrypted PEM private key');
  const verifyAlgorithms = allowList(keyAlgorithms(key, 'JWT_PRIVATE_KEY'), configured, 'JWT_PRIVATE_KEY');
  const publicKey = createPublicKey(key);
  const jwk = publicKey.export({ format: 'jwk' }) as PublicJwk;
  return {
    kind: 'private',
    algorithm: verifyAlgorithms[0] as Algorithm,
    verifyAlgorithms,
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    kid: jwkThumbprint(jwk),
    jwk,
  };
}

/**
 * The algorithms a key accepts: `JWT_ALGORITHMS` ∩ what the key can do, or exactly the algorithm
 * the key implies when no list is configured.
 */
function allowList(
  compatible: readonly Algorithm[],
  configured: readonly string[] | undefined,
  what: string,
): Algorithm[] {
  if (configured === undefined) return [compatible[0] as Algorithm];
  const allowed = compatible.filter((a) => configured.includes(a));
  if (allowed.length === 0) {
    throw new ConfigError('JWT_ALGORITHMS', `must include an algorithm ${what} supports (${compatible.join(', ')})`);
  }
  return allowed;
}

function parseKey(parse: () => KeyObject, setting: string, accepts: string): KeyObject {
  try {
    return parse();
  } catch {
    // The parser's message may quote key material; the setting name is enough.
    throw new ConfigError(setting, `must be ${accepts}`);
  }
}

/**
 * The dev secret: 64 random bytes kept in `<DATA_DIR>/dev-jwt-secret` (mode 0600) so tokens survive a
 * restart. Created atomically (write a temp file, hard-link it into place) so two gateways starting on
 * one DATA_DIR end up with the same secret.
 */
async function loadDevSecret(dataDir: string, logger: Logger): Promise<Buffer> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, DEV_SECRET_FILE);
  let secret = await readDevSecret(path);
  const created = secret === undefined;
  if (secret === undefined) {
    const fresh = randomBytes(DEV_SECRET_BYTES);
    const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, fresh.toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    try {
      await link(tmp, path);
      secret = fresh;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') secret = await readDevSecret(path);
      else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') {
        // No hard links on this file system: a plain rename (the race is only between two first starts).
        await rename(tmp, path);
        secret = fresh;
      } else throw error;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    if (secret === undefined) throw new ConfigError('DATA_DIR', `must allow creating ${path}`);
  }
  logger.warn(
    { file: path, created },
    'JWT_SECRET and JWT_PRIVATE_KEY are not set: signing with a generated development key; never use it in production',
  );
  return secret;
}

async function readDevSecret(path: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const secret = Buffer.from(text.trim(), 'base64url');
  if (secret.length < 32) {
    throw new ConfigError('DATA_DIR', `holds an unusable ${DEV_SECRET_FILE}; delete ${path} to generate a new one`);
  }
  // A copied or restored file may have lost its mode; the secret must stay private to this user.
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  return secret;
}

function redactUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}
