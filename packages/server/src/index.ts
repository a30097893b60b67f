export * from './config/index.js';
export { createGateway, type Gateway, type GatewayOptions, type GatewayUsers } from './gateway.js';
export type { HubObserver, Session, PresenceEntry, TransportKind } from './hub/types.js';
export type { Principal, AccessClaims } from './auth/types.js';
export type { NewUserInput, PublicUser, UserPatchInput } from './auth/user-admin.js';
export type {
  DeliveryReport,
  DeviceDelivery,
  TimelineEntry,
  TimelineReport,
  UserDeliveries,
} from './receipts/types.js';
export { createLogger, type Logger } from './util/logger.js';
export { runMigrations, type DialectMigration } from './store/index.js';
export type { AuthEvent, AuthEventListener } from './observability/auth-events.js';
export { TetherError } from '@tether/protocol';
export type { IdempotencyStore, IdempotencyBegin, ClientEventHandler, SendContext } from './sends/types.js';
export { createMemoryIdempotencyStore } from './sends/memory-idempotency.js';
