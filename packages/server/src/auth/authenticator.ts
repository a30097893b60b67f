import { TetherError } from '@tether/protocol';
import { withReason } from './refusal-reason.js';
import type { Authenticator, Principal, RevocationState, TokenVerifier } from './types.js';

/**
 * Verification plus revocation: what connect, reauth and every resume path call.
 * Throws `TetherError` AUTH_INVALID / AUTH_EXPIRED (from the verifier) or AUTH_REVOKED, each carrying
 * its `RefusalReason` (`reasonOf(err)`) for the refusal's log line.
 *
 * @example
 *   const authenticator = createAuthenticator(createVerifier(keys, config), createRevocationState(clock));
 *   const principal = await authenticator.authenticate(token);
 */
export function createAuthenticator(verifier: TokenVerifier, revocations: RevocationState): Authenticator {
  return {
    revocations,
    async authenticate(token: string): Promise<Principal> {
      const principal = await verifier.verify(token);
      const revoked = revocations.revocationOf(principal);
      if (revoked !== undefined) throw withReason(new TetherError('AUTH_REVOKED'), revoked);
      return principal;
    },
  };
}
