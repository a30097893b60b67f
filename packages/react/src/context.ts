import { createContext, createElement, useContext, type ReactElement, type ReactNode } from 'react';
import type { EventMap, RealtimeClient } from '@tether/client';

/** The client given to the nearest `TetherProvider` (stored untyped: each hook restores the app's EventMap). */
const TetherContext = createContext<RealtimeClient | null>(null);
TetherContext.displayName = 'TetherContext';

export interface TetherProviderProps<Events extends EventMap = EventMap> {
  /** The app's client. The provider neither connects nor disposes it: the app owns its lifecycle. */
  client: RealtimeClient<Events>;
  children?: ReactNode;
}

/**
 * Makes a `RealtimeClient` available to the hooks below it.
 *
 * @example
 *   <TetherProvider client={client}>
 *     <App />
 *   </TetherProvider>
 */
export function TetherProvider<Events extends EventMap = EventMap>({
  client,
  children,
}: TetherProviderProps<Events>): ReactElement {
  return createElement(TetherContext.Provider, { value: client as unknown as RealtimeClient }, children);
}

/** Thrown by a hook that has neither a client argument nor a `TetherProvider` above it. */
export class MissingTetherProviderError extends Error {
  constructor(hook: string) {
    super(
      `@tether/react: ${hook}() found no RealtimeClient. Render the component inside ` +
        `<TetherProvider client={client}>, or pass the client to the hook.`,
    );
    this.name = 'MissingTetherProviderError';
  }
}

/** The explicit client when given, else the provider's; throws MissingTetherProviderError when neither. */
export function useResolvedClient<Events extends EventMap>(
  hook: string,
  client: RealtimeClient<Events> | undefined,
): RealtimeClient<Events> {
  // Always read the context, so the hook order never depends on the argument.
  const provided = useContext(TetherContext);
  const chosen = client ?? (provided as RealtimeClient<Events> | null);
  if (chosen === null) throw new MissingTetherProviderError(hook);
  return chosen;
}

/**
 * The `RealtimeClient` of the nearest `TetherProvider` (or `client`, when given), typed with the
 * app's events. Throws MissingTetherProviderError outside a provider.
 *
 * @example
 *   const client = useTetherClient<ChatEvents>();
 *   const send = (text: string) => client.send('chat_message', { text });
 */
export function useTetherClient<Events extends EventMap = EventMap>(
  client?: RealtimeClient<Events>,
): RealtimeClient<Events> {
  return useResolvedClient('useTetherClient', client);
}
