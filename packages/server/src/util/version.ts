import { readFileSync } from 'node:fs';

/**
 * The `@tether/server` package's version, from its package.json: `src/util` and `dist/util` both sit
 * two levels below it, in the repository and installed.
 */
export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
