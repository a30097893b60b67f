/**
 * Everything the SDK needs from its host, injected so one code base runs in browsers, Node and
 * React Native, and so tests drive time, randomness and connectivity by hand.
 */

/** Opaque timer handle (a number in browsers, an object in Node). */
export type TimerHandle = unknown;

/** The subset of the WHATWG `WebSocket` the plain-WebSocket transport uses. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A `WebSocket` constructor: the browser global, React Native's, or the `ws` package's in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Unsubscribes a hook. */
export type Unsubscribe = () => void;

/**
 * Connectivity and foreground signals. The browser defaults use `online`/`offline` and
 * `visibilitychange`; React Native apps pass NetInfo and AppState here (see docs/client.md).
 */
export interface LifecycleHooks {
  /** False only when the host is sure there is no network (a `true` proves nothing). */
  isOnline(): boolean;
  /** Calls back when connectivity comes back. */
  onOnline(listener: () => void): Unsubscribe;
  /** Calls back when the app returns to the foreground (page visible, app active). */
  onForeground(listener: () => void): Unsubscribe;
}

export interface Platform {
  /** Wall-clock ms since the epoch (token `exp` is wall-clock time). */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** Uniform in [0, 1): jitter. */
  random(): number;
  fetch: typeof fetch;
  /** Needed by the `ws` transport only. */
  WebSocket: WebSocketConstructor | undefined;
  hooks: LifecycleHooks;
}

const noHooks: LifecycleHooks = {
  isOnline: () => true,
  onOnline: () => () => undefined,
  onForeground: () => () => undefined,
};

interface BrowserGlobals {
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
  navigator?: { onLine?: boolean };
  document?: {
    visibilityState?: string;
    addEventListener(type: string, listener: () => void): void;
    removeEventListener(type: string, listener: () => void): void;
  };
  WebSocket?: WebSocketConstructor;
}

/** `online` and `visibilitychange` hooks when running in a browser, inert elsewhere. */
export function browserHooks(): LifecycleHooks {
  const g = globalThis as BrowserGlobals;
  const add = g.addEventListener;
  const remove = g.removeEventListener;
  if (typeof add !== 'function' || typeof remove !== 'function') return noHooks;
  return {
    isOnline: () => g.navigator?.onLine !== false,
    onOnline(listener) {
      add.call(g, 'online', listener);
      return () => remove.call(g, 'online', listener);
    },
    onForeground(listener) {
      const doc = g.document;
      if (!doc) return () => undefined;
      const onChange = (): void => {
        if (doc.visibilityState === 'visible') listener();
      };
      doc.addEventListener('visibilitychange', onChange);
      return () => doc.removeEventListener('visibilitychange', onChange);
    },
  };
}

/**
 * The host's platform, with any part overridden. Timers are looked up at call time so test
 * frameworks that swap the globals (fake timers) are honoured.
 *
 * @example
 *   import WebSocket from 'ws';
 *   const platform = createPlatform({ WebSocket }); // Node
 */
export function createPlatform(overrides: Partial<Platform> = {}): Platform {
  const g = globalThis as BrowserGlobals;
  return {
    now: () => Date.now(),
    setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
    random: () => Math.random(),
    fetch: (input, init) => globalThis.fetch(input, init),
    WebSocket: g.WebSocket,
    hooks: browserHooks(),
    ...overrides,
  };
}

/** Resolves after `ms`, or earlier when `wakeOnOnline` and connectivity comes back first. */
export function sleep(platform: Platform, ms: number, wakeOnOnline = false): Promise<void> {
  return new Promise((resolve) => {
    let off: Unsubscribe = () => undefined;
    const handle = platform.setTimeout(() => {
      off();
      resolve();
    }, ms);
    if (wakeOnOnline) {
      off = platform.hooks.onOnline(() => {
        off();
        platform.clearTimeout(handle);
        resolve();
      });
    }
  });
}
