export * from './config/index.js';
export { createGateway, type Gateway, type GatewayOptions } from './gateway.js';
export type {
  Hub,
  HubObserver,
  Session,
  PresenceEntry,
  ConnectionSink,
  OutboundEvent,
  TransportKind,
} from './hub/types.js';
export type { Principal, AccessClaims, Authenticator, TokenSigner, TokenVerifier } from './auth/types.js';
export type { Store } from './store/types.js';
export { createLogger, type Logger } from './util/logger.js';
export { runMigrations, type DialectMigration, type OpenStore } from './store/index.js';
export type { AuthEvent, AuthEventListener } from './observability/auth-events.js';
export { TetherError } from '@tether/protocol';
export type { Cursor, EventLog, LoggedEvent, StreamRead } from './history/types.js';
export type { IdempotencyStore, IdempotencyBegin, ClientEventHandler, SendContext } from './sends/types.js';
export { createMemoryIdempotencyStore } from './sends/memory-idempotency.js';
