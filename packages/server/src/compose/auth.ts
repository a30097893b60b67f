import { REVOCATION_MESSAGES } from '@tether/protocol';
import { createAuthenticator } from '../auth/authenticator.js';
import { createSigner, createVerifier } from '../auth/jwt.js';
import { loadKeys, type KeyMaterial } from '../auth/keys.js';
import { loadRevocations } from '../auth/revocation-loader.js';
import { createRevocationState } from '../auth/revocations.js';
import { createTokenService, type TokenService } from '../auth/token-service.js';
import type { Authenticator, RevocationState, TokenSigner, TokenVerifier } from '../auth/types.js';
import type { Config } from '../config/index.js';
import type { Hub } from '../hub/types.js';
import type { AuthEventFeed } from '../observability/auth-events.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

export type KeySettings = Pick<Config, 'jwt' | 'dataDir' | 'accessTtlSeconds' | 'guestTokenTtlSeconds'>;

/** What signs and verifies tokens, and this node's revocation state loaded from the store. */
export interface Keys {
  keys: KeyMaterial;
  /** Absent when the gateway only verifies tokens issued by an app's own backend. */
  signer: TokenSigner | undefined;
  verifier: TokenVerifier;
  /** This node's revocations (cluster mode shares updates through the bus: see `assembleCluster`). */
  nodeRevocations: RevocationState;
  /** Reloads the revocations from the store (after Redis was away, updates may have been missed). */
  reloadRevocations(): Promise<void>;
}

/** Loads the signing and verification keys and the persisted revocations. */
export async function assembleKeys(
  settings: KeySettings,
  deps: { store: Store; logger: Logger; clock: Clock },
): Promise<Keys> {
  const { store, clock } = deps;
  const keys = await loadKeys(settings, deps.logger);
  const nodeRevocations = createRevocationState(clock);
  const reloadRevocations = () => loadRevocations(store, nodeRevocations, settings, clock);
  await reloadRevocations();
  return {
    keys,
    signer: createSigner(keys, settings, clock),
    verifier: createVerifier(keys, settings, clock),
    nodeRevocations,
    reloadRevocations,
  };
}

/** Verifies tokens against the revocations in force (the cluster's in cluster mode). */
export function assembleAuthenticator(keys: Keys, revocations: RevocationState): Authenticator {
  return createAuthenticator(keys.verifier, revocations);
}

/**
 * The built-in token service (login, refresh families, guests), when the gateway has a signing
 * key. It audits through the auth-event feed, so dashboards see logins and refreshes live, and its
 * revocations close live connections through the hub. Its maintenance (expired rows) is started.
 */
export function assembleTokenService(
  config: Config,
  deps: {
    signer: TokenSigner | undefined;
    store: Store;
    authEvents: AuthEventFeed;
    revocations: RevocationState;
    hub: Hub;
    logger: Logger;
    clock: Clock;
  },
): TokenService | undefined {
  const { signer, store, clock, hub } = deps;
  if (signer === undefined) return undefined;
  const tokens = createTokenService({
    config,
    store: { ...store, audit: deps.authEvents.wrapAudit(store.audit, () => clock.now()) },
    signer,
    clock,
    logger: deps.logger.child({ component: 'auth' }),
    revocations: deps.revocations,
    // Live connections are told why (REVOCATION_MESSAGES), still with AUTH_REVOKED.
    onFamilyRevoked: (familyId, reason) => hub.revokeFamily(familyId, revocationMessage(reason)),
    onUserRevoked: (userId, reason) => hub.disconnectUser(userId, 'AUTH_REVOKED', revocationMessage(reason)),
  });
  tokens.startMaintenance();
  return tokens;
}

/** The message for a revocation reason, or undefined (the registry's) for one without its own. */
function revocationMessage(reason: string): string | undefined {
  return Object.hasOwn(REVOCATION_MESSAGES, reason)
    ? REVOCATION_MESSAGES[reason as keyof typeof REVOCATION_MESSAGES]
    : undefined;
}
