/**
 * Where tokens live between app restarts. Every adapter is async so a React Native secure store
 * (Keychain/Keystore) fits the same shape as `localStorage`.
 */
export interface TokenStorage {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  remove(key: string): Promise<void>;
}

/** Lost on restart; the default, and right for a Node service or a test. */
export function memoryStorage(): TokenStorage {
  const map = new Map<string, string>();
  return {
    get: (key) => Promise.resolve(map.get(key) ?? null),
    set: (key, value) => {
      map.set(key, value);
      return Promise.resolve();
    },
    remove: (key) => {
      map.delete(key);
      return Promise.resolve();
    },
  };
}

/** The synchronous Web Storage shape (`localStorage`, `sessionStorage`). */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * `localStorage` or `sessionStorage`. Anything on the page can read these, so in browsers prefer
 * cookie mode (the refresh token then never reaches JavaScript) and keep only the access token here.
 *
 * @example webStorage(window.sessionStorage)
 */
export function webStorage(store: WebStorageLike): TokenStorage {
  return {
    get: (key) => Promise.resolve(store.getItem(key)),
    set: (key, value) => Promise.resolve(store.setItem(key, value)),
    remove: (key) => Promise.resolve(store.removeItem(key)),
  };
}

/** The shape of `expo-secure-store` and similar React Native key-value stores. */
export interface SecureStoreLike {
  getItemAsync(key: string): Promise<string | null>;
  setItemAsync(key: string, value: string): Promise<void>;
  deleteItemAsync(key: string): Promise<void>;
}

/**
 * A React Native secure store (Keychain on iOS, Keystore on Android).
 *
 * @example
 *   import * as SecureStore from 'expo-secure-store';
 *   const storage = secureStoreAdapter(SecureStore);
 */
export function secureStoreAdapter(store: SecureStoreLike): TokenStorage {
  return {
    get: (key) => store.getItemAsync(key),
    set: (key, value) => store.setItemAsync(key, value),
    remove: (key) => store.deleteItemAsync(key),
  };
}
