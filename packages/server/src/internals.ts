/**
 * `@tether/server/internals`: the gateway's parts and types for Tether's own tests, benchmarks and
 * tools. Not a public API: it changes without notice, and apps must not import it (lint refuses it
 * under `apps/`). An app lives on `Gateway` from `@tether/server`.
 */
export { gatewayInternals, type GatewayInternals } from './gateway.js';
export type { Hub, ConnectionSink, OutboundEvent } from './hub/types.js';
export type { Authenticator, TokenSigner, TokenVerifier } from './auth/types.js';
export type { Store } from './store/types.js';
export type { OpenStore } from './store/index.js';
export type { Cursor, EventLog, LoggedEvent, StreamRead } from './history/types.js';
export type { TokenService } from './auth/token-service.js';
