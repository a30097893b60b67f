import { createHash, timingSafeEqual } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import type { FastifyRequest } from 'fastify';

/**
 * Server-to-server API keys. Keys are compared as SHA-256 digests with `timingSafeEqual`, so the
 * comparison takes the same time whatever the key's length or how much of it matches.
 */
export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  /** Throws API_KEY_INVALID unless the request carries `Authorization: Bearer <one of the keys>`. */
  check(request: FastifyRequest): void {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (match === null || !this.matches(match[1]!)) throw new TetherError('API_KEY_INVALID');
  }

  matches(candidate: string): boolean {
    const d = digest(candidate);
    let ok = false;
    // Compare against every key (no early exit), so timing does not reveal which key matched.
    for (const k of this.digests) ok = timingSafeEqual(k, d) || ok;
    return ok;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
