/**
 * `@tether/react`: React hooks for `@tether/client`. No DOM dependency: the same hooks run in
 * React DOM and React Native (React 18 or later).
 */
export { MissingTetherProviderError, TetherProvider, useTetherClient, type TetherProviderProps } from './context.js';
export {
  createTetherHooks,
  useConnectionState,
  useEvent,
  useSession,
  useTokenExpiry,
  type ReauthNotice,
  type TokenExpiry,
} from './hooks.js';
