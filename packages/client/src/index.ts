/**
 * `@tether/client`: token manager, API client and realtime client for Tether gateways.
 * Runs in browsers, Node (pass `ws`'s WebSocket for the `ws` transport) and React Native.
 */
export { ApiClient, type ApiClientOptions, type ApiRequest } from './api-client.js';
export { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff.js';
export type { AuthNotice } from './connection.js';
export { RecentIds } from './dedupe.js';
export { ApiError, NetworkError, isTransient } from './http.js';
export { decodeJwtPayload, tokenExpiry } from './jwt.js';
export {
  browserHooks,
  createPlatform,
  type LifecycleHooks,
  type Platform,
  type Unsubscribe,
  type WebSocketConstructor,
  type WebSocketLike,
} from './platform.js';
export { RealtimeClient, type EventMap, type EventMeta, type RealtimeClientOptions } from './realtime-client.js';
export {
  ConnectionState,
  STATE_TABLE,
  StateMachine,
  canTransition,
  type StateChange,
  type StateListener,
  type StateSpec,
} from './state-machine.js';
export {
  memoryStorage,
  secureStoreAdapter,
  webStorage,
  type SecureStoreLike,
  type TokenStorage,
  type WebStorageLike,
} from './storage.js';
export {
  TokenManager,
  type LoginUser,
  type SignedOut,
  type TokenChange,
  type TokenEvents,
  type TokenManagerOptions,
} from './token-manager.js';
export { socketIoTransport, type SocketIoExtraOptions } from './transports/socketio-transport.js';
export type {
  Transport,
  TransportFactory,
  TransportHandlers,
  TransportKind,
  TransportOptions,
} from './transports/types.js';
export { wsTransport, type WsTransportOptions } from './transports/ws-transport.js';
export { TetherError, ErrorCode, type SendAck, type SessionCreatedPayload, type SubscribeAck } from '@tether/protocol';
