import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The `@tether/server` package's version, from its package.json: `src/util` and `dist/util` both sit
 * two levels below it, in the repository and installed. (A path, not a `URL` object: under a DOM
 * test environment the global `URL` is the DOM's, which `fs` does not take.)
 */
export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;
