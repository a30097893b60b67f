import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reads a development secret kept in DATA_DIR, creating it (mode 0600) on first use, so a
 * restarted dev gateway keeps the same API key. Production sets the real value by environment.
 */
export function devSecret(dataDir: string, fileName: string, bytes = 32): { value: string; created: boolean } {
  const path = join(dataDir, fileName);
  try {
    const value = readFileSync(path, 'utf8').trim();
    if (value.length > 0) return { value, created: false };
  } catch {
    // Not there yet: create it below.
  }
  mkdirSync(dataDir, { recursive: true });
  const value = randomBytes(bytes).toString('base64url');
  writeFileSync(path, value + '\n', { mode: 0o600 });
  return { value, created: true };
}

/** The development API key (API_KEYS unset): kept in DATA_DIR and printed once on stderr, never logged. */
export function devApiKey(dataDir: string, warn: (detail: object, message: string) => void): string {
  const { value, created } = devSecret(dataDir, 'dev-api-key');
  warn({ file: join(dataDir, 'dev-api-key'), created }, 'API_KEYS is not set: using a development API key');
  console.warn(`[tether] development API key (set API_KEYS in production): ${value}`);
  return value;
}
