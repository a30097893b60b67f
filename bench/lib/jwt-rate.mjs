// Raw HS256 verify rate on one core, for the reauth figure: the library Tether uses (fast-jwt, no
// cache, iss/aud checked as Tether does) and the other libraries if installed.
import { createHmac } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';

const CLAIMS = { iss: 'tether', aud: 'tether', sub: 'u1', scopes: ['bench/all', 'bench/g/1'] };

function rate(fn, ms) {
  // Warm up, then count calls until the deadline (checked every 256 calls to keep the clock out of it).
  for (let i = 0; i < 2000; i += 1) fn();
  let n = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  while (performance.now() < end) for (let i = 0; i < 256; i += 1, n += 1) fn();
  return Math.round(n / ((performance.now() - t0) / 1000));
}

async function tryImport(name) {
  try {
    return await import(name);
  } catch {
    return null;
  }
}

/** `{ library: verifications per second | 'not installed' }` for HS256. */
export async function measureJwtVerify(secret, ms = 1000) {
  const token = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 3_600_000 })(CLAIMS);
  const verify = createVerifier({
    key: secret,
    algorithms: ['HS256'],
    allowedIss: 'tether',
    allowedAud: 'tether',
    cache: false,
  });
  const out = { 'fast-jwt': rate(() => verify(token), ms) };

  const [head, body, sig] = token.split('.');
  // The floor no library can beat: one HMAC and a JSON.parse, without claim checks.
  out['node:crypto HMAC + JSON.parse (floor)'] = rate(() => {
    const mac = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
    if (mac !== sig) throw new Error('bad');
    JSON.parse(Buffer.from(body, 'base64url').toString());
  }, ms);

  const jose = await tryImport('jose');
  if (jose) {
    const key = new TextEncoder().encode(secret);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      await jose.jwtVerify(token, key, { issuer: 'tether', audience: 'tether' });
      n += 1;
    }
    out.jose = Math.round(n / ((performance.now() - t0) / 1000));
  } else out.jose = 'not installed';
  const jsonwebtoken = await tryImport('jsonwebtoken');
  out.jsonwebtoken = jsonwebtoken
    ? rate(() => jsonwebtoken.default.verify(token, secret, { issuer: 'tether', audience: 'tether' }), ms)
    : 'not installed';
  return out;
}
