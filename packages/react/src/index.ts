/**
 * `@tether/react`: React hooks for `@tether/client`. No DOM dependency: the same hooks run in
 * React DOM and React Native (React 18 or later).
 */
export { MissingTetherProviderError, TetherProvider, useTetherClient, type TetherProviderProps } from './context.js';
export {
  createTetherHooks,
  useConnectionState,
  useEvent,
  useSend,
  useSession,
  useTokenExpiry,
  useUser,
  userFromAccessToken,
  type ReauthNotice,
  type SendFunction,
  type SendMap,
  type SignedInUser,
  type TokenExpiry,
} from './hooks.js';
