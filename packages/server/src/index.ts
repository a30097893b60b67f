export * from './config/index.js';
export { createGateway, type Gateway, type GatewayOptions } from './gateway.js';
export type { Hub, HubObserver, Session, PresenceEntry, ConnectionSink, OutboundEvent, TransportKind } from './hub/types.js';
export type { Principal, AccessClaims, Authenticator, TokenSigner, TokenVerifier } from './auth/types.js';
export type { Store } from './store/types.js';
export { createLogger, type Logger } from './util/logger.js';
